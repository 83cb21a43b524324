import Foundation
import RainConfig
import RainEvaluation
import RainModel
import RainNetCDF
import RainSupport
import RainTraining
import XCTest

/// `make demo`'s pipeline at a smaller size (6 months, 24 h lead only, F = 16): synth → normalize →
/// train (2 workers) → eval → plot → export. The model must beat persistence and climatology at 24 h.
final class PipelineTests: XCTestCase {
    func testSmallPipelineBeatsTheBaselinesAndWritesFiguresAndExport() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("swiftrain-pipeline-\(getpid())")
        try? FileManager.default.removeItem(at: dir)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        func run(_ args: [String]) throws -> String {
            let r = try runProcess(Binaries.swiftrain, args, cwd: dir)
            XCTAssertEqual(r.status, 0, "\(args.joined(separator: " ")): \(r.err)")
            return r.out
        }
        try """
        data: [data/era5625, data/imerg5625, data/simsat5625]
        normalisation: norm.json
        sources: simsat
        imerg: true
        inc_time: true
        no_relu: true
        train_start: 2016-04-01
        train_end: 2016-07-31T23:00
        valid_start: 2016-08-01
        valid_end: 2016-08-31T23:00
        test_start: 2016-09-01
        test_end: 2016-09-30T23:00
        forecast_time_window: 24
        forecast_freq: 24
        hidden_1: 16
        hidden_2: 8
        batch_size: 16
        lr: 0.003
        epochs: 2
        """.write(to: dir.appendingPathComponent("small.yaml"), atomically: true, encoding: .utf8)
        _ = try run(["synth", "--out", "data", "--from", "2016-04-01", "--to", "2016-09-30T23:00"])
        _ = try run(["normalize", "--config", "small.yaml"])
        _ = try run(["train", "--config", "small.yaml", "--workers", "2", "--run", "run", "--progress-every", "100"])
        let report = try JSONDecoder().decode(
            EvaluationReport.self, from: Data(try run(["eval", "--run", "run", "--phase", "test", "--json"]).utf8))
        let day1 = try XCTUnwrap(report.leads.first { $0.hours == 24 })
        let (model, persistence, climatology) = (
            try XCTUnwrap(day1.model), try XCTUnwrap(day1.persistence), try XCTUnwrap(day1.climatology)
        )
        XCTAssertLessThan(model, persistence, "24 h: the model (\(model)) must beat persistence (\(persistence))")
        XCTAssertLessThan(model, climatology, "24 h: the model (\(model)) must beat climatology (\(climatology))")
        XCTAssertGreaterThan(day1.samples, 200)
        let table = try String(contentsOf: dir.appendingPathComponent("run/eval/test.md"), encoding: .utf8)
        XCTAssertTrue(table.contains("| SwiftRain ConvLSTM | \(String(format: "%.3f", model)) |"), table)

        // The baselines command scores the same samples the same way.
        let base = try JSONDecoder().decode(
            EvaluationReport.self,
            from: Data(try run(["baselines", "--config", "small.yaml", "--phase", "test", "--json"]).utf8))
        XCTAssertEqual(base.leads.first?.persistence, persistence)
        XCTAssertEqual(base.leads.first?.climatology, climatology)
        XCTAssertNil(base.leads.first?.model)

        // Figures are real PNGs of a sensible size.
        let figures = try run(["plot", "--run", "run"]).split(separator: "\n").map(String.init)
        XCTAssertEqual(figures.count, 2)
        for f in figures {
            let d = try Data(contentsOf: URL(fileURLWithPath: f))
            XCTAssertEqual(Array(d.prefix(8)), [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A], "\(f) is not a PNG")
            let w = d[16..<20].reduce(0) { $0 << 8 | Int($1) }, h = d[20..<24].reduce(0) { $0 << 8 | Int($1) }
            // One lead here: a single row of 32×64 maps at 5 px a cell is about 300 px tall.
            XCTAssertTrue(w >= 600 && h >= 250, "\(f): \(w)×\(h)")
        }

        // The export holds every parameter under PyRain's state_dict name, in a valid safetensors layout.
        let exportDir = try run(["export", "--run", "run", "--format", "pytorch"]).trimmingCharacters(
            in: .whitespacesAndNewlines)
        let st = try Data(contentsOf: URL(fileURLWithPath: exportDir + "/model.safetensors"))
        let n = Int(st.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) })
        let header = try XCTUnwrap(try JSONSerialization.jsonObject(with: st[8..<(8 + n)]) as? [String: Any])
        let layout = ParameterLayout(
            try ModelShape(config: Config.load(path: dir.appendingPathComponent("run/config.yaml").path)))
        for (tensor, e) in zip(ParameterTensor.allCases, layout.entries) {
            let t = try XCTUnwrap(header[tensor.pyrainName] as? [String: Any], tensor.pyrainName)
            XCTAssertEqual(t["shape"] as? [Int], e.shape)
            XCTAssertEqual(t["data_offsets"] as? [Int], [4 * e.offset, 4 * (e.offset + e.count)])
        }
        XCTAssertEqual(st.count, 8 + n + 4 * layout.count)
        let params = try Checkpoint.read(
            path: dir.appendingPathComponent("run/checkpoints/best.ckpt").path, layout: layout
        ).1.values
        let stored = st[(8 + n)...].withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        XCTAssertEqual(stored, params, "the exported weights are the best checkpoint's")

        // Imported back (in the Lightning form) into a new run, the weights score exactly as the original.
        _ = try run(["export", "--run", "run", "--format", "pytorch", "--lightning", "--out", "lightning"])
        _ = try run([
            "import", "--safetensors", "lightning/model.safetensors", "--config", "run/config.yaml", "--run",
            "imported",
        ])
        var again = try JSONDecoder().decode(
            EvaluationReport.self, from: Data(try run(["eval", "--run", "imported", "--phase", "test", "--json"]).utf8))
        XCTAssertNotEqual(again.checkpoint, report.checkpoint)
        again.checkpoint = report.checkpoint
        let sorted = JSONEncoder()
        sorted.outputFormatting = .sortedKeys
        XCTAssertEqual(
            String(decoding: try sorted.encode(again), as: UTF8.self),
            String(decoding: try sorted.encode(report), as: UTF8.self))

        try checkPredict(dir: dir, layout: layout, run: run)

        // PyTorch loads both exports into PyRain's class (strict) and reproduces the forecast. CI sets
        // SWIFTRAIN_REQUIRE_PYTHON_ORACLES (and installs torch); elsewhere this part needs `pip install torch`.
        let torch = try runProcess("/usr/bin/env", ["python3", "-c", "import torch"])
        if torch.status == 0 || ProcessInfo.processInfo.environment["SWIFTRAIN_REQUIRE_PYTHON_ORACLES"] != nil {
            for d in [exportDir, dir.appendingPathComponent("lightning").path] {
                let check = try runProcess(
                    "/usr/bin/env", ["python3", Binaries.repoRoot + "/tools/check_export.py", d])
                XCTAssertEqual(check.status, 0, "\(check.out)\(check.err)")
                XCTAssertTrue(check.out.contains("9 tensors"), check.out)
            }
        } else {
            print("note: torch is not installed, so tools/check_export.py was not run (pip install torch)")
        }
    }

    /// `predict` over the end of the data: the file libnetcdf reads back has the CF layout, forecasts equal to
    /// those `eval` scores (the same samples through the model), truth equal to the data, and the init times
    /// past the data listed as skipped.
    func checkPredict(dir: URL, layout: ParameterLayout, run: ([String]) throws -> String) throws {
        let out = dir.appendingPathComponent("forecast.nc").path
        _ = try run([
            "predict", "--run", "run", "--from", "2016-09-28", "--to", "2016-10-02", "--truth", "--out", out,
        ])
        let nc = try NetCDFFile.open(path: out)
        let field = try XCTUnwrap(nc.variable("precipitation"))
        let dims = try nc.dimensions(of: field)
        XCTAssertEqual(dims.map(\.name), ["init_time", "lead_time", "lat", "lon"])
        XCTAssertEqual(dims.map(\.length), [3, 1, 32, 64], "09-28, 09-29, 09-30 written; 10-01 and 10-02 lack inputs")
        XCTAssertEqual(try nc.attribute("units", variable: field), .text("mm h-1"))
        XCTAssertEqual(try nc.attribute("Conventions"), .text("CF-1.8"))
        let skipped = try nc.attribute("skipped_init_times")
        guard case .text(let why)? = skipped else { return XCTFail("no skipped_init_times") }
        XCTAssertTrue(why.contains("2016-10-01T00:00:00Z: simsat5625/clbt: no data") && why.contains("2016-10-02"), why)
        let day = 86400.0, sept28 = 1_475_020_800.0  // 2016-09-28T00:00Z, by `date -u -d 2016-09-28 +%s`
        XCTAssertEqual(try nc.readDoubles(nc.variable("init_time")!), [sept28, sept28 + day, sept28 + 2 * day])
        XCTAssertEqual(
            try nc.attribute("units", variable: nc.variable("init_time")!),
            .text("seconds since 1970-01-01 00:00:00"))
        XCTAssertEqual(try nc.readDoubles(nc.variable("lead_time")!), [24])
        XCTAssertEqual(try nc.readDoubles(nc.variable("lat")!).prefix(2), [-87.1875, -81.5625])
        XCTAssertEqual(try nc.readDoubles(nc.variable("lon")!)[63], 354.375)

        // The forecasts eval scores for the test samples at the same init times, through the same model (the
        // run's data paths are relative to its directory's parent).
        let cwd = FileManager.default.currentDirectoryPath
        _ = FileManager.default.changeCurrentDirectoryPath(dir.path)
        defer { _ = FileManager.default.changeCurrentDirectoryPath(cwd) }
        let model = try RunDirectory(path: dir.appendingPathComponent("run").path).trainedModel()
        let runner = try model.runner()
        let part = runner.index.samples(.test)
        let forecasts = try nc.readFloats(field), truth = try nc.readFloats(XCTUnwrap(nc.variable("truth")))
        let target = try runner.catalog.channels(of: runner.index.spec.target)[0]
        for k in 0..<3 {
            let t0 = EpochSeconds(sept28 + Double(k) * day)
            let plane = Array(forecasts[(k * 2048)..<((k + 1) * 2048)])
            if let i = (0..<part.count).first(where: { part.sample($0).t0 == t0 }) {
                let expected = try runner.forecast(samples: [i], partition: .test).forecast
                let worst = zip(plane, expected).map { abs($0 - $1) }.max()!
                XCTAssertLessThanOrEqual(worst, 1e-5 * expected.map(abs).max()!, "init \(t0)")
            } else {
                XCTAssertEqual(k, 2, "only 09-30's target (10-01) lies past the data, so only it has no test sample")
            }
            let observed = try target.plane(at: t0 + 86400)
            for q in stride(from: 0, to: 2048, by: 97) {
                if let observed {
                    XCTAssertEqual(truth[k * 2048 + q], observed[q], "truth at init \(t0), cell \(q)")
                } else {
                    XCTAssertTrue(truth[k * 2048 + q].isNaN, "no observation at 10-01: truth is NaN")
                }
            }
        }
        try nc.close()
        let xarray = try runProcess("/usr/bin/env", ["python3", "-c", "import xarray, netCDF4"])
        if xarray.status == 0 || ProcessInfo.processInfo.environment["SWIFTRAIN_REQUIRE_PYTHON_ORACLES"] != nil {
            let check = try runProcess("/usr/bin/env", ["python3", Binaries.repoRoot + "/tools/check_netcdf.py", out])
            XCTAssertEqual(check.status, 0, "\(check.out)\(check.err)")
            XCTAssertTrue(check.out.contains("'init_time': 3"), check.out)
        } else {
            print("note: xarray is not installed, so tools/check_netcdf.py was not run (pip install xarray netCDF4)")
        }
    }
}
