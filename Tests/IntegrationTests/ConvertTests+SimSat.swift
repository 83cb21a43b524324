import Foundation
import RainData
import RainNetCDF
import RainSupport
import XCTest

/// `swiftrain convert simsat` on satYYYY.nc files written here: one with a time coordinate, a channel
/// axis named `band` and descending latitudes, one without a time coordinate (rows from 1 January).
extension ConvertTests {
    func testSimSatYearsConvertByTimeOrFromTheYearsStart() throws {
        let root = temporaryDirectory("convert-simsat")
        let input = root.appendingPathComponent("simsat")
        try FileManager.default.createDirectory(at: input, withIntermediateDirectories: true)
        func kelvin(_ t: EpochSeconds, _ c: Int, _ y: Int, _ x: Int) -> Float {
            (Int(t / 10_800) + x + c) % 17 == 0
                ? .nan : 200 + Float((Int(t / 10_800) * 3 + c * 29 + y * 5 + x) % 900) / 10
        }
        let spans = [(2016, UTCTime.make(2016, 4, 1), 24, true), (2017, UTCTime.make(2017, 1, 1), 16, false)]
        for (year, t0, n, timed) in spans {
            let f = try NetCDFFile.create(path: input.appendingPathComponent("sat\(year).nc").path)
            let dt = try f.defineDimension("time", length: nil), db = try f.defineDimension("band", length: 3)
            let dlat = try f.defineDimension("lat", length: h), dlon = try f.defineDimension("lon", length: w)
            let vlat = try f.defineVariable("lat", .double, dimensions: [dlat])
            let vlon = try f.defineVariable("lon", .double, dimensions: [dlon])
            var vt: Int32 = -1
            if timed {
                vt = try f.defineVariable("time", .double, dimensions: [dt])
                try f.setAttribute("units", .text("hours since 2016-04-01 00:00:00"), variable: vt)
            }
            let v = try f.defineVariable("clbt", .float, dimensions: [dt, db, dlat, dlon], fill: -1)
            try f.endDefinitions()
            // 2016's file has descending latitudes.
            try f.write(
                vlat, (0..<h).map { (timed ? 87.1875 : -87.1875) + Double($0) * 5.625 * (timed ? -1 : 1) },
                start: [0], count: [h])
            try f.write(vlon, (0..<w).map { Double($0) * 5.625 }, start: [0], count: [w])
            for r in 0..<n {
                let t = t0 + EpochSeconds(r) * 10_800
                if timed { try f.write(vt, [Double(t - t0) / 3600], start: [r], count: [1]) }
                let plane: [Float] = (0..<(3 * h * w)).map { k in
                    let c = k / (h * w), y = (k / w) % h, x = k % w
                    let v = kelvin(t, c, timed ? h - 1 - y : y, x)
                    return v.isNaN ? -1 : v
                }
                try f.write(v, plane, start: [r, 0, 0, 0], count: [1, 3, h, w])
            }
            try f.close()
        }
        // A broken year fails in its child process; the good year is kept and the re-run resumes it.
        let good = try Data(contentsOf: input.appendingPathComponent("sat2017.nc"))
        try Data("not NetCDF".utf8).write(to: input.appendingPathComponent("sat2017.nc"))
        let failed = try swiftrain(
            ["convert", "simsat", "--from", "simsat", "--out", "broken", "--jobs", "2"], in: root, status: 1)
        XCTAssertTrue(failed.contains("sat2017.nc"), failed)
        XCTAssertTrue(failed.contains("simsat5625 2017: the process converting this year failed"), failed)
        try good.write(to: input.appendingPathComponent("sat2017.nc"))
        let resumed = try swiftrain(["convert", "simsat", "--from", "simsat", "--out", "broken"], in: root)
        XCTAssertTrue(resumed.contains("resumed: 2016"), resumed)

        let log = try swiftrain(
            ["convert", "simsat", "--from", "simsat", "--out", ".", "--jobs", "2"], in: root,
            env: ["TZ": "America/Sao_Paulo"])
        XCTAssertTrue(log.contains("2 years, 2 at a time in child processes"), log)
        // One process or two, resumed or not: the same bytes.
        _ = try swiftrain(["convert", "simsat", "--from", "simsat", "--out", "serial", "--jobs", "1"], in: root)
        for f in ["simsat5625__simsat5625.mmap", "simsat5625_info.json", "simsat5625.dill"] {
            let a = try Data(contentsOf: root.appendingPathComponent("simsat5625/\(f)"))
            XCTAssertTrue(a == (try Data(contentsOf: root.appendingPathComponent("serial/simsat5625/\(f)"))), f)
            XCTAssertTrue(a == (try Data(contentsOf: root.appendingPathComponent("broken/simsat5625/\(f)"))), f)
        }
        let dir = root.appendingPathComponent("simsat5625")
        try assertDillEqualsJSON(dir, "simsat5625")
        let info = try DatasetInfo.load(dir.appendingPathComponent("simsat5625.dill"))
        let first = UTCTime.make(2016, 4, 1), last = UTCTime.make(2017, 12, 31, 21)
        let m = try XCTUnwrap(info.memmap["simsat5625__simsat5625.mmap"])
        XCTAssertEqual(m.daterange, [Double(first), Double(last)])
        XCTAssertEqual(m.dims, [Int((last - first) / 10_800) + 1, 3, h, w])
        XCTAssertEqual(m.tfreqS, 10_800)
        let clbt = try XCTUnwrap(info.variables["simsat5625/clbt"])
        XCTAssertEqual(clbt.levels, [0, 1, 2])
        XCTAssertEqual(clbt.offset, 0)
        XCTAssertEqual(clbt.firstTs, Double(first))
        XCTAssertEqual(clbt.lastTs, Double(UTCTime.make(2017, 1, 2, 21)))
        let data = try Data(contentsOf: dir.appendingPathComponent("simsat5625__simsat5625.mmap"))
        func row(_ t: EpochSeconds) -> [Float] {
            let start = Int((t - first) / 10_800) * 3 * h * w * 4
            return data[start..<(start + 3 * h * w * 4)].withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        }
        for (_, t0, n, _) in spans {
            for r in 0..<n {
                let t = t0 + EpochSeconds(r) * 10_800, p = row(t)
                for k in 0..<(3 * h * w) {
                    let want = kelvin(t, k / (h * w), (k / w) % h, k % w)
                    guard want.isNaN ? p[k].isNaN : p[k] == want else {
                        XCTFail("\(UTCTime.iso(t)) value \(k): \(p[k]) vs \(want)")
                        return
                    }
                }
            }
        }
        XCTAssertTrue(row(UTCTime.make(2016, 7, 1)).allSatisfy(\.isNaN), "times without data are NaN")
    }
}
