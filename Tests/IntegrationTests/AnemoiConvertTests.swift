import Foundation
import XCTest

/// `swiftrain convert anemoi` on datasets that anemoi-datasets itself created from NetCDF files
/// (tools/anemoi_fixture.py): every converted value held to xarray's reading of those NetCDF files, the
/// statistics to anemoi's own reader (tools/check_anemoi_convert.py); then a run trains with the dataset's
/// statistics as its normalisation, a 1.40625° dataset converts at its grid and averaged onto 5.625°
/// (tools/check_anemoi_fine.py), and a grid RainBench does not have is refused naming what was found.
///
/// anemoi-datasets pins zarr < 3, which the other Zarr tests' fixtures need: it lives in its own virtual
/// environment, whose interpreter `.ci/run` passes as SWIFTRAIN_ANEMOI_PYTHON.
final class AnemoiConvertTests: XCTestCase {
    private var python: String { ProcessInfo.processInfo.environment["SWIFTRAIN_ANEMOI_PYTHON"] ?? "python3" }

    private func swiftrain(_ args: [String], in dir: URL, status: Int32 = 0, line: UInt = #line) throws -> String {
        let r = try runProcess(Binaries.swiftrain, args, cwd: dir)
        XCTAssertEqual(r.status, status, "swiftrain \(args.joined(separator: " ")):\n\(r.out)\n\(r.err)", line: line)
        return r.out + r.err
    }

    /// The fixture directory, or nil (with a note) when anemoi-datasets is not installed and the oracles
    /// are not required.
    private func fixtures() throws -> URL? {
        let check = try runProcess("/usr/bin/env", [python, "-c", "import anemoi.datasets, xarray, netCDF4"])
        guard check.status == 0 || ProcessInfo.processInfo.environment["SWIFTRAIN_REQUIRE_PYTHON_ORACLES"] != nil else {
            print("note: anemoi-datasets is not installed, so the anemoi tests did not run (see .ci/run)")
            return nil
        }
        guard check.status == 0 else {
            XCTFail(
                "\(python) cannot import anemoi.datasets, xarray and netCDF4 (set SWIFTRAIN_ANEMOI_PYTHON): "
                    + check.err
            )
            return nil
        }
        let dir = temporaryDirectory("anemoi")
        let r = try runProcess("/usr/bin/env", [python, Binaries.repoRoot + "/tools/anemoi_fixture.py", dir.path])
        XCTAssertEqual(r.status, 0, r.out + r.err)
        return r.status == 0 ? dir : nil
    }

    func testAnemoiDatasetConvertsAsItsNetCDFSourcesAndTrainsWithItsStatistics() throws {
        guard let fixtures = try fixtures() else { return }
        let root = temporaryDirectory("anemoi-convert")
        let store = fixtures.appendingPathComponent("era.zarr").path
        let log = try swiftrain(["convert", "anemoi", "--from", store, "--out", "data", "--jobs", "1"], in: root)
        XCTAssertTrue(log.contains("3 constants") || log.contains("5 constants"), log)
        XCTAssertTrue(log.contains("normalisation.json"), log)
        let dataset = root.appendingPathComponent("data/era5625")
        let r = try runProcess(
            "/usr/bin/env",
            [python, "-W", "ignore", Binaries.repoRoot + "/tools/check_anemoi_convert.py", fixtures.path, dataset.path])
        XCTAssertEqual(r.status, 0, r.out + r.err)
        XCTAssertFalse(r.out.contains("DIFFERENT"), r.out)
        XCTAssertTrue(r.out.contains("19 channels × 240 dates checked"), r.out)

        // The dataset's statistics are a normalisation `train` takes, as they are.
        let yaml = """
            data: [data/era5625]
            normalisation: data/era5625/normalisation.json
            sources: era
            imerg: false
            era_target: tp6h
            sample_time_window: 12
            sample_freq: 6
            forecast_time_window: 12
            forecast_freq: 6
            sample_stride: 6
            train_start: 2016-01-03
            train_end: 2016-01-31T18:00
            valid_start: 2016-02-01
            valid_end: 2016-02-14T18:00
            test_start: 2016-02-15
            test_end: 2016-02-28T18:00
            hidden_1: 8
            hidden_2: 4
            batch_size: 8
            epochs: 1
            lr: 0.001
            """
        try yaml.write(to: root.appendingPathComponent("c.yaml"), atomically: true, encoding: .utf8)
        // The missing date (2016-01-10 12:00, inside the train months) drops the samples that would read it,
        // up front and counted, rather than feeding NaN to the model.
        let inspect = try swiftrain(["inspect", "--config", "c.yaml"], in: root)
        XCTAssertTrue(inspect.contains("missing time (missing_ts: a NaN row)"), inspect)
        _ = try swiftrain(
            ["train", "--config", "c.yaml", "--workers", "1", "--run", "run", "--progress-every", "0"], in: root)
        let metrics = try String(contentsOf: root.appendingPathComponent("run/metrics.jsonl"), encoding: .utf8)
        XCTAssertTrue(metrics.contains("val_loss"), metrics)

        // Selected variables by either name; an unknown one is refused listing what the dataset has.
        _ = try swiftrain(
            ["convert", "anemoi", "--from", store, "--out", "some", "--variables", "2t,t_850hPa,const"], in: root)
        let info = try String(
            contentsOf: root.appendingPathComponent("some/era5625/era5625_info.json"), encoding: .utf8)
        XCTAssertTrue(info.contains("era5625/t2m") && info.contains("era5625/t_850hPa"), info)
        XCTAssertFalse(info.contains("era5625/tp6h"), info)
        let unknown = try swiftrain(
            ["convert", "anemoi", "--from", store, "--out", "x", "--variables", "msl"], in: root, status: 1)
        XCTAssertTrue(unknown.contains("msl") && unknown.contains("t2m, sp, tp6h"), unknown)

        // A 1.40625° dataset converts at its own grid, and with --grid 5.625 averaged by area onto RainBench's.
        let fine = fixtures.appendingPathComponent("fine/fine.zarr").path
        _ = try swiftrain(["convert", "anemoi", "--from", fine, "--out", "fine14", "--jobs", "1"], in: root)
        _ = try swiftrain(
            ["convert", "anemoi", "--from", fine, "--out", "fine5", "--grid", "5.625", "--jobs", "1"], in: root)
        let f = try runProcess(
            "/usr/bin/env",
            [
                python, "-W", "ignore", Binaries.repoRoot + "/tools/check_anemoi_fine.py",
                fixtures.appendingPathComponent("fine").path, root.appendingPathComponent("fine14/era140625").path,
                root.appendingPathComponent("fine5/era5625").path,
            ])
        XCTAssertEqual(f.status, 0, f.out + f.err)
        XCTAssertTrue(f.out.contains("1.40625° bit for bit, 5.625° area-weighted"), f.out)

        // A grid RainBench does not have (2.5°) is refused with what was found and what to do.
        let other = fixtures.appendingPathComponent("grid25/grid25.zarr").path
        let refused = try swiftrain(["convert", "anemoi", "--from", other, "--out", "y"], in: root, status: 1)
        XCTAssertTrue(refused.contains("field_shape [72, 144]") && refused.contains("regrid"), refused)
    }
}
