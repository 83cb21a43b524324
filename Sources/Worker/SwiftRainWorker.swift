import ArgumentParser
import Core
import Foundation

/// One worker process: started by `swiftrain train`, by SLURM's srun, or by hand.
@main
struct SwiftRainWorker: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "swiftrain-worker", abstract: "One SwiftRain training worker.")
    @Option(help: "Coordinator address, tcp://HOST:PORT.") var connect: String
    @Option(help: "Requested rank (informational; the coordinator assigns ranks).") var rank: Int?
    @Flag(name: .customLong("exit-with-parent"), help: "Exit when the parent process (a local `swiftrain train`) is gone.") var exitWithParent = false
    @Option(help: "The run's keys/ directory (CURVE; needed when the coordinator listens beyond loopback).") var keys: String?

    func run() throws {
        do {
            let context = try ZMQContext()
            let curve = try keys.map { try CurveKeys.load(dir: $0, create: false) }
            let client = try ZMQClient(context: context, connect: connect, curve: curve)
            let heartbeat = try ZMQClient(context: context, connect: connect, curve: curve)
            let log: (String) -> Void = { FileHandle.standardError.write(Data(($0 + "\n").utf8)) }
            let worker = TrainingWorker(transport: client, heartbeat: heartbeat, log: log)
            if exitWithParent { worker.parentPid = getppid() }
            // The ring inbox: loopback when the coordinator is, else every interface, advertised by host name.
            let local = connect.hasPrefix("tcp://127.") || connect.hasPrefix("tcp://localhost:")
            worker.makeRing = { runId in
                try RingAllreduce(context: context, bind: local ? "tcp://127.0.0.1:*" : "tcp://*:*",
                                  advertiseHost: ProcessInfo.processInfo.hostName, runId: runId, curve: curve, log: log)
            }
            try worker.run(rank: rank)
        } catch let e as SwiftRainError {
            FileHandle.standardError.write(Data("swiftrain-worker: error: \(e)\n".utf8)); throw ExitCode(1)
        } catch let e as ValidationErrors {
            FileHandle.standardError.write(Data("swiftrain-worker: error: \(e)\n".utf8)); throw ExitCode(1)
        }
    }
}
