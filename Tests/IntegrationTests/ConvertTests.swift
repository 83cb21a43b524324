import Foundation
import RainData
import RainNetCDF
import RainSupport
import XCTest

/// `swiftrain convert era5` on the real WeatherBench constants (PyRain's converter's output is the
/// oracle) and on small WeatherBench-style files written here with libnetcdf, whose values follow
/// formulas the test evaluates itself.
final class ConvertTests: XCTestCase {
    static let real = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../../shared/fixtures/real/constants_5.625deg.nc").standardized
    let h = 32, w = 64

    func swiftrain(
        _ args: [String], in dir: URL, status: Int32 = 0, env: [String: String] = [:], line: UInt = #line
    ) throws -> String {
        let r = try runProcess(Binaries.swiftrain, args, cwd: dir, env: env)
        XCTAssertEqual(r.status, status, "swiftrain \(args.joined(separator: " ")):\n\(r.out)\n\(r.err)", line: line)
        return r.out + r.err
    }

    /// Python's pickle reads the written .dill as the dict the _info.json holds.
    func assertDillEqualsJSON(_ dir: URL, _ name: String, line: UInt = #line) throws {
        let code = """
            import json, pickle, sys
            d = pickle.load(open(sys.argv[1], "rb")); j = json.load(open(sys.argv[2]))
            print(json.loads(json.dumps(d)) == j and type(d["memmap"]) is dict)
            """
        let r = try runProcess(
            "/usr/bin/env",
            [
                "python3", "-c", code, dir.appendingPathComponent("\(name).dill").path,
                dir.appendingPathComponent("\(name)_info.json").path,
            ])
        XCTAssertEqual(r.out.trimmingCharacters(in: .whitespacesAndNewlines), "True", r.err, line: line)
    }

    func testConstantsAreByteIdenticalToPyRainsConverterAndNormaliseToItsStatistics() throws {
        let root = temporaryDirectory("convert-const")
        try ReleaseTree.make(root)
        try ReleaseTree.yaml.write(to: root.appendingPathComponent("c.yaml"), atomically: true, encoding: .utf8)
        // The release's ERA5 directory goes; the converted one takes its place.
        try FileManager.default.removeItem(at: root.appendingPathComponent("era5625"))
        let input = root.appendingPathComponent("weatherbench/constants")
        try FileManager.default.createDirectory(at: input, withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: Self.real, to: input.appendingPathComponent("constants_5.625deg.nc"))
        _ = try swiftrain(
            ["convert", "era5", "--from", "weatherbench", "--out", ".", "--variables", "const"], in: root)

        let ours = try Data(contentsOf: root.appendingPathComponent("era5625/era5625__era5625_const.mmap"))
        let pyrain = try Data(
            contentsOf: ReleaseTree.fixtures.appendingPathComponent("era5625/era5625__era5625_const.mmap"))
        XCTAssertEqual(ours.count, 5 * h * w * 4)
        XCTAssertTrue(ours == pyrain, "the const memmap differs from PyRain's converter's")
        try assertDillEqualsJSON(root.appendingPathComponent("era5625"), "era5625")

        _ = try swiftrain(["normalize", "--config", "c.yaml"], in: root)
        let n = try Normalisation.load(path: root.appendingPathComponent("norm.json").path)
        let reference = try Normalisation.load(
            path: ReleaseTree.fixtures.appendingPathComponent("../pyrain-normalisation-2016-2017.json").standardized
                .path)
        for v in ConversionNames.constants {
            let a = try n.require("era5625/\(v)"), b = try reference.require("era5625/\(v)")
            XCTAssertEqual(a.mean, b.mean, accuracy: 1e-6 * max(1, abs(b.mean)), v)
            XCTAssertEqual(a.std, b.std, accuracy: 1e-6 * b.std, v)
        }
        // Converting again into the same place is refused, not silently overwritten.
        let again = try swiftrain(
            ["convert", "era5", "--from", "weatherbench", "--out", ".", "--variables", "const"], in: root, status: 1)
        XCTAssertTrue(again.contains("a dataset already exists here") && again.contains("--append"), again)
    }
}

enum ConversionNames {
    static let constants = ["lat2d", "lon2d", "lsm", "orography", "slt"]
}

/// Small WeatherBench-style inputs: packed total precipitation on descending latitudes and longitudes
/// from −180°, temperature on three levels out of order with missing values and times in fractional
/// days; leap day, DST changes (EU 2016-03-27, US 2016-11-06) and a year end among the times.
enum WeatherBenchFiles {
    static let h = 32, w = 64
    static let tpScale = 1e-5, tpOffset = 0.01
    static let levels = [850.0, 300.0, 500.0]

    /// tp's packed value at hour `t` (since 1970), RainBench row y (south first), column x (from 0° E); nil = fill.
    static func tpPacked(_ t: EpochSeconds, _ y: Int, _ x: Int) -> Int16? {
        let hour = Int(t / 3600)
        if (hour + y + x) % 97 == 0 { return nil }
        return Int16((hour * 7 + y * 3 + x) % 2000)
    }
    static func tp(_ t: EpochSeconds, _ y: Int, _ x: Int) -> Float {
        tpPacked(t, y, x).map { Float(Double($0) * tpScale + tpOffset) } ?? .nan
    }
    /// Temperature (K) at `level` hPa; nil = missing.
    static func temperature(_ t: EpochSeconds, _ level: Double, _ y: Int, _ x: Int) -> Float? {
        if y == 5 && x == 7 { return nil }
        return 200 + Float(level) / 10 + Float(y) + Float(x) / 100 + Float(t / 3600 % 1000) / 1000
    }

    static func tpTimes(_ year: Int) -> [EpochSeconds] {
        if year == 2017 { return (0..<3).map { UTCTime.make(2017, 1, 1, $0) } }
        let leap = (0..<4).map { UTCTime.make(2016, 2, 28, 22) + EpochSeconds($0) * 3600 }
        let dst = (0..<4).map { UTCTime.make(2016, 3, 27, 0) + EpochSeconds($0) * 3600 }
        let spring = stride(from: UTCTime.make(2016, 4, 1), through: UTCTime.make(2016, 5, 10, 23), by: 3600)
        return leap + dst + Array(spring)
    }
    static func tTimes(_ year: Int) -> [EpochSeconds] {
        if year == 2017 { return [UTCTime.make(2017, 1, 1)] }
        return (4...8).map { UTCTime.make(2016, 11, 6, $0) } + [UTCTime.make(2016, 12, 31, 23)]
    }

    static func write(_ dir: URL, year: Int) throws {
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        // Total precipitation: (time, latitude, longitude), north first, from −180°, int16 packed.
        let tp = try NetCDFFile.create(path: dir.appendingPathComponent("total_precipitation_\(year)_5.625deg.nc").path)
        let times = tpTimes(year)
        let dt = try tp.defineDimension("time", length: nil), dy = try tp.defineDimension("latitude", length: h)
        let dx = try tp.defineDimension("longitude", length: w)
        let vt = try tp.defineVariable("time", .int, dimensions: [dt])
        try tp.setAttribute("units", .text("hours since 1900-01-01 00:00:00.0"), variable: vt)
        try tp.setAttribute("calendar", .text("gregorian"), variable: vt)
        let vy = try tp.defineVariable("latitude", .double, dimensions: [dy])
        let vx = try tp.defineVariable("longitude", .double, dimensions: [dx])
        let v = try tp.defineVariable("tp", .short, dimensions: [dt, dy, dx], deflate: 1)
        try tp.setAttribute("scale_factor", .doubles([tpScale]), variable: v)
        try tp.setAttribute("add_offset", .doubles([tpOffset]), variable: v)
        try tp.setAttribute("_FillValue", .shorts([-32767]), variable: v)
        try tp.endDefinitions()
        let since1900 = UTCTime.make(1900, 1, 1)
        try tp.write(vt, times.map { Int32(($0 - since1900) / 3600) }, start: [0], count: [times.count])
        try tp.write(vy, (0..<h).map { 87.1875 - Double($0) * 5.625 }, start: [0], count: [h])
        try tp.write(vx, (0..<w).map { -180 + Double($0) * 5.625 }, start: [0], count: [w])
        for (i, t) in times.enumerated() {
            var plane = [Int16](repeating: 0, count: h * w)
            for r in 0..<h {
                for j in 0..<w {
                    // File row r is RainBench row h−1−r; file column j is longitude −180 + j·5.625.
                    plane[r * w + j] = tpPacked(t, h - 1 - r, (j + w / 2) % w) ?? -32767
                }
            }
            try tp.write(v, plane, start: [i, 0, 0], count: [1, h, w])
        }
        try tp.close()

        // Temperature: (time, level, lat, lon) with levels 850, 300, 500; time in days since the year.
        let tf = try NetCDFFile.create(path: dir.appendingPathComponent("temperature_\(year)_5.625deg.nc").path)
        let tt = tTimes(year)
        let et = try tf.defineDimension("time", length: nil), el = try tf.defineDimension("level", length: 3)
        let ey = try tf.defineDimension("lat", length: h), ex = try tf.defineDimension("lon", length: w)
        let wt = try tf.defineVariable("time", .double, dimensions: [et])
        try tf.setAttribute("units", .text("days since \(year)-01-01"), variable: wt)
        let wl = try tf.defineVariable("level", .double, dimensions: [el])
        let wy = try tf.defineVariable("lat", .double, dimensions: [ey])
        let wx = try tf.defineVariable("lon", .double, dimensions: [ex])
        let wv = try tf.defineVariable("t", .float, dimensions: [et, el, ey, ex])
        try tf.setAttribute("missing_value", .floats([1e20]), variable: wv)
        try tf.endDefinitions()
        let jan1 = UTCTime.make(year, 1, 1)
        try tf.write(wt, tt.map { Double($0 - jan1) / 86_400 }, start: [0], count: [tt.count])
        try tf.write(wl, levels, start: [0], count: [3])
        try tf.write(wy, (0..<h).map { -87.1875 + Double($0) * 5.625 }, start: [0], count: [h])
        try tf.write(wx, (0..<w).map { Double($0) * 5.625 }, start: [0], count: [w])
        for (i, t) in tt.enumerated() {
            for (l, p) in levels.enumerated() {
                let plane = (0..<(h * w)).map { temperature(t, p, $0 / w, $0 % w) ?? 1e20 }
                try tf.write(wv, plane, start: [i, l, 0, 0], count: [1, 1, h, w])
            }
        }
        try tf.close()
    }
}

extension ConvertTests {
    func testWeatherBenchFilesConvertByTimestampLevelAndFillResumeAndAppend() throws {
        let root = temporaryDirectory("convert-temporal")
        try ReleaseTree.make(root)
        try FileManager.default.removeItem(at: root.appendingPathComponent("era5625"))
        let input = root.appendingPathComponent("wb")
        try FileManager.default.createDirectory(at: input, withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: Self.real, to: input.appendingPathComponent("constants_5.625deg.nc"))
        try WeatherBenchFiles.write(input, year: 2016)
        // A machine in New York: nothing may depend on its zone.
        let env = ["TZ": "America/New_York"]
        let args = [
            "convert", "era5", "--from", "wb", "--out", ".", "--variables", "const,tp,t_300hPa,t_850hPa",
            "--years", "2016",
        ]
        _ = try swiftrain(args, in: root, env: env)

        let dir = root.appendingPathComponent("era5625")
        let info = try DatasetInfo.load(dir.appendingPathComponent("era5625.dill"))
        XCTAssertEqual(try DatasetInfo.load(dir.appendingPathComponent("era5625_info.json")), info)
        try assertDillEqualsJSON(dir, "era5625")
        let m = try XCTUnwrap(info.memmap["era5625__era5625.mmap"])
        XCTAssertEqual(m.dims, [8784, 3, h, w], "2016 is a leap year: 366 × 24 rows of 3 channels")
        XCTAssertEqual(m.daterange, [Double(UTCTime.make(2016, 1, 1)), Double(UTCTime.make(2016, 12, 31, 23))])
        XCTAssertEqual(m.tfreqS, 3600)
        let tpInfo = try XCTUnwrap(info.variables["era5625/tp"])
        XCTAssertEqual(tpInfo.offset, 0)
        XCTAssertEqual(tpInfo.firstTs, Double(UTCTime.make(2016, 2, 28, 22)))
        XCTAssertEqual(tpInfo.lastTs, Double(UTCTime.make(2016, 5, 10, 23)))
        let t300 = try XCTUnwrap(info.variables["era5625/t_300hPa"]),
            t850 = try XCTUnwrap(info.variables["era5625/t_850hPa"])
        XCTAssertEqual([t300.offset, t850.offset], [1, 2])
        XCTAssertEqual(t300.levels, [5])
        XCTAssertEqual(t850.index2pressure, ["0": 850])
        XCTAssertEqual(info.variables["era5625/lsm"]?.offset, 2)
        XCTAssertNil(info.variables["era5625/t_500hPa"])

        // Every value against the formulas, through a memory map of the file as the loader reads it.
        let data = try Data(contentsOf: dir.appendingPathComponent("era5625__era5625.mmap"), options: .alwaysMapped)
        XCTAssertEqual(data.count, 8784 * 3 * h * w * 4)
        let origin = UTCTime.make(2016, 1, 1)
        func plane(_ t: EpochSeconds, _ c: Int) -> [Float] {
            let row = Int((t - origin) / 3600)
            let start = ((row * 3 + c) * h * w) * 4
            return data[start..<(start + h * w * 4)].withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        }
        func same(_ a: Float, _ b: Float) -> Bool { a.isNaN ? b.isNaN : a == b }
        var checked = 0
        for t in WeatherBenchFiles.tpTimes(2016) {
            let p = plane(t, 0)
            for y in 0..<h {
                for x in 0..<w where !same(p[y * w + x], WeatherBenchFiles.tp(t, y, x)) {
                    XCTFail(
                        "tp at \(UTCTime.iso(t)) row \(y) col \(x): \(p[y * w + x]) vs \(WeatherBenchFiles.tp(t, y, x))"
                    )
                    return
                }
            }
            checked += 1
        }
        for t in WeatherBenchFiles.tTimes(2016) {
            for (c, level) in [(1, 300.0), (2, 850.0)] {
                let p = plane(t, c)
                for y in 0..<h {
                    for x in 0..<w {
                        let want = WeatherBenchFiles.temperature(t, level, y, x) ?? .nan
                        guard same(p[y * w + x], want) else {
                            XCTFail("t \(level) at \(UTCTime.iso(t)) (\(y), \(x)): \(p[y * w + x]) vs \(want)")
                            return
                        }
                    }
                }
            }
        }
        XCTAssertEqual(checked, 968)
        // Hours no file has are NaN in every channel, not zeros.
        for t in [UTCTime.make(2016, 1, 1), UTCTime.make(2016, 2, 29, 2), UTCTime.make(2016, 11, 6, 3)] {
            XCTAssertTrue(plane(t, 0).allSatisfy(\.isNaN) && plane(t, 1).allSatisfy(\.isNaN), UTCTime.iso(t))
        }
        XCTAssertFalse(plane(UTCTime.make(2016, 2, 29, 1), 0).allSatisfy(\.isNaN), "the leap day's hour is there")

        // Inspect and a short training run read the converted dataset (SimSat → ERA5 tp).
        let yaml = ReleaseTree.yaml.replacingOccurrences(of: "imerg: true", with: "imerg: false")
            .replacingOccurrences(of: "data: [era5625, imerg5625, simsat5625]", with: "data: [era5625, simsat5625]")
        try yaml.write(to: root.appendingPathComponent("c.yaml"), atomically: true, encoding: .utf8)
        let inspect = try swiftrain(["inspect", "--config", "c.yaml"], in: root)
        XCTAssertTrue(inspect.contains("era5625/tp"), inspect)
        _ = try swiftrain(["normalize", "--config", "c.yaml"], in: root)
        let train = try swiftrain(
            [
                "train", "--config", "c.yaml", "--workers", "1", "--run", "run", "--blas-threads", "1",
                "--progress-every", "0",
            ], in: root)
        let metrics = try String(contentsOf: root.appendingPathComponent("run/metrics.jsonl"), encoding: .utf8)
        XCTAssertTrue(metrics.contains("val_loss"), train + metrics)

        // --append adds 2017: rows appended, metadata rewritten, 2016 untouched.
        try WeatherBenchFiles.write(input.appendingPathComponent("2017"), year: 2017)
        let before = plane(UTCTime.make(2016, 4, 2, 5), 0)
        let appendArgs = [
            "convert", "era5", "--from", "wb", "--out", ".", "--variables", "tp,t_300hPa,t_850hPa", "--years", "2017",
            "--append",
        ]
        _ = try swiftrain(appendArgs, in: root, env: env)
        let grown = try DatasetInfo.load(dir.appendingPathComponent("era5625.dill"))
        XCTAssertEqual(grown.memmap["era5625__era5625.mmap"]?.dims, [8784 + 8760, 3, h, w])
        XCTAssertEqual(grown.memmap["era5625__era5625.mmap"]?.daterange?.last, Double(UTCTime.make(2017, 12, 31, 23)))
        XCTAssertEqual(grown.variables["era5625/tp"]?.lastTs, Double(UTCTime.make(2017, 1, 1, 2)))
        XCTAssertEqual(grown.variables["era5625/tp"]?.firstTs, Double(UTCTime.make(2016, 2, 28, 22)))
        XCTAssertNotNil(grown.variables["era5625/lsm"], "the constants stay described")
        let grownData = try Data(contentsOf: dir.appendingPathComponent("era5625__era5625.mmap"))
        func grownPlane(_ t: EpochSeconds, _ c: Int) -> [Float] {
            let start = ((Int((t - origin) / 3600) * 3 + c) * h * w) * 4
            return grownData[start..<(start + h * w * 4)].withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        }
        XCTAssertEqual(grownPlane(UTCTime.make(2016, 4, 2, 5), 0).map(\.bitPattern), before.map(\.bitPattern))
        let t1 = UTCTime.make(2017, 1, 1, 1)
        XCTAssertTrue(
            zip(grownPlane(t1, 0), (0..<(h * w)).map { WeatherBenchFiles.tp(t1, $0 / w, $0 % w) }).allSatisfy(same))
        let again = try swiftrain(appendArgs, in: root, status: 1)
        XCTAssertTrue(again.contains("appending must continue where the dataset ends"), again)

        // Killed after its first year, the same command resumes and gives the same bytes as one run.
        let two = ["convert", "era5", "--from", "wb", "--variables", "tp,t", "--years", "2016-2017"]
        let r = try runProcess(
            Binaries.swiftrain, two + ["--out", "killed"], cwd: root,
            env: ["SWIFTRAIN_CONVERT_DIE_AFTER_YEAR": "2016"])
        XCTAssertNotEqual(r.status, 0, "the hook kills the process")
        XCTAssertFalse(
            FileManager.default.fileExists(atPath: root.appendingPathComponent("killed/era5625/era5625.dill").path))
        let resumed = try swiftrain(two + ["--out", "killed"], in: root)
        XCTAssertTrue(resumed.contains("resumed: 2016"), resumed)
        _ = try swiftrain(two + ["--out", "straight"], in: root)
        for f in ["era5625__era5625.mmap", "era5625_info.json", "era5625.dill"] {
            let a = try Data(contentsOf: root.appendingPathComponent("killed/era5625/\(f)"))
            let b = try Data(contentsOf: root.appendingPathComponent("straight/era5625/\(f)"))
            XCTAssertTrue(a == b, "\(f) differs after resuming")
        }
    }
}

extension ConvertTests {
    /// PyRain's daily IMERG files: one with a time coordinate and (time, lon, lat) order, others placed
    /// by their names' dates; a missing day, fill values, the leap day.
    func testDailyIMERGFilesConvertByTimeOrByName() throws {
        let root = temporaryDirectory("convert-imerg")
        let input = root.appendingPathComponent("imerg")
        try FileManager.default.createDirectory(at: input, withIntermediateDirectories: true)
        func rain(_ t: EpochSeconds, _ y: Int, _ x: Int) -> Float {
            (Int(t / 3600) + x) % 13 == 0 ? .nan : Float((Int(t / 3600) * 5 + y * 2 + x) % 300) / 10
        }
        let days = [(2016, 2, 28), (2016, 2, 29), (2016, 3, 2)]  // 1 March is missing
        for (k, (y, m, d)) in days.enumerated() {
            let day = UTCTime.make(y, m, d)
            let f = try NetCDFFile.create(
                path: input.appendingPathComponent(String(format: "imerg%04d%02d%02d.nc", y, m, d)).path)
            let withTime = k == 1
            let dt = try f.defineDimension("time", length: 24)
            let dlat = try f.defineDimension("lat", length: h), dlon = try f.defineDimension("lon", length: w)
            let vlat = try f.defineVariable("lat", .double, dimensions: [dlat])
            let vlon = try f.defineVariable("lon", .double, dimensions: [dlon])
            var vt: Int32 = -1
            if withTime {
                vt = try f.defineVariable("time", .int64, dimensions: [dt])
                try f.setAttribute("units", .text("seconds since 1970-01-01 00:00:00 UTC"), variable: vt)
            }
            // The timed file stores (time, lon, lat), as IMERG's own files do.
            let v = try f.defineVariable(
                "precipitationcal", .float, dimensions: withTime ? [dt, dlon, dlat] : [dt, dlat, dlon], fill: -9999.9)
            try f.endDefinitions()
            try f.write(vlat, (0..<h).map { -87.1875 + Double($0) * 5.625 }, start: [0], count: [h])
            try f.write(vlon, (0..<w).map { Double($0) * 5.625 }, start: [0], count: [w])
            // The timed file's rows run backwards in time: placement must follow the coordinate.
            let hours = withTime ? Array((0..<24).reversed()) : Array(0..<24)
            if withTime { try f.write(vt, hours.map { Int64(day) + Int64($0) * 3600 }, start: [0], count: [24]) }
            for (i, hr) in hours.enumerated() {
                let t = day + EpochSeconds(hr) * 3600
                let plane: [Float] = (0..<(h * w)).map { k in
                    let (y, x) = withTime ? (k % h, k / h) : (k / w, k % w)
                    let r = rain(t, y, x)
                    return r.isNaN ? -9999.9 : r
                }
                try f.write(v, plane, start: [i, 0, 0], count: withTime ? [1, w, h] : [1, h, w])
            }
            try f.close()
        }
        _ = try swiftrain(
            ["convert", "imerg", "--from", "imerg", "--out", "."], in: root, env: ["TZ": "Europe/Berlin"])
        let dir = root.appendingPathComponent("imerg5625")
        let info = try DatasetInfo.load(dir.appendingPathComponent("imerg5625.dill"))
        try assertDillEqualsJSON(dir, "imerg5625")
        let m = try XCTUnwrap(info.memmap["imerg5625__imerg5625.mmap"])
        let first = UTCTime.make(2016, 2, 28), last = UTCTime.make(2016, 12, 31, 23)
        XCTAssertEqual(m.daterange, [Double(first), Double(last)])
        XCTAssertEqual(m.dims, [Int((last - first) / 3600) + 1, 1, h, w])
        XCTAssertEqual(info.variables["imerg5625/precipitationcal"]?.mmapName, "imerg5625__imerg5625.mmap")
        XCTAssertEqual(info.variables["imerg5625/precipitationcal"]?.lastTs, Double(UTCTime.make(2016, 3, 2, 23)))
        let data = try Data(contentsOf: dir.appendingPathComponent("imerg5625__imerg5625.mmap"))
        func plane(_ t: EpochSeconds) -> [Float] {
            let start = Int((t - first) / 3600) * h * w * 4
            return data[start..<(start + h * w * 4)].withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        }
        for (y, m, d) in days {
            for hr in 0..<24 {
                let t = UTCTime.make(y, m, d, hr), p = plane(t)
                for k in 0..<(h * w) {
                    let want = rain(t, k / w, k % w)
                    guard want.isNaN ? p[k].isNaN : p[k] == want else {
                        XCTFail("\(UTCTime.iso(t)) cell \(k): \(p[k]) vs \(want)")
                        return
                    }
                }
            }
        }
        XCTAssertTrue(plane(UTCTime.make(2016, 3, 1, 12)).allSatisfy(\.isNaN), "the missing day is NaN")
    }
}
