import Foundation
import RainData
import RainSupport
import XCTest

/// A dataset is found by its `.dill`, its `_info.json` or the bucket's download name, and two metadata
/// files that disagree are reported, not silently chosen between.
final class DatasetDiscoveryTests: XCTestCase {
    /// The release's SimSat metadata under `name` in a fresh directory (no data file: opening is fine).
    func simsat(named name: String) throws -> URL {
        let dir = temporaryDirectory(self).appendingPathComponent("simsat5625")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try FileManager.default.copyItem(
            at: releaseFixtures.appendingPathComponent("simsat5625/simsat5625.dill"),
            to: dir.appendingPathComponent(name))
        return dir
    }

    func testFoundByDillBucketNameOrTheFileItself() throws {
        for name in ["simsat5625.dill", "simsat5625-simsat5625.dill"] {
            let dir = try simsat(named: name)
            for path in [dir.path, dir.appendingPathComponent(name).path] {
                let ds = try Dataset(path: path)
                XCTAssertEqual(ds.name, "simsat5625")
                XCTAssertEqual(ds.infoURL.lastPathComponent, name)
                XCTAssertEqual(ds.info.variables["simsat5625/clbt"]?.levels, [0, 1, 2])
                XCTAssertEqual(Array(ds.unavailable.keys), ["simsat5625__simsat5625.mmap"], "absent, not fatal")
            }
        }
    }

    func testAgreeingJSONIsAcceptedAndADisagreeingOneIsReported() throws {
        let dir = try simsat(named: "simsat5625.dill")
        var info = try DatasetInfo.load(dir.appendingPathComponent("simsat5625.dill"))
        let json = dir.appendingPathComponent("simsat5625_info.json")
        try info.write(to: json)
        XCTAssertEqual(try Dataset(path: dir.path).infoURL.lastPathComponent, "simsat5625.dill", "PyRain's file first")

        info.variables["simsat5625/clbt"]!.offset = 1
        try info.write(to: json)
        let e = errorText { _ = try Dataset(path: dir.path) }
        XCTAssertTrue(
            e.contains("simsat5625.dill and simsat5625_info.json describe this dataset differently")
                && e.contains("variables[\"simsat5625/clbt\"]") && e.contains("\"offset\":0")
                && e.contains("\"offset\":1") && e.contains("delete the stale one"), e)
    }

    func testNoMetadataNamesWhatIsLookedFor() throws {
        let dir = temporaryDirectory(self)
        let e = errorText { _ = try Dataset(path: dir.path) }
        XCTAssertTrue(
            e.contains(dir.path) && e.contains("no dataset metadata") && e.contains("era5625_aaai-era5625_aaai.dill")
                && e.contains("_info.json"), e)
        let data = dir.appendingPathComponent("x.mmap")
        try Data(count: 16).write(to: data)
        let e2 = errorText { _ = try Dataset(path: data.path) }
        XCTAssertTrue(e2.contains("not a dataset's metadata file"), e2)
    }

    /// The ERA5 release's row-count quirk is a warning; fewer rows than the range describes is an error.
    func testRowsBeyondTheDateRangeAreAWarningAndFewerAnError() throws {
        let dir = temporaryDirectory(self).appendingPathComponent("era5625")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try FileManager.default.copyItem(
            at: releaseFixtures.appendingPathComponent("era5625/era5625.dill"),
            to: dir.appendingPathComponent("era5625.dill"))
        let ds = try Dataset(path: dir.path)
        XCTAssertEqual(
            ds.warnings,
            [
                """
                era5625__era5625.mmap: 8760 rows after 2018-12-31 23:00 are present but not described (daterange); \
                treated as unavailable, as PyRain does
                """
            ])
        var info = ds.info
        info.memmap["era5625__era5625.mmap"]!.dims[0] = 1000
        try FileManager.default.removeItem(at: dir.appendingPathComponent("era5625.dill"))
        try info.write(to: dir.appendingPathComponent("era5625_info.json"))
        let e = errorText { _ = try Dataset(path: dir.path) }
        XCTAssertTrue(e.contains("the date range describes more rows than the file has") && e.contains("350640"), e)
    }
}
