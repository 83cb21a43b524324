import Foundation
import RainModel
import RainTraining
import XCTest

/// A coordinator SIGKILLed mid-epoch while its workers (started by hand) live on: the workers notice
/// its silence, wait for it, and rejoin the coordinator restarted with --resume; the run ends with the
/// parameters of an uninterrupted run, bit for bit (same N, same shards, same summation order).
final class RejoinTests: XCTestCase {
    static let data = TrainingData.make("rejoin")
    override class func tearDown() { try? FileManager.default.removeItem(at: data) }
    var root: URL { Self.data }

    func params(_ run: String) throws -> [Float] {
        let layout = ParameterLayout(try ModelShape(config: TrainingData.config(root)))
        return try Checkpoint.read(
            path: root.appendingPathComponent("\(run)/checkpoints/last.ckpt").path, layout: layout
        ).1.values
    }

    func coordinator(_ run: String, _ endpoint: String, _ extra: [String]) throws -> Started {
        try startProcess(
            Binaries.swiftrain,
            [
                "train", "--config", root.appendingPathComponent("c.yaml").path, "--run",
                root.appendingPathComponent(run).path, "--listen", endpoint, "--expect-workers", "2", "--set",
                "epochs=4", "--step-timeout", "60", "--progress-every", "0",
            ] + extra)
    }

    func workers(_ run: String, _ endpoint: String, rejoin: Int) throws -> [Started] {
        try (0..<2).map {
            try startProcess(
                Binaries.worker,
                [
                    "--connect", endpoint, "--threads", "1", "--coordinator-timeout", "3", "--rejoin-timeout",
                    "\(rejoin)", "--keys", TrainingTests.workerKeys(root.appendingPathComponent(run), $0),
                ])
        }
    }

    func testARestartedCoordinatorGetsItsWorkersBackAndEndsBitForBit() throws {
        let cleanEndpoint = try freeLoopbackEndpoint()
        let clean = try coordinator("clean", cleanEndpoint, [])
        let cleanWorkers = try workers("clean", cleanEndpoint, rejoin: 0)
        clean.wait()
        XCTAssertEqual(clean.process.terminationStatus, 0, clean.errors())
        for w in cleanWorkers { w.wait() }

        let endpoint = try freeLoopbackEndpoint()
        let run = root.appendingPathComponent("restarted")
        let first = try coordinator("restarted", endpoint, ["--checkpoint-minutes", "0.01"])
        let ws = try workers("restarted", endpoint, rejoin: 120)
        // After the first time-based checkpoint, a few steps more: the kill lands mid-epoch, past it.
        let last = run.appendingPathComponent("checkpoints/last.ckpt").path
        let deadline = Date().addingTimeInterval(120)
        while !FileManager.default.fileExists(atPath: last) && first.process.isRunning && Date() < deadline {
            usleep(20_000)
        }
        let seen = first.errors().components(separatedBy: "step ").count
        while first.errors().components(separatedBy: "step ").count < seen + 3 && first.process.isRunning
            && Date() < deadline
        {
            usleep(20_000)
        }
        XCTAssertTrue(first.process.isRunning, "finished before the kill: \(first.errors())")
        XCTAssertFalse(first.errors().contains("epoch 4 val_loss"), first.errors())
        kill(first.process.processIdentifier, SIGKILL)
        first.wait()
        // The workers wait; the coordinator is restarted on the same address, from the run directory.
        while !ws.allSatisfy({ $0.errors().contains("waiting up to 120 s for a coordinator") }) && Date() < deadline {
            usleep(50_000)
        }
        let second = try startProcess(
            Binaries.swiftrain,
            ["train", "--resume", run.path, "--listen", endpoint, "--expect-workers", "2", "--progress-every", "0"])
        second.wait()
        XCTAssertEqual(second.process.terminationStatus, 0, second.errors())
        XCTAssertTrue(second.errors().contains("resuming at epoch"), second.errors())
        XCTAssertTrue(second.errors().contains("epoch 4 val_loss"), second.errors())
        // The same two processes, not new ones: nobody else was started.
        XCTAssertTrue(second.errors().contains("ready; 2 live"), second.errors())
        XCTAssertTrue(ws.allSatisfy { $0.process.isRunning || $0.process.terminationStatus == 0 })
        for w in ws {
            w.wait()
            XCTAssertEqual(w.process.terminationStatus, 0, w.errors())
            XCTAssertTrue(w.errors().contains("the coordinator has not answered heartbeats for 3 s"), w.errors())
        }
        let a = try params("clean"), b = try params("restarted")
        XCTAssertEqual(a.count, b.count)
        let differing = zip(a, b).filter { $0.bitPattern != $1.bitPattern }.count
        XCTAssertEqual(differing, 0, "\(differing) of \(a.count) parameters differ from the uninterrupted run's")
    }
}
