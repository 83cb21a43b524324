import Foundation
import RainSupport
import RainZarr
import XCTest

/// RainZarr against zarr-python: stores written by zarr-python (tools/zarr_fixtures.py: WeatherBench 2's
/// 64×32 layout with missing chunks, Zarr v3 with zstd in shards, a transpose, big-endian gzip with CRC-32C,
/// bitshuffled ints, v2 in F order with "/" keys) read here equal what zarr-python reads, bit for bit.
final class ZarrReaderTests: XCTestCase {
    struct Entry: Decodable {
        var store: String, array: String
        var shape: [Int], start: [Int], count: [Int], dims: [String]
    }

    /// The fixtures, written once per run (zarr-python is the writer and the oracle).
    static func fixtures(_ test: XCTestCase) throws -> (URL, [Entry])? {
        if let made = made { return made }
        let check = try runProcess("/usr/bin/env", ["python3", "-c", "import zarr, numcodecs, xarray"])
        guard check.status == 0 || ProcessInfo.processInfo.environment["SWIFTRAIN_REQUIRE_PYTHON_ORACLES"] != nil else {
            print("note: zarr-python is not installed, so the Zarr oracle tests did not run (pip install zarr xarray)")
            return nil
        }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("swiftrain-zarr-\(getpid())")
        try? FileManager.default.removeItem(at: dir)
        let r = try runProcess("/usr/bin/env", ["python3", Binaries.repoRoot + "/tools/zarr_fixtures.py", dir.path])
        XCTAssertEqual(r.status, 0, r.err)
        let entries = try JSONDecoder().decode(
            [Entry].self, from: Data(contentsOf: dir.appendingPathComponent("manifest.json")))
        made = (dir, entries)
        return made
    }
    nonisolated(unsafe) static var made: (URL, [Entry])?

    override class func tearDown() {
        if let (dir, _) = made { try? FileManager.default.removeItem(at: dir) }
        made = nil
    }

    private func expected(_ dir: URL, _ e: Entry, _ part: String) throws -> [Double] {
        let data = try Data(contentsOf: dir.appendingPathComponent("expect/\(e.store)/\(e.array).\(part).f64"))
        return data.withUnsafeBytes { Array($0.bindMemory(to: Double.self)) }
    }

    private func assertSame(_ a: [Double], _ b: [Double], _ what: String) {
        XCTAssertEqual(a.count, b.count, what)
        let bad = zip(a, b).enumerated().filter { _, p in !(p.0.bitPattern == p.1.bitPattern || p.0.isNaN && p.1.isNaN)
        }
        XCTAssertTrue(bad.isEmpty, "\(what): \(bad.count) values differ, first at \(bad.first.map { "\($0)" } ?? "")")
    }

    func testEveryArrayReadsAsZarrPythonReadsIt() throws {
        guard let (dir, entries) = try Self.fixtures(self) else { return }
        XCTAssertEqual(Set(entries.map(\.store)), ["wb2", "v3", "forder"])
        var stores: [String: ZarrStore] = [:]
        for e in entries {
            let store = try stores[e.store] ?? ZarrStore(path: dir.appendingPathComponent("\(e.store).zarr").path)
            stores[e.store] = store
            let a = try store.require(e.array, for: "the test")
            XCTAssertEqual(a.shape, e.shape, e.array)
            if !e.dims.isEmpty { XCTAssertEqual(a.dimensionNames, e.dims, e.array) }
            assertSame(try a.readAll(), try expected(dir, e, "all"), "\(e.store)/\(e.array)")
            assertSame(try a.read(start: e.start, count: e.count), try expected(dir, e, "region"), "\(e.array) region")
        }
        XCTAssertEqual(stores["wb2"]?.format, 2)
        XCTAssertEqual(stores["v3"]?.format, 3)
        // What the fixtures are meant to hold, so a change in zarr-python cannot quietly empty the test.
        let t2m = try stores["wb2"]!.require("2m_temperature", for: "the test").readAll()
        XCTAssertTrue(t2m[(8 * 64 * 32)..<(12 * 64 * 32)].allSatisfy(\.isNaN), "the removed chunk reads as NaN")
        XCTAssertFalse(t2m[0..<(8 * 64 * 32)].contains { $0.isNaN })
        let time = try stores["wb2"]!.require("time", for: "the test")
        XCTAssertEqual(time.text("units"), "hours since 1959-01-01")
        XCTAssertEqual(try stores["v3"]!.require("ints", for: "the test").readAll().last.map { $0 != 7 }, true)
    }
}
