import Foundation
import RainSupport
import XCTest

/// `swiftrain convert era5 --from STORE.zarr` on stores zarr-python wrote (tools/zarr_fixtures.py), every
/// converted value held to xarray's reading of the store (tools/check_zarr_convert.py); then a run trains on
/// the converted WeatherBench 2 layout end to end, and a configuration between the data's steps is refused.
final class ZarrConvertTests: XCTestCase {
    private func swiftrain(_ args: [String], in dir: URL, status: Int32 = 0, line: UInt = #line) throws -> String {
        let r = try runProcess(Binaries.swiftrain, args, cwd: dir)
        XCTAssertEqual(r.status, status, "swiftrain \(args.joined(separator: " ")):\n\(r.out)\n\(r.err)", line: line)
        return r.out + r.err
    }

    private func check(_ store: URL, _ dataset: URL, line: UInt = #line) throws {
        let r = try runProcess(
            "/usr/bin/env",
            ["python3", "-W", "ignore", Binaries.repoRoot + "/tools/check_zarr_convert.py", store.path, dataset.path])
        XCTAssertEqual(r.status, 0, r.out + r.err, line: line)
        XCTAssertFalse(r.out.contains("DIFFERENT"), r.out, line: line)
    }

    func testWeatherBench2LayoutConvertsAsXarrayReadsItAndTrains() throws {
        guard let (fixtures, _) = try ZarrReaderTests.fixtures(self) else { return }
        let root = temporaryDirectory("zarr-convert")
        let store = fixtures.appendingPathComponent("wb2.zarr")
        let log = try swiftrain(["convert", "era5", "--from", store.path, "--out", "data", "--jobs", "1"], in: root)
        XCTAssertTrue(log.contains("5 constants"), log)
        let dataset = root.appendingPathComponent("data/era5625")
        try check(store, dataset)
        let info = try String(contentsOf: dataset.appendingPathComponent("era5625_info.json"), encoding: .utf8)
        XCTAssertTrue(info.contains("\"tfreq_s\" : 21600") || info.contains("\"tfreq_s\":21600"), info)
        XCTAssertTrue(info.contains("era5625/tp6h"), info)
        // Its meaning is in the metadata, and PyRain's pickle (Python reads the .dill) says the same.
        XCTAssertTrue(info.contains("over the 6 h ending at the row's time"), info)
        let pickled = try runProcess(
            "/usr/bin/env",
            [
                "python3", "-c",
                "import pickle,sys; v=pickle.load(open(sys.argv[1],'rb'))['variables']['era5625/tp6h'];"
                    + "print(v['units'], v['long_name'])",
                dataset.appendingPathComponent("era5625.dill").path,
            ])
        XCTAssertTrue(pickled.out.hasPrefix("m total precipitation over the 6 h"), pickled.out + pickled.err)

        // A 3-hourly history cannot come from 6-hourly data: refused, naming the step.
        var yaml = """
            data: [data/era5625]
            normalisation: norm.json
            sources: era
            imerg: false
            era_target: tp6h
            sample_time_window: 12
            sample_freq: 3
            forecast_time_window: 12
            forecast_freq: 6
            sample_stride: 6
            train_start: 2016-01-06
            train_end: 2016-01-31T18:00
            valid_start: 2016-02-01
            valid_end: 2016-02-14T18:00
            test_start: 2016-02-15
            test_end: 2016-03-01T18:00
            hidden_1: 8
            hidden_2: 4
            batch_size: 8
            micro_batch: 4
            epochs: 1
            lr: 0.001
            """
        try yaml.write(to: root.appendingPathComponent("c.yaml"), atomically: true, encoding: .utf8)
        let refused = try swiftrain(["inspect", "--config", "c.yaml"], in: root, status: 1)
        XCTAssertTrue(refused.contains("era5625 holds a row every 6 h"), refused)
        XCTAssertTrue(refused.contains("input offset −9 h"), refused)

        // Lead times between the rows too (the target's leads are checked even when the inputs pass).
        let leads = yaml.replacingOccurrences(of: "sample_freq: 3", with: "sample_freq: 6")
            .replacingOccurrences(of: "forecast_freq: 6", with: "forecast_freq: 3")
        try leads.write(to: root.appendingPathComponent("c.yaml"), atomically: true, encoding: .utf8)
        let refusedLeads = try swiftrain(["inspect", "--config", "c.yaml"], in: root, status: 1)
        XCTAssertTrue(refusedLeads.contains("era5625/tp6h") && refusedLeads.contains("lead time 3 h"), refusedLeads)

        // On the data's steps it trains, validates and scores in mm over 6 h.
        yaml = yaml.replacingOccurrences(of: "sample_freq: 3", with: "sample_freq: 6")
        try yaml.write(to: root.appendingPathComponent("c.yaml"), atomically: true, encoding: .utf8)
        _ = try swiftrain(["normalize", "--config", "c.yaml"], in: root)
        let train = try swiftrain(
            [
                "train", "--config", "c.yaml", "--workers", "2", "--run", "run", "--blas-threads", "1",
                "--progress-every", "0",
            ],
            in: root)
        let metrics = try String(contentsOf: root.appendingPathComponent("run/metrics.jsonl"), encoding: .utf8)
        XCTAssertTrue(metrics.contains("val_loss"), train + metrics)
        let eval = try swiftrain(["eval", "--run", "run", "--phase", "test"], in: root)
        XCTAssertTrue(eval.contains("mm/6h"), eval)

        // Forecasts as WeatherBench 2's Zarr layout equal the NetCDF forecasts (xarray reads both).
        let range = ["--from", "2016-02-16", "--to", "2016-02-20", "--truth"]
        _ = try swiftrain(["predict", "--run", "run", "--out", "f.nc"] + range, in: root)
        _ = try swiftrain(["predict", "--run", "run", "--out", "f.zarr", "--format", "zarr"] + range, in: root)
        let r = try runProcess(
            "/usr/bin/env",
            ["python3", "-W", "ignore", Binaries.repoRoot + "/tools/check_forecast_zarr.py", "f.zarr", "f.nc"],
            cwd: root)
        XCTAssertEqual(r.status, 0, r.out + r.err)
        XCTAssertTrue(r.out.contains("total_precipitation_6hr: (5, 2, 32, 64) m"), r.out)
        XCTAssertFalse(FileManager.default.fileExists(atPath: root.appendingPathComponent("f.zarr.nc").path))
    }

    func testHourlyStoreWithOtherOrientationAndAGapConverts() throws {
        guard let (fixtures, _) = try ZarrReaderTests.fixtures(self) else { return }
        let root = temporaryDirectory("zarr-hourly")
        let store = fixtures.appendingPathComponent("era_hourly.zarr")
        // Two years in two child processes; latitudes descending, longitudes from −180°, (time, lat, lon).
        let log = try swiftrain(
            ["convert", "era5", "--from", store.path, "--out", "data", "--variables", "t2m,tp,t", "--jobs", "2"],
            in: root)
        XCTAssertTrue(log.contains("2017") && log.contains("2018"), log)
        try check(store, root.appendingPathComponent("data/era5625"))
        // tp6h is not in an hourly store: the error says what is.
        let wrong = try swiftrain(
            ["convert", "era5", "--from", store.path, "--out", "other", "--variables", "tp6h"], in: root, status: 1)
        XCTAssertTrue(wrong.contains("tp (this store is hourly)"), wrong)
    }
}
