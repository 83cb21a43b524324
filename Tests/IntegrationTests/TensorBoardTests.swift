import Foundation
import XCTest

/// TensorBoard's own reader (EventAccumulator) is the oracle: a 2-worker run's event files hold every scalar
/// metrics.jsonl records at the same step, the resolved configuration as hparams, and a resumed run's steps
/// continue in a new file without a gap or a duplicate (tools/check_tensorboard.py).
final class TensorBoardTests: XCTestCase {
    static let data = TrainingData.make("tensorboard")
    var root: URL { Self.data }

    private func oracle(_ run: URL) throws -> String? {
        let check = try runProcess("/usr/bin/env", ["python3", "-c", "import tensorboard, numpy"])
        guard check.status == 0 || ProcessInfo.processInfo.environment["SWIFTRAIN_REQUIRE_PYTHON_ORACLES"] != nil else {
            print(
                "note: tensorboard is not installed, so its reader did not check the event files "
                    + "(pip install tensorboard)"
            )
            return nil
        }
        let r = try runProcess(
            "/usr/bin/env", ["python3", "-W", "ignore", Binaries.repoRoot + "/tools/check_tensorboard.py", run.path])
        XCTAssertEqual(r.status, 0, r.out + r.err)
        XCTAssertFalse(r.out.contains("DIFFERENT"), r.out)
        return r.out
    }

    func testScalarsAndHParamsEqualMetricsAndContinueAfterResume() throws {
        let run = root.appendingPathComponent("tb")
        let first = try runProcess(
            Binaries.swiftrain,
            [
                "train", "--config", root.appendingPathComponent("c.yaml").path, "--run", run.path, "--workers", "2",
                "--max-steps", "7", "--blas-threads", "1", "--progress-every", "0",
            ])
        XCTAssertEqual(first.status, 0, first.err)
        let resumed = try runProcess(
            Binaries.swiftrain, ["train", "--resume", run.path, "--workers", "2", "--blas-threads", "1"])
        XCTAssertEqual(resumed.status, 0, resumed.err)
        let files = try FileManager.default.contentsOfDirectory(atPath: run.appendingPathComponent("tensorboard").path)
        XCTAssertEqual(files.count, 2, "a resumed run adds its own event file: \(files)")
        XCTAssertTrue(files.allSatisfy { $0.hasPrefix("events.out.tfevents.") }, "\(files)")
        // eval adds the test scores beside the training's, at the checkpoint's step (a third file).
        let eval = try runProcess(Binaries.swiftrain, ["eval", "--run", run.path, "--phase", "test"])
        XCTAssertEqual(eval.status, 0, eval.err)
        guard let out = try oracle(run) else { return }
        XCTAssertTrue(out.contains("2 validations, 2 map images") && out.contains("3 event files"), out)

        // A writer killed mid-record leaves a torn last record: TensorBoard reads everything before it.
        // The last record of the resumed run's file holds the last epoch's maps.
        let torn = root.appendingPathComponent("torn")
        try FileManager.default.copyItem(at: run.appendingPathComponent("tensorboard"), to: torn)
        let newest = try files.map { run.appendingPathComponent("tensorboard/\($0)") }.max { a, b in
            let date = { (u: URL) in
                try u.resourceValues(forKeys: [.contentModificationDateKey]).contentModificationDate!
            }
            return try date(a) < date(b)
        }!
        let bytes = try Data(contentsOf: newest)
        try bytes.dropLast(5).write(to: torn.appendingPathComponent(newest.lastPathComponent))
        let metrics = try String(contentsOf: run.appendingPathComponent("metrics.jsonl"), encoding: .utf8)
        let steps = metrics.components(separatedBy: "\"kind\":\"step\"").count - 1
        let r = try runProcess(
            "/usr/bin/env",
            [
                "python3", "-W", "ignore", "-c",
                """
                import sys
                from tensorboard.backend.event_processing.event_accumulator import EventAccumulator as A
                a = A(sys.argv[1], size_guidance={"scalars": 0, "images": 0}); a.Reload()
                print(len(a.Images("maps/valid")), len(a.Scalars("val_loss")), len(a.Scalars("train_loss")))
                """, torn.path,
            ])
        XCTAssertEqual(r.status, 0, r.err)
        XCTAssertEqual(r.out.trimmingCharacters(in: .whitespacesAndNewlines), "1 2 \(steps)", r.out + r.err)
    }

    /// A coordinator killed outright (SIGKILL, wherever it is) leaves event files TensorBoard reads to the last
    /// whole record: every step it wrote, in order, and at most the one step metrics.jsonl had before it.
    func testAKilledCoordinatorLeavesEventFilesTensorBoardReads() throws {
        let run = root.appendingPathComponent("killed")
        let c = try startProcess(
            Binaries.swiftrain,
            [
                "train", "--config", root.appendingPathComponent("c.yaml").path, "--run", run.path, "--workers", "2",
                "--set", "epochs=100", "--blas-threads", "1", "--progress-every", "0",
            ])
        let metrics = run.appendingPathComponent("metrics.jsonl").path
        let steps = {
            ((try? String(contentsOfFile: metrics, encoding: .utf8)) ?? "").components(separatedBy: "\"kind\":\"step\"")
                .count - 1
        }
        let deadline = Date().addingTimeInterval(120)
        while c.process.isRunning && steps() < 40 && Date() < deadline { usleep(5_000) }
        XCTAssertTrue(c.process.isRunning, c.errors())
        kill(c.process.processIdentifier, SIGKILL)
        c.wait()
        let written = steps()
        let r = try runProcess(
            "/usr/bin/env",
            [
                "python3", "-W", "ignore", "-c",
                """
                import sys
                from tensorboard.backend.event_processing.event_accumulator import EventAccumulator as A
                a = A(sys.argv[1], size_guidance={"scalars": 0}); a.Reload()
                print(" ".join(str(e.step) for e in a.Scalars("train_loss")))
                """, run.appendingPathComponent("tensorboard").path,
            ])
        if r.status != 0 && ProcessInfo.processInfo.environment["SWIFTRAIN_REQUIRE_PYTHON_ORACLES"] == nil {
            return print("note: tensorboard is not installed, so the killed run's event files were not read")
        }
        XCTAssertEqual(r.status, 0, r.err)
        let read = r.out.split(separator: " ").compactMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        XCTAssertEqual(read, Array(1...max(1, read.count)), "steps read: \(r.out)")
        XCTAssertTrue(
            (written - 1...written).contains(read.count), "\(read.count) steps read, \(written) in metrics.jsonl")
    }
}
