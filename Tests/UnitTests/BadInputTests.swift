import Foundation
import RainConfig
import RainData
import RainProtocol
import RainSupport
import XCTest

/// Every bad input gets an error naming the file or field, what was expected, what was found, and what to do.
final class BadInputTests: XCTestCase {
    func testMissingFile() throws {
        let tiny = try TinyDataset(root: temporaryDirectory(self))
        let file = tiny.root.appendingPathComponent("simsat5625/simsat5625__simsat5625.mmap")
        try FileManager.default.removeItem(at: file)
        // Opening the data is fine (a run may not need the file); a run that reads it is told which file.
        let catalog = try DataCatalog(paths: tiny.paths)
        let e = errorText { _ = try SampleIndex(spec: try SampleSpec(tiny.config()), catalog: catalog) }
        XCTAssertTrue(
            e.contains(file.path) && e.contains("data file missing")
                && e.contains("expected: raw float32 file of shape [320, 3, 2, 4]")
                && e.contains("this configuration reads simsat5625/clbt from it") && e.contains("what to do:"), e)
        XCTAssertEqual(
            catalog.reads(for: try SampleSpec(tiny.config())).first { $0.file == file.lastPathComponent }?.status,
            "absent")
    }

    func testTruncatedFile() throws {
        let tiny = try TinyDataset(root: temporaryDirectory(self))
        let file = tiny.root.appendingPathComponent("imerg5625/imerg5625__imerg5625.mmap")
        let h = try FileHandle(forWritingTo: file)
        try h.truncate(atOffset: 4 * 8 * 100)  // 100 of 960 rows
        try h.close()
        let e = errorText {
            _ = try SampleIndex(spec: try SampleSpec(tiny.config()), catalog: DataCatalog(paths: tiny.paths))
        }
        XCTAssertTrue(
            e.contains(file.path) && e.contains("truncated") && e.contains("expected: 30720 bytes")
                && e.contains("found:    3200 bytes (100 complete rows)"), e)
    }

    func testMalformedJSONAndMissingKey() throws {
        let tiny = try TinyDataset(root: temporaryDirectory(self))
        let info = tiny.root.appendingPathComponent("simsat5625/simsat5625_info.json")
        let good = try String(contentsOf: info, encoding: .utf8)
        try "{\"variables\": {".write(to: info, atomically: true, encoding: .utf8)
        var e = errorText { _ = try DataCatalog(paths: tiny.paths) }
        XCTAssertTrue(e.contains(info.path) && e.contains("malformed metadata JSON"), e)

        var obj = try JSONSerialization.jsonObject(with: Data(good.utf8)) as! [String: Any]
        var vars = obj["variables"] as! [String: [String: Any]]
        vars["simsat5625/clbt"]!.removeValue(forKey: "mmap_name")
        obj["variables"] = vars
        try JSONSerialization.data(withJSONObject: obj).write(to: info)
        e = errorText { _ = try DataCatalog(paths: tiny.paths) }
        XCTAssertTrue(e.contains(info.path) && e.contains("missing key 'mmap_name' at variables.simsat5625/clbt"), e)
    }

    func testInconsistentMetadataIsReportedAllAtOnce() throws {
        let tiny = try TinyDataset(root: temporaryDirectory(self))
        let url = tiny.root.appendingPathComponent("simsat5625/simsat5625_info.json")
        var info = try DatasetInfo.load(url)
        info.variables["simsat5625/clbt"]!.offset = 2  // 3 levels from channel 2 of 3
        info.memmap["simsat5625__simsat5625.mmap"]!.daterange![1] += 3 * 3600  // one row more than the file has
        try info.write(to: url)
        let e = errorText { _ = try DataCatalog(paths: tiny.paths) }
        XCTAssertTrue(
            e.contains("the date range describes more rows than the file has") && e.contains("found:    dims[0] = 320"),
            e)
        _ = try TinyDataset(root: tiny.root)  // rewrite, then break only the offset
        info = try DatasetInfo.load(url)
        info.variables["simsat5625/clbt"]!.offset = 2
        try info.write(to: url)
        let e2 = errorText { _ = try DataCatalog(paths: tiny.paths) }
        XCTAssertTrue(
            e2.contains("channels outside the file") && e2.contains("offset + 3 level(s) ≤ 3 channels")
                && e2.contains("found:    offset 2"), e2)
    }

    func testVariableNoDatasetHas() throws {
        let tiny = try TinyDataset(root: temporaryDirectory(self))
        var c = tiny.config()
        c.data = [tiny.paths[0], tiny.paths[1]]  // no simsat5625
        let catalog = try DataCatalog(paths: c.data)
        let e = errorText { _ = try SampleIndex(spec: try SampleSpec(c), catalog: catalog) }
        XCTAssertTrue(
            e.contains("simsat5625/clbt: no dataset has this variable")
                && e.contains("found:    datasets era5625, imerg5625")
                && e.contains("add the dataset directory"), e)
    }

    func testPartitionOutsideEveryDatasetsRange() throws {
        let tiny = try TinyDataset(root: temporaryDirectory(self))
        var c = tiny.config()
        c.testStart = UTCTime.make(2025, 1, 1)
        c.testEnd = UTCTime.make(2025, 12, 31, 23)
        let index = try SampleIndex(spec: try SampleSpec(c), catalog: try DataCatalog(paths: c.data))
        let test = index.samples(.test)
        XCTAssertEqual(test.count, 0)
        XCTAssertEqual(test.leads[0].candidates, 2908)  // (364 d + 23 h − 36 h)/3 h + 1
        XCTAssertEqual(test.leads[0].reasons.map(\.variable), ["simsat5625/clbt", "imerg5625/precipitationcal"])
        XCTAssertTrue(
            test.leads[0].reasons.allSatisfy { $0.count == 2908 && $0.reason.hasPrefix("after last available time") })
        let e = errorText { _ = try index.requireSamples(.test) }
        XCTAssertTrue(
            e.contains("test partition: has no usable samples")
                && e.contains("test_start/test_end inside the data's date ranges"), e)
        XCTAssertGreaterThan(index.samples(.train).count, 0)
    }

    func testNormalisationLackingAVariable() throws {
        let tiny = try TinyDataset(root: temporaryDirectory(self))
        var n = tiny.normalisation
        n.stats.removeValue(forKey: "simsat5625/clbt:1")
        let path = tiny.root.appendingPathComponent("norm.json").path
        try n.write(path: path)
        let loaded = try Normalisation.load(path: path)
        let e = errorText {
            _ = try SampleAssembler(
                spec: try SampleSpec(tiny.config()), catalog: try DataCatalog(paths: tiny.paths), normalisation: loaded)
        }
        XCTAssertTrue(
            e.contains(path) && e.contains("no statistics for 'simsat5625/clbt:1'")
                && e.contains("simsat5625/clbt:0, simsat5625/clbt:2") && e.contains("swiftrain normalize"), e)
        let missing = errorText { _ = try Normalisation.load(path: "/nonexistent/norm.json") }
        XCTAssertTrue(missing.contains("/nonexistent/norm.json: normalisation file not found"), missing)
    }
}

final class NormalisationTests: XCTestCase {
    func testReadsPyRainsFile() throws {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent(
            "../../../shared/fixtures/pyrain-normalisation-2016-2017.json"
        ).standardized.path
        let n = try Normalisation.load(path: path)
        XCTAssertEqual(try n.require("simsat5625/clbt:0").mean, 236.88621520996094)
        XCTAssertEqual(try n.require("imerg5625/precipitationcal").std, 0.7168794870376587)
        // The target transform uses the plain entry's std, not 1plog's.
        XCTAssertNotEqual(
            try n.require("1plog::imerg5625/precipitationcal").std, try n.require("imerg5625/precipitationcal").std)
        var c = Config()
        c.sources = .simsat_era
        c.imerg = true
        let spec = try SampleSpec(c)
        for key in spec.inputs + spec.constants + [spec.target] where key != "simsat5625/clbt" {
            XCTAssertNoThrow(try n.require(key), key)
        }
    }

    func testStreamingStatisticsEqualTwoPass() {
        var rs = RunningStats()
        var all: [Double] = []
        var rng = SplitMix(7)
        for chunk in 0..<50 {
            let v = (0..<(100 + chunk)).map { _ in Float(1000 + Double.random(in: 0..<1, using: &rng) * 3) }
            all += v.map(Double.init)
            v.withUnsafeBufferPointer { rs.add($0) }
        }
        [Float.nan, 5].withUnsafeBufferPointer { rs.add($0) }  // NaNs are skipped
        all.append(5)
        let mean = all.reduce(0, +) / Double(all.count)
        let std = (all.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(all.count)).squareRoot()
        XCTAssertEqual(rs.stats.mean, mean, accuracy: 1e-9)
        XCTAssertEqual(rs.stats.std, std, accuracy: 1e-9)
    }

    func testComputeOverTrainPartitionByHand() throws {
        let tiny = try TinyDataset(root: temporaryDirectory(self))
        var c = tiny.config()
        c.trainEnd = TinyDataset.start + 2 * 3600 * 3  // rows 00:00, 03:00, 06:00
        let n = try Normalisation.compute(spec: try SampleSpec(c), catalog: try DataCatalog(paths: tiny.paths))
        // clbt:1 = 210 + y + 0.1x + h/1000 over y∈{0,1}, x∈{0..3}, h∈{0,3,6}: mean 210 + 0.5 + 0.15 + 0.003.
        XCTAssertEqual(n.stats["simsat5625/clbt:1"]!.mean, 210.653, accuracy: 1e-4)
        var vals: [Double] = []
        for h in [0.0, 3, 6] {
            for y in 0..<2 { for x in 0..<4 { vals.append(210 + Double(y) + 0.1 * Double(x) + h / 1000) } }
        }
        let m = vals.reduce(0, +) / 24
        XCTAssertEqual(
            n.stats["simsat5625/clbt:1"]!.std, (vals.map { ($0 - m) * ($0 - m) }.reduce(0, +) / 24).squareRoot(),
            accuracy: 1e-4)
        // IMERG: hourly rows 00:00 … 06:00 (7 rows): 0.5(y+1) + h/100 → mean 0.75 + 0.03.
        XCTAssertEqual(n.stats["imerg5625/precipitationcal"]!.mean, 0.78, accuracy: 1e-5)
        XCTAssertNotNil(n.stats["1plog::imerg5625/precipitationcal"])
        XCTAssertEqual(n.stats["era5625/orography"]!.mean, 150, accuracy: 1e-9)  // 100x, x = 0…3
    }
}
