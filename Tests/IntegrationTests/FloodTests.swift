import Foundation
import RainModel
import RainProtocol
import RainSupport
import RainTraining
import RainZMQ
import XCTest

/// A thread-safe count.
final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var n = 0
    func increment() { lock.withLock { n += 1 } }
    var value: Int { lock.withLock { n } }
}

/// A flood at the coordinator's TCP port while it trains: ~300 MiB offered by a plain client, a CURVE
/// client with its own key, and a client holding the run's keys (an invited host gone wrong) sending
/// frames over the 64 KiB limit and thousands of garbage messages just under it. The coordinator's
/// resident memory stays within a few MiB of what it was, and training ends with the bits of a clean run.
final class FloodTests: XCTestCase {
    static let root = TrainingData.make("flood")
    override class func tearDown() { try? FileManager.default.removeItem(at: root) }

    /// VmRSS of `pid` in bytes, nil once it is gone.
    static func rss(_ pid: Int32) -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
            let kb = Int(line.split(separator: " ").dropFirst().first ?? "")
        else { return nil }
        return kb * 1024
    }

    func params(_ run: String) throws -> [Float] {
        let layout = ParameterLayout(try ModelShape(config: TrainingData.config(Self.root)))
        return try Checkpoint.read(
            path: Self.root.appendingPathComponent("\(run)/checkpoints/last.ckpt").path, layout: layout
        ).1.values
    }

    func testAFloodLeavesTheCoordinatorsMemoryBoundedAndTrainingUnchanged() throws {
        let config = Self.root.appendingPathComponent("c.yaml").path
        let steps = ["--set", "epochs=6", "--blas-threads", "1", "--progress-every", "0"]
        let clean = try runProcess(
            Binaries.swiftrain,
            ["train", "--config", config, "--run", Self.root.appendingPathComponent("clean").path, "--workers", "2"]
                + steps)
        XCTAssertEqual(clean.status, 0, clean.err)

        let endpoint = try freeLoopbackEndpoint()
        let run = Self.root.appendingPathComponent("flooded")
        let c = try startProcess(
            Binaries.swiftrain,
            ["train", "--config", config, "--run", run.path, "--listen", endpoint, "--expect-workers", "2"] + steps)
        let pid = c.process.processIdentifier
        // The rogue holds worker 1's key: an invited host gone wrong.
        let keys = try TrainingTests.waitForWorkerKeys(run, c, worker: 1)
        let workers = try (0..<2).map {
            try startProcess(Binaries.worker, ["--connect", endpoint, "--keys", TrainingTests.workerKeys(run, $0)])
        }
        while !c.errors().contains("step 2/") && c.process.isRunning { usleep(10_000) }
        let baseline = Self.rss(pid) ?? 0

        let ctx = try ZMQContext()
        let mib = [UInt8](repeating: 0xA5, count: 1 << 20), under = [UInt8](repeating: 0x5A, count: 60 << 10)
        let plain = try ZMQSocket(ctx, .dealer)
        try plain.connect(endpoint)
        let stranger = try ZMQSocket(ctx, .dealer)
        let own = try ZMQSocket.curveKeypair()
        try stranger.makeCurveClient(serverKey: keys.serverPublic, publicKey: own.publicKey, secretKey: own.secretKey)
        try stranger.connect(endpoint)
        let rogue = try ZMQSocket(ctx, .dealer)
        try rogue.makeCurveClient(
            serverKey: keys.serverPublic, publicKey: keys.workerPublic, secretKey: keys.workerSecret)
        try rogue.connect(endpoint)
        for s in [plain, stranger, rogue] { try s.setSendTimeout(200) }
        let group = DispatchGroup(), over = StopSignal(), sent = Counter()
        DispatchQueue.global().async(group: group) {
            for _ in 0..<64 where !over.isSet {
                try? plain.send([mib])
                try? stranger.send([mib])
            }
        }
        DispatchQueue.global().async(group: group) {
            for i in 0..<3000 where !over.isSet {
                // Over the frame limit (the connection is dropped and rebuilt), or garbage just under it.
                if (try? rogue.send(i % 100 == 0 ? [mib] : [Array("flood \(i)".utf8), under])) != nil {
                    sent.increment()
                }
            }
        }
        var peak = baseline
        while c.process.isRunning {
            if let r = Self.rss(pid) { peak = max(peak, r) }
            usleep(5_000)
        }
        over.set()
        c.wait()
        for w in workers { w.wait() }
        group.wait()
        for s in [plain, stranger, rogue] { s.close() }
        let log = c.errors()
        XCTAssertEqual(c.process.terminationStatus, 0, log)
        for w in workers { XCTAssertEqual(w.process.terminationStatus, 0, w.errors()) }
        XCTAssertTrue(log.contains("refused a connection from 127.0.0.1"), log)
        XCTAssertTrue(log.contains("rejected a message"), log)
        // The invited host gone wrong is named by its key, which the run can revoke.
        XCTAssertTrue(log.contains("under key w1;"), log)
        let growth = peak - baseline
        print("coordinator RSS \(baseline >> 20) MiB before the flood, peak \(peak >> 20) MiB; \(sent.value) sent")
        // The flood really ran while it trained: the rogue got (nearly) all of its messages out.
        XCTAssertGreaterThan(sent.value, 2500, "the flood ended early")
        let rejected = log.components(separatedBy: "rejected a message").count - 1
        XCTAssertGreaterThan(rejected, 0, log)
        // Offered: 64 MiB plain + 64 MiB stranger + 30 MiB oversize + ~174 MiB garbage. Held at most:
        // 64 queued messages of ≤ 64 KiB per connection.
        XCTAssertLessThan(growth, 24 << 20, "the coordinator grew by \(growth >> 20) MiB under the flood")
        let a = try params("clean"), b = try params("flooded")
        XCTAssertEqual(zip(a, b).filter { $0.bitPattern != $1.bitPattern }.count, 0, "the flood changed the result")
    }
}
