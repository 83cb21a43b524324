import Foundation
import RainModel
import RainTraining
import XCTest

/// Four workers on two "hosts" (network namespaces from ../shared/tools/netns-hosts.sh, each with its
/// own IP and host name), the coordinator on a third address, CURVE on. Bytes are counted at the
/// coordinator (its metrics), at each worker (its ring sends) and at each host's interface (the
/// kernel's counters), and compared with the model: a host's egress per step is 2(H−1)/H · S for
/// sums by host (H = 2 hosts) against 2(N−1)/N · S for one flat ring (N = 4), S the gradient's bytes.
///
/// Needs root (namespaces); `make test-hosts` runs it, `make test` does not.
final class MultiHostTests: XCTestCase {
    static let root = TrainingData.make("hosts")
    override class func tearDown() { try? FileManager.default.removeItem(at: root) }
    let tool = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../../shared/tools/netns-hosts.sh").standardized.path

    func hosts(_ args: [String]) throws -> String {
        let r = try runProcess("/bin/bash", [tool] + args)
        XCTAssertEqual(r.status, 0, r.err)
        return r.out
    }

    /// (tx, rx) bytes of host `h`'s interface so far.
    func interfaceBytes(_ h: String) throws -> (Int, Int) {
        let words = try hosts(["bytes", h]).split(separator: " ").map(String.init)
        return (
            Int(words[1].trimmingCharacters(in: .whitespacesAndNewlines))!,
            Int(words[3].trimmingCharacters(in: .whitespacesAndNewlines))!
        )
    }

    struct Run {
        var steps: [[String: Any]]
        var egress: [Int]  // bytes sent by h1, h2 during the run
        var log: String
    }

    func train(_ name: String, hierarchy: String, steps: Int) throws -> Run {
        let port = 20_000 + Int.random(in: 0..<20_000)
        let endpoint = "tcp://10.202.0.254:\(port)"
        let run = Self.root.appendingPathComponent(name)
        let before = try ["h1", "h2"].map(interfaceBytes)
        let coordinator = try startProcess(
            Binaries.swiftrain,
            [
                "train", "--config", Self.root.appendingPathComponent("c.yaml").path, "--run", run.path,
                "--listen", endpoint, "--expect-workers", "4", "--max-steps", "\(steps)", "--step-timeout", "120",
                "--hierarchy", hierarchy, "--blas-threads", "1", "--progress-every", "0",
            ])
        let workers = try ["h1", "h1", "h2", "h2"].enumerated().map { k, h in
            try startProcess(
                "/bin/bash",
                [
                    tool, "run", h, Binaries.worker, "--connect", endpoint, "--keys", TrainingTests.workerKeys(run, k),
                    "--threads", "1",
                ])
        }
        coordinator.wait()
        for w in workers {
            w.wait()
            XCTAssertEqual(w.process.terminationStatus, 0, w.errors())
        }
        XCTAssertEqual(coordinator.process.terminationStatus, 0, coordinator.errors())
        let after = try ["h1", "h2"].map(interfaceBytes)
        let lines = try String(contentsOf: run.appendingPathComponent("metrics.jsonl"), encoding: .utf8)
            .split(separator: "\n").map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
        return Run(
            steps: lines.filter { $0["kind"] as? String == "step" }, egress: zip(after, before).map { $0.0 - $1.0 },
            log: coordinator.errors())
    }

    func testFourWorkersOnTwoHostsMoveTheModelsBytes() throws {
        guard getuid() == 0 else { return XCTFail("network namespaces need root: run `make test-hosts` as root") }
        _ = try hosts(["up", "2"])
        defer { _ = try? hosts(["down"]) }
        let layout = ParameterLayout(try ModelShape(config: TrainingData.config(Self.root)))
        let s = Double(4 * layout.count), steps = 6
        let byHost = try train("by-host", hierarchy: "auto", steps: steps)
        let flat = try train("flat", hierarchy: "flat", steps: steps)
        XCTAssertTrue(byHost.log.contains(" ready; 4 live"), byHost.log)

        for (run, name) in [(byHost, "by host"), (flat, "flat")] {
            XCTAssertEqual(run.steps.count, steps, name)
            for line in run.steps {
                let c = line["coordinator_bytes"] as! Int
                XCTAssertTrue(c > 0 && c <= 64 << 10, "\(name): \(c) bytes at the coordinator")
            }
        }
        // Each worker's ring sends per step, by ring position (hosts together: h1, h1, h2, h2).
        // By host: the leader sends its share of the leaders' ring, 2(H−1)/H·S = S, and hands the sum to
        // its member (S); the member sends its gradient to the leader (S). Flat: 2(N−1)/N·S = 1.5·S each.
        func perWorker(_ run: Run) -> [Double] {
            let rows = run.steps.map { $0["ring_bytes"] as! [Int] }
            return (0..<4).map { p in Double(rows.map { $0[p] }.reduce(0, +)) / Double(rows.count) }
        }
        let headers = 2 * 8 * 200.0  // a header and body per piece, a few pieces per chunk
        for (got, want) in zip(perWorker(byHost), [2 * s, s, 2 * s, s]) {
            XCTAssertEqual(got, want, accuracy: headers, "by host: \(perWorker(byHost)) vs S = \(s)")
        }
        for got in perWorker(flat) { XCTAssertEqual(got, 1.5 * s, accuracy: headers, "flat: \(perWorker(flat))") }
        // At the hosts' interfaces (TCP/IP and CURVE framing on top, plus control messages): each host's
        // egress per step is the one cross-host hop, 2(H−1)/H·S = S by host, 1.5·S flat.
        for (run, model, name) in [(byHost, s, "by host"), (flat, 1.5 * s, "flat")] {
            for (h, bytes) in run.egress.enumerated() {
                let perStep = Double(bytes) / Double(steps)
                XCTAssertGreaterThan(perStep, model, "\(name): h\(h + 1) sent \(perStep) B/step, model \(model)")
                XCTAssertLessThan(perStep, model * 1.15 + 20_000, "\(name): h\(h + 1) sent \(perStep) B/step")
            }
        }
        // Both ways sum the same gradients: the same parameters up to summation order.
        let a = try Checkpoint.read(
            path: Self.root.appendingPathComponent("by-host/checkpoints/last.ckpt").path, layout: layout
        ).1.values
        let b = try Checkpoint.read(
            path: Self.root.appendingPathComponent("flat/checkpoints/last.ckpt").path, layout: layout
        ).1.values
        XCTAssertLessThan(zip(a, b).map { abs($0 - $1) }.max()!, 1e-5)
    }
}

/// A default local run listens only on a Unix socket in a directory of mode 0700: another user of the
/// machine (here `nobody`) who runs a real worker against it never gets in, never receives the
/// configuration, and the run trains as if it were not there. Needs root (to be another user);
/// `make test-hosts` runs it.
final class StrangerTests: XCTestCase {
    static let root = TrainingData.make("stranger")
    override class func tearDown() { try? FileManager.default.removeItem(at: root) }

    func testAnotherUserCannotJoinALocalRun() throws {
        guard getuid() == 0 else { return XCTFail("needs root to act as another user: run `make test-hosts`") }
        let run = Self.root.appendingPathComponent("run")
        let c = try startProcess(
            Binaries.swiftrain,
            [
                "train", "--config", Self.root.appendingPathComponent("c.yaml").path, "--run", run.path,
                "--workers", "2", "--set", "epochs=100", "--blas-threads", "1", "--progress-every", "0",
            ])
        while !c.errors().contains("step 2/") && c.process.isRunning { usleep(20_000) }
        let line = try XCTUnwrap(c.errors().split(separator: "\n").first { $0.contains("coordinator at ") })
        let endpoint = String(line.components(separatedBy: "coordinator at ")[1])
        XCTAssertTrue(endpoint.hasPrefix("ipc://"), endpoint)
        let dir = (String(endpoint.dropFirst("ipc://".count)) as NSString).deletingLastPathComponent
        let mode = try FileManager.default.attributesOfItem(atPath: dir)[.posixPermissions] as! Int
        XCTAssertEqual(mode & 0o777, 0o700)
        // A real worker, as user nobody: the protocol spoken correctly, from the same machine.
        let stranger = try startProcess(
            "/usr/sbin/runuser", ["-u", "nobody", "--", Binaries.worker, "--connect", endpoint, "--rank", "7"])
        // Time enough to start, connect and say hello (a worker on this socket joins within a second),
        // while the run goes on; then the run is stopped the way SLURM stops it.
        let deadline = Date().addingTimeInterval(8)
        while Date() < deadline && c.process.isRunning && !c.errors().contains("worker 2 connected") { usleep(50_000) }
        XCTAssertTrue(c.process.isRunning, "the run ended before the stranger had its chance")
        kill(c.process.processIdentifier, SIGTERM)
        c.wait()
        XCTAssertEqual(c.process.terminationStatus, 0, c.errors())
        XCTAssertTrue(c.errors().contains("stopped at epoch"), c.errors())
        // runuser does not pass SIGTERM on: stop the stranger's worker itself.
        _ = try runProcess("/usr/bin/pkill", ["-KILL", "-u", "nobody", "-f", "swiftrain-worker"])
        stranger.wait()
        XCTAssertFalse(c.errors().contains("worker 2 connected"), c.errors())
        XCTAssertFalse(
            stranger.errors().contains("train,"), "the stranger got the data's description: \(stranger.errors())")
        XCTAssertTrue(c.errors().contains(" ready; 2 live"), c.errors())
    }
}
