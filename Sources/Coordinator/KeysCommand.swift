import ArgumentParser
import RainLaunch

/// `swiftrain keys --run DIR --workers N`: one CURVE key directory per worker, before or during a run.
struct KeysCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys",
        abstract: "Issue worker keys w0 … w(N−1) in RUN/keys/workers/ (a running coordinator admits new ones).",
        discussion: """
            Copy RUN/keys/workers/wK alone to the host of worker K and start it with \
            swiftrain-worker --connect tcp://HOST:PORT --keys DIR. Deleting a directory revokes its key for new \
            connections.
            """)
    @Option(name: .customLong("run"), help: "The run directory.") var runPath: String
    @Option(help: "Keys to have in all (existing ones are kept).") var workers: Int

    func run() throws {
        try SwiftRain.run {
            for (path, new) in try Train.issueKeys(runPath: runPath, workers: workers) {
                print("\(path)\(new ? "  (new)" : "")")
            }
        }
    }
}
