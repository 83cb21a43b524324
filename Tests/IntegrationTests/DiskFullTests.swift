import Foundation
import RainModel
import RainTraining
import XCTest

/// The run directory on a 4 MiB tmpfs that fills up mid-run: checkpoints fail with ENOSPC while the workers keep
/// their state and training goes on; once space is back the next checkpoint time writes one, and the run ends with
/// the parameters of a run that never met a full disk, bit for bit. A disk that stays full stops the run after
/// --checkpoint-failures failures in a row, naming the last good checkpoint, which still loads.
///
/// Needs root (mount); `make test-disk` runs it, `make test` does not.
final class DiskFullTests: XCTestCase {
    static let root = TrainingData.make("disk")
    override class func tearDown() { try? FileManager.default.removeItem(at: root) }

    /// A fresh 4 MiB tmpfs, unmounted when the test ends.
    func smallDisk() throws -> URL {
        let dir = temporaryDirectory("tmpfs")
        let r = try runProcess("/bin/mount", ["-t", "tmpfs", "-o", "size=4m", "tmpfs", dir.path])
        XCTAssertEqual(r.status, 0, "mount: \(r.err)")
        addTeardownBlock { _ = try? runProcess("/bin/umount", ["-l", dir.path]) }
        return dir
    }

    /// Fills the file system of `dir` up to the last byte with `dir/ballast`.
    func fill(_ dir: URL) {
        let fd = open(dir.appendingPathComponent("ballast").path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        defer { close(fd) }
        let block = [UInt8](repeating: 1, count: 4096)
        while block.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) > 0 {}
        _ = write(fd, block, 1)  // the last partial block
        fsync(fd)
    }

    func args(_ run: URL, _ extra: [String]) -> [String] {
        [
            "train", "--config", Self.root.appendingPathComponent("c.yaml").path, "--run", run.path, "--workers", "2",
            "--blas-threads", "1", "--step-timeout", "60", "--progress-every", "0", "--set", "epochs=3",
        ] + extra
    }

    func parameters(_ run: URL) throws -> (TrainingState, [Float], [Float], [Float]) {
        let layout = ParameterLayout(try ModelShape(config: TrainingData.config(Self.root)))
        let (s, p, m, v) = try Checkpoint.read(
            path: run.appendingPathComponent("checkpoints/last.ckpt").path, layout: layout)
        return (s, p.values, m.values, v.values)
    }

    /// Once the first checkpoint exists: freezes the coordinator, fills the disk, lets it go on.
    func fillAfterFirstCheckpoint(_ run: URL, disk: URL, coordinator: Started) {
        let ckpt = run.appendingPathComponent("checkpoints/last.ckpt").path
        let deadline = Date().addingTimeInterval(120)
        while !FileManager.default.fileExists(atPath: ckpt) && coordinator.process.isRunning && Date() < deadline {
            usleep(5_000)
        }
        kill(coordinator.process.processIdentifier, SIGSTOP)
        fill(disk)
        kill(coordinator.process.processIdentifier, SIGCONT)
    }

    func testAFullDiskCostsNoStepAndTheNextCheckpointIsWritten() throws {
        guard getuid() == 0 else { return XCTFail("mounting a small file system needs root: `make test-disk`") }
        let flags = ["--checkpoint-every", "40", "--max-steps", "200"]
        let clean = Self.root.appendingPathComponent("clean")
        let c = try runProcess(Binaries.swiftrain, args(clean, flags))
        XCTAssertEqual(c.status, 0, c.err)

        let disk = try smallDisk()
        let run = disk.appendingPathComponent("run")
        let coordinator = try startProcess(Binaries.swiftrain, args(run, flags))
        fillAfterFirstCheckpoint(run, disk: disk, coordinator: coordinator)
        // Space comes back once the coordinator has said why the checkpoint failed.
        let deadline = Date().addingTimeInterval(120)
        while !coordinator.errors().contains("warning: checkpoint at global step") && coordinator.process.isRunning
            && Date() < deadline
        {
            usleep(5_000)
        }
        try FileManager.default.removeItem(at: disk.appendingPathComponent("ballast"))
        coordinator.wait()
        let log = coordinator.errors()
        XCTAssertEqual(coordinator.process.terminationStatus, 0, log)
        XCTAssertEqual(
            log.components(separatedBy: "warning: checkpoint at global step").count - 1, 1, "warned once: \(log)")
        XCTAssertTrue(log.contains("No space left on device"), log)
        XCTAssertTrue(log.contains("MB are free on the run directory's file system"), log)
        XCTAssertTrue(log.contains("failed attempt(s)"), "the recovery is logged: \(log)")
        XCTAssertFalse(log.contains("declared dead") || log.contains("left the run"), "no worker lost: \(log)")

        // metrics.jsonl: every line whole, the failures and the recovery counted, every step there once.
        let lines = try String(contentsOf: run.appendingPathComponent("metrics.jsonl"), encoding: .utf8)
            .split(separator: "\n").map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
        let failed = lines.filter { $0["kind"] as? String == "checkpoint_failed" }
        XCTAssertGreaterThanOrEqual(failed.count, 1)
        XCTAssertEqual(lines.filter { $0["kind"] as? String == "checkpoint_recovered" }.count, 1)
        XCTAssertEqual(
            lines.compactMap { $0["kind"] as? String == "step" ? $0["global_step"] as? Int : nil }, Array(1...200))

        let want = try parameters(clean), got = try parameters(run)
        XCTAssertEqual(got.0.globalStep, 200)
        XCTAssertTrue(got.1 == want.1, "parameters differ from the run that never met a full disk")
        XCTAssertTrue(got.2 == want.2 && got.3 == want.3, "Adam's moments differ")
    }

    func testADiskThatStaysFullStopsTheRunNamingTheLastGoodCheckpoint() throws {
        guard getuid() == 0 else { return XCTFail("mounting a small file system needs root: `make test-disk`") }
        let disk = try smallDisk()
        let run = disk.appendingPathComponent("run")
        let coordinator = try startProcess(
            Binaries.swiftrain, args(run, ["--checkpoint-every", "20", "--checkpoint-failures", "3"]))
        fillAfterFirstCheckpoint(run, disk: disk, coordinator: coordinator)
        coordinator.wait()
        let log = coordinator.errors()
        XCTAssertEqual(coordinator.process.terminationStatus, 1, log)
        XCTAssertTrue(log.contains("3 checkpoints in a row could not be written"), log)
        XCTAssertTrue(
            log.contains("The last good checkpoint is \(run.path)/checkpoints/last.ckpt at global step 20"), log)
        XCTAssertFalse(log.contains("fewer than --min-workers"), "the workers were not what failed: \(log)")
        try FileManager.default.removeItem(at: disk.appendingPathComponent("ballast"))
        XCTAssertEqual(try parameters(run).0.globalStep, 20, "the last good checkpoint is intact")
    }
}
