import Foundation
import XCTest

/// `swiftrain suite` on synthetic data: a 2 × 2 grid (two input settings × two targets) run locally,
/// interrupted mid-cell with SIGTERM, re-run (the finished cell skipped, the interrupted one resumed),
/// and the report checked against each cell's own eval JSON and against `swiftrain baselines`.
final class SuiteTests: XCTestCase {
    /// Synthetic data with ERA5 (tp is a target here) and a normalisation of every variable, made with the CLI.
    static let data: URL = {
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("swiftrain-suite-\(ProcessInfo.processInfo.processIdentifier)")
        try? FileManager.default.removeItem(at: url)
        try! FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        let synth = try! runProcess(
            Binaries.swiftrain, ["synth", "--out", "data", "--from", "2016-04-01", "--to", "2016-05-31T23:00"], cwd: url
        )
        precondition(synth.status == 0, synth.err)
        try! TrainingData.config(url).yaml().write(
            to: url.appendingPathComponent("c.yaml"), atomically: true, encoding: .utf8)
        let norm = try! runProcess(Binaries.swiftrain, ["normalize", "--config", "c.yaml"], cwd: url)
        precondition(norm.status == 0, norm.err)
        return url
    }()
    override class func tearDown() { try? FileManager.default.removeItem(at: data) }

    func json(_ url: URL) throws -> [String: Any] {
        try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
    }

    func testAGridRunsIsInterruptedResumesAndReports() throws {
        let root = Self.data, out = root.appendingPathComponent("suite")
        let args = [
            "suite", "--config", root.appendingPathComponent("c.yaml").path, "--grid", "sources=simsat,era16_3",
            "--grid", "imerg=true,false", "--out", out.path, "--workers", "1", "--train-arg=--blas-threads=1",
        ]
        let second = out.appendingPathComponent("sources-simsat_imerg-false")
        let s = try startProcess(Binaries.swiftrain, args)
        // SIGTERM once the second cell has trained a step: it checkpoints and the suite stops.
        let deadline = Date().addingTimeInterval(120)
        let metrics = second.appendingPathComponent("metrics.jsonl").path
        while s.process.isRunning && Date() < deadline
            && !((try? String(contentsOfFile: metrics, encoding: .utf8))?.contains("\"kind\":\"step\"") ?? false)
        {
            usleep(20_000)
        }
        kill(s.process.processIdentifier, SIGTERM)
        s.wait()
        XCTAssertEqual(s.process.terminationStatus, 3, s.errors())
        XCTAssertTrue(s.errors().contains("interrupted in sources-simsat_imerg-false"), s.errors())
        let fm = FileManager.default
        XCTAssertTrue(fm.fileExists(atPath: second.appendingPathComponent("checkpoints/last.ckpt").path))
        XCTAssertFalse(fm.fileExists(atPath: second.appendingPathComponent("finished.json").path))
        XCTAssertFalse(fm.fileExists(atPath: out.appendingPathComponent("sources-era16-3_imerg-true").path))

        let again = try runProcess(Binaries.swiftrain, args)
        XCTAssertEqual(again.status, 0, again.err)
        XCTAssertTrue(again.err.contains("cell 1/4 sources-simsat_imerg-true: finished earlier, skipped"), again.err)
        XCTAssertTrue(
            again.err.contains("cell 2/4 sources-simsat_imerg-false: resuming from its last checkpoint"), again.err)
        XCTAssertTrue(again.err.contains("cell 3/4 sources-era16-3_imerg-true: training"), again.err)
        let log = try String(
            contentsOf: out.appendingPathComponent("logs/sources-simsat_imerg-false.log"), encoding: .utf8)
        XCTAssertTrue(log.contains("resuming at epoch"), log)
        // The resumed cell trained as many steps as its uninterrupted twin with the other target.
        let steps = { (cell: String) in
            try self.json(out.appendingPathComponent("\(cell)/finished.json"))["global_step"] as? Int
        }
        XCTAssertEqual(try steps("sources-simsat_imerg-false"), try steps("sources-simsat_imerg-true"))

        // `tensorboard --logdir SUITE` sees one run per cell, each with its own configuration as hparams
        // (read with the multiplexer TensorBoard's server itself uses).
        let board = try runProcess(
            "/usr/bin/env",
            [
                "python3", "-W", "ignore", "-c",
                """
                import sys
                from tensorboard.backend.event_processing.plugin_event_multiplexer import EventMultiplexer
                from tensorboard.plugins.hparams import plugin_data_pb2 as pd
                m = EventMultiplexer(size_guidance={"tensors": 0}); m.AddRunsFromDirectory(sys.argv[1]); m.Reload()
                content = m.PluginRunToTagToContent("hparams")
                for run in sorted(m.Runs()):
                    h = pd.HParamsPluginData.FromString(content[run]["_hparams_/session_start_info"])
                    h = h.session_start_info.hparams
                    print(run, h["sources"].string_value, h["imerg"].bool_value, len(m.Tensors(run, "val_loss")))
                """, out.path,
            ])
        if board.status != 0 && ProcessInfo.processInfo.environment["SWIFTRAIN_REQUIRE_PYTHON_ORACLES"] == nil {
            print("note: tensorboard is not installed, so the suite's TensorBoard runs were not checked")
        } else {
            XCTAssertEqual(
                board.out.split(separator: "\n").sorted(),
                [
                    "sources-era16-3_imerg-false/tensorboard era16_3 False 2",
                    "sources-era16-3_imerg-true/tensorboard era16_3 True 2",
                    "sources-simsat_imerg-false/tensorboard simsat False 2",
                    "sources-simsat_imerg-true/tensorboard simsat True 2",
                ], board.out + board.err)
        }

        // Another grid into the same directory is refused.
        var other = args
        other[other.firstIndex(of: "imerg=true,false")!] = "imerg=true"
        let refused = try runProcess(Binaries.swiftrain, other)
        XCTAssertEqual(refused.status, 1)
        XCTAssertTrue(refused.err.contains("another suite is in this directory"), refused.err)

        let r = try runProcess(Binaries.swiftrain, ["suite", "--report", out.path])
        XCTAssertEqual(r.status, 0, r.err)
        XCTAssertTrue(r.out.contains("| ConvLSTM, simsat |") && r.out.contains("| ConvLSTM, era16_3 |"), r.out)
        let report = try json(out.appendingPathComponent("report.json"))
        let entries = try XCTUnwrap(report["entries"] as? [[String: Any]])
        XCTAssertEqual(entries.count, 4)
        for e in entries {
            // One seed per setting: the entry's RMSE is the cell's own eval/test.json value.
            let cell = try XCTUnwrap((e["cells"] as? [String])?.first)
            let eval = try json(out.appendingPathComponent("\(cell)/eval/test.json"))
            let leads = try XCTUnwrap(eval["leads"] as? [[String: Any]])
            XCTAssertEqual(leads.count, 5)
            let rmse = try XCTUnwrap(e["rmse"] as? [String: [String: Any]])
            for l in leads {
                let h = try XCTUnwrap(l["hours"] as? Int), model = try XCTUnwrap(l["model"] as? Double)
                XCTAssertEqual(rmse["\(h)"]?["mean"] as? Double, model, "\(cell) at \(h) h")
            }
            XCTAssertTrue(fm.fileExists(atPath: out.appendingPathComponent("figures/\(cell)-curves.png").path))
        }
        // The baselines, once per target, against `swiftrain baselines` on that target's configuration.
        let baselines = try XCTUnwrap(report["baselines"] as? [[String: Any]])
        XCTAssertEqual(baselines.count, 2)
        for b in baselines {
            let imerg = try XCTUnwrap(b["imerg"] as? Bool)
            let config = out.appendingPathComponent("configs/sources-simsat_imerg-\(imerg).yaml").path
            let direct = try runProcess(Binaries.swiftrain, ["baselines", "--config", config, "--json"])
            XCTAssertEqual(direct.status, 0, direct.err)
            let expected = try XCTUnwrap(
                try JSONSerialization.jsonObject(with: Data(direct.out.utf8)) as? [String: Any])
            let want = try XCTUnwrap(expected["leads"] as? [[String: Any]])
            let got = try XCTUnwrap(b["leads"] as? [[String: Any]])
            XCTAssertEqual(got.count, want.count)
            for (g, w) in zip(got, want) {
                XCTAssertEqual(g["persistence"] as? Double, w["persistence"] as? Double)
                XCTAssertEqual(g["climatology"] as? Double, w["climatology"] as? Double)
                XCTAssertEqual(g["weeklyClimatology"] as? Double, w["weekly_climatology"] as? Double)
            }
            XCTAssertTrue(r.out.contains(String(format: "%.3f", try XCTUnwrap(got[0]["persistence"] as? Double))))
        }
    }
}
