import Foundation
import RainModel
import RainProtocol
import RainTraining
import RainZMQ
import XCTest

/// CURVE mode: only holders of one of the run's worker keys get in, one worker per key; traffic is encrypted.
final class CurveTests: XCTestCase {
    static let root = TrainingData.make("curve")
    override class func tearDown() { try? FileManager.default.removeItem(at: root) }

    /// The parameters of a clean local run of 4 steps with 2 workers (trained once per class).
    func cleanParams() throws -> [Float] {
        let run = Self.root.appendingPathComponent("curve-clean")
        if !FileManager.default.fileExists(atPath: run.appendingPathComponent("finished.json").path) {
            let clean = try runProcess(
                Binaries.swiftrain,
                [
                    "train", "--config", Self.root.appendingPathComponent("c.yaml").path, "--run", run.path,
                    "--workers", "2", "--max-steps", "4",
                ])
            XCTAssertEqual(clean.status, 0, clean.err)
        }
        return try params(run)
    }

    func params(_ run: URL) throws -> [Float] {
        let layout = ParameterLayout(try ModelShape(config: TrainingData.config(Self.root)))
        return try Checkpoint.read(path: run.appendingPathComponent("checkpoints/last.ckpt").path, layout: layout).1
            .values
    }

    /// One key, one worker: a second process started with a key in use takes that rank's place (as a
    /// worker restarted by hand before its death was noticed would) and the first is told why it must
    /// leave; the run goes on with it and the other key's worker and ends with a clean run's bits.
    func testASecondWorkerUnderTheSameKeyReplacesTheFirst() throws {
        let endpoint = try freeLoopbackEndpoint()
        let run = Self.root.appendingPathComponent("same-key")
        let c = try startListening(
            config: Self.root.appendingPathComponent("c.yaml"), run: run, endpoint: endpoint, workers: 2,
            ["--max-steps", "4"])
        func worker(_ k: Int) throws -> Started { try startWorker(run, k, endpoint: endpoint) }
        let first = try worker(0)
        while !c.errors().contains("worker 0 connected") && c.process.isRunning { usleep(20_000) }
        let second = try worker(0)
        while !c.errors().contains("replaced by worker 1") && c.process.isRunning { usleep(20_000) }
        let other = try worker(1)
        c.wait()
        for w in [first, second, other] { w.wait() }
        XCTAssertEqual(c.process.terminationStatus, 0, c.errors())
        XCTAssertTrue(c.errors().contains("worker 0 connected from \(ProcessInfo.processInfo.hostName)"), c.errors())
        XCTAssertTrue(c.errors().contains("key w0)"), c.errors())
        XCTAssertTrue(c.errors().contains("worker 0 replaced by worker 1, which said hello under its key"), c.errors())
        XCTAssertTrue(first.errors().contains("another worker connected with this worker's key"), first.errors())
        for w in [second, other] { XCTAssertEqual(w.process.terminationStatus, 0, w.errors()) }
        XCTAssertTrue(c.errors().contains("worker 2 ready; 2 live"), c.errors())
        XCTAssertTrue(try params(run) == cleanParams(), "the replacement changed the result")
    }

    func testOnlyTheRunsWorkersAreAdmitted() throws {
        let root = Self.root
        let config = root.appendingPathComponent("c.yaml").path
        let clean = try cleanParams()

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
        func mode(_ f: String) throws -> Int {
            (try FileManager.default.attributesOfItem(atPath: keys.appendingPathComponent(f).path)[.posixPermissions]
                as! NSNumber).intValue
        }
        for f in ["server.key", "workers/w0/worker.key", "workers/w1/worker.key"] {
            XCTAssertEqual(try mode(f), 0o600, f)
        }
        for d in ["", "workers", "workers/w0", "workers/w1"] { XCTAssertEqual(try mode(d), 0o700, d) }
        // Intruders: a plain (unencrypted) client, and a CURVE client that knows the server key but no worker's.
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
        XCTAssertNil(try stranger.receive(timeoutMs: 1000), "a client without a worker key got an answer")

        // A worker's directory holds its own keypair and the coordinator's public key, nothing else: a worker
        // host can pose neither as the coordinator nor as another worker.
        let w = (0..<2).map { keys.appendingPathComponent("workers/w\($0)") }
        XCTAssertEqual(
            try FileManager.default.contentsOfDirectory(atPath: w[0].path).sorted(),
            ["server.pub", "worker.key", "worker.pub"])
        let pub = try w.map { try Data(contentsOf: $0.appendingPathComponent("worker.pub")) }
        XCTAssertNotEqual(pub[0], pub[1], "two workers share a key")
        XCTAssertEqual(try Data(contentsOf: w[1].appendingPathComponent("server.pub")), Data(serverKey.utf8))
        // A key issued and then revoked (its directory deleted) no longer gets in, and the worker holding a
        // copy says so at once instead of waiting for a welcome that cannot come (meanwhile the coordinator
        // waits for its workers).
        let issued = try runProcess(Binaries.swiftrain, ["keys", "--run", run.path, "--workers", "3"])
        XCTAssertTrue(issued.out.hasSuffix("w2  (new)\n"), issued.out + issued.err)
        let copy = temporaryDirectory("revoked").appendingPathComponent("w2")
        try FileManager.default.copyItem(at: keys.appendingPathComponent("workers/w2"), to: copy)
        try FileManager.default.removeItem(at: keys.appendingPathComponent("workers/w2"))
        let revoked = try runProcess(Binaries.worker, ["--connect", endpoint, "--keys", copy.path])
        XCTAssertEqual(revoked.status, 1, revoked.err)
        XCTAssertTrue(revoked.err.contains("the coordinator refused this worker's key (ZAP status 400)"), revoked.err)

        let workers = try w.map { try startProcess(Binaries.worker, ["--connect", endpoint, "--keys", $0.path]) }

        c.wait()
        for w in workers {
            w.wait()
            XCTAssertEqual(w.process.terminationStatus, 0, w.errors())
        }
        XCTAssertEqual(c.process.terminationStatus, 0, c.errors())
        XCTAssertTrue(
            c.errors().contains("refused a connection from 127.0.0.1: CURVE without a worker key of this run"),
            c.errors())
        XCTAssertFalse(c.errors().contains("intruder") || c.errors().contains("stranger"), "an intruder was welcomed")
        XCTAssertTrue(try params(run) == clean, "CURVE changed the result")
        plain.close()
        stranger.close()
    }
}
