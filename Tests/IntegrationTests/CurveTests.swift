import Foundation
import RainModel
import RainProtocol
import RainTraining
import RainZMQ
import XCTest

/// CURVE mode: only holders of the run's worker key get in; traffic is encrypted.
final class CurveTests: XCTestCase {
    static let root = TrainingData.make("curve")
    override class func tearDown() { try? FileManager.default.removeItem(at: root) }

    func testOnlyTheRunsWorkersAreAdmitted() throws {
        let root = Self.root
        let config = root.appendingPathComponent("c.yaml").path
        let clean = try runProcess(
            Binaries.swiftrain,
            [
                "train", "--config", config, "--run", root.appendingPathComponent("curve-clean").path,
                "--workers", "2", "--max-steps", "4",
            ])
        XCTAssertEqual(clean.status, 0, clean.err)

        let endpoint = try freeLoopbackEndpoint()
        let ctx = try ZMQContext()
        let run = root.appendingPathComponent("curve")
        let c = try startProcess(
            Binaries.swiftrain,
            [
                "train", "--config", config, "--run", run.path, "--listen", endpoint, "--curve",
                "--expect-workers", "2", "--max-steps", "4", "--step-timeout", "60",
            ])
        while !c.errors().contains("CURVE on") && c.process.isRunning { usleep(20_000) }
        let keys = run.appendingPathComponent("keys")
        for f in ["server.key", "worker.key", "worker/worker.key"] {
            let mode =
                (try FileManager.default.attributesOfItem(atPath: keys.appendingPathComponent(f).path)[
                    .posixPermissions] as! NSNumber).intValue
            XCTAssertEqual(mode, 0o600, f)
        }
        // Intruders: a plain (unencrypted) client, and a CURVE client that knows the server key but not the workers'.
        let plain = try ZMQSocket(ctx, .dealer)
        try plain.connect(endpoint)
        try plain.send(
            Message.frames(
                .hello, runId: 0, body: Body.encode(Body.Hello(version: 1, host: "intruder", pid: 1, rank: nil))))
        let stranger = try ZMQSocket(ctx, .dealer, receiveTimeoutMs: 500)
        let own = try ZMQSocket.curveKeypair()
        let serverKey = String(decoding: try Data(contentsOf: keys.appendingPathComponent("server.pub")), as: UTF8.self)
        try stranger.makeCurveClient(serverKey: serverKey, publicKey: own.publicKey, secretKey: own.secretKey)
        try stranger.connect(endpoint)
        try stranger.send(
            Message.frames(
                .hello, runId: 0, body: Body.encode(Body.Hello(version: 1, host: "stranger", pid: 2, rank: nil))))
        XCTAssertNil(try stranger.receive(timeoutMs: 1000), "a client without the run's key got an answer")

        // The workers' copy holds no secret of the coordinator's: a worker host cannot pose as it.
        let workerKeys = keys.appendingPathComponent("worker")
        XCTAssertEqual(
            try FileManager.default.contentsOfDirectory(atPath: workerKeys.path).sorted(),
            ["server.pub", "worker.key", "worker.pub"])
        XCTAssertEqual(
            (try FileManager.default.attributesOfItem(atPath: workerKeys.path)[.posixPermissions] as! NSNumber)
                .intValue, 0o700)
        XCTAssertEqual(
            try Data(contentsOf: workerKeys.appendingPathComponent("worker.key")),
            try Data(contentsOf: keys.appendingPathComponent("worker.key")))
        let workers = try (0..<2).map { _ in
            try startProcess(Binaries.worker, ["--connect", endpoint, "--keys", workerKeys.path])
        }
        c.wait()
        for w in workers {
            w.wait()
            XCTAssertEqual(w.process.terminationStatus, 0, w.errors())
        }
        XCTAssertEqual(c.process.terminationStatus, 0, c.errors())
        XCTAssertTrue(
            c.errors().contains("refused a connection from 127.0.0.1: CURVE without the run's worker key"), c.errors())
        XCTAssertFalse(c.errors().contains("intruder") || c.errors().contains("stranger"), "an intruder was welcomed")
        let layout = ParameterLayout(try ModelShape(config: TrainingData.config(root)))
        let a = try Checkpoint.read(path: run.appendingPathComponent("checkpoints/last.ckpt").path, layout: layout).1
            .values
        let b = try Checkpoint.read(
            path: root.appendingPathComponent("curve-clean/checkpoints/last.ckpt").path, layout: layout
        ).1.values
        XCTAssertTrue(a == b, "CURVE changed the result")
        plain.close()
        stranger.close()
    }
}
