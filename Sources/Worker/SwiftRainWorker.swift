import ArgumentParser
import Core
import Foundation

/// One worker process: started by `swiftrain train`, by SLURM's srun, or by hand.
@main
struct SwiftRainWorker: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "swiftrain-worker", abstract: "One SwiftRain training worker.")
    @Option(help: "Coordinator address, tcp://HOST:PORT.") var connect: String
    @Option(help: "Requested rank (informational; the coordinator assigns ranks).") var rank: Int?

    func run() throws {
        do {
            let context = try ZMQContext()
            let client = try ZMQClient(context: context, connect: connect)
            let heartbeat = try ZMQClient(context: context, connect: connect)
            try TrainingWorker(transport: client, heartbeat: heartbeat, log: { FileHandle.standardError.write(Data(($0 + "\n").utf8)) }).run(rank: rank)
        } catch let e as SwiftRainError {
            FileHandle.standardError.write(Data("swiftrain-worker: error: \(e)\n".utf8)); throw ExitCode(1)
        } catch let e as ValidationErrors {
            FileHandle.standardError.write(Data("swiftrain-worker: error: \(e)\n".utf8)); throw ExitCode(1)
        }
    }
}
