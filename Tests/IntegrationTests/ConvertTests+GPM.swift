import Foundation
import RainData
import RainNetCDF
import RainSupport
import XCTest

/// `swiftrain convert imerg` on GPM's half-hourly HDF5 layout (group `Grid`, (time, lon, lat), fill
/// −9999.9, time in seconds since 1970), written here with libnetcdf. The oracles are computed here:
/// on a source grid nested in RainBench's (0.5625°, 10 × 10 cells per target cell) the area-weighted
/// mean of each block is a direct sum; on GPM's real 0.1° grid, which does not nest, the global
/// area-weighted mean must be conserved.
extension ConvertTests {
    /// One GPM file with the `name`d variable on `lats` × `lons` holding `value(i, j)` (nil: fill).
    func writeGPM(
        _ path: URL, start: EpochSeconds, variable: String, lats: [Double], lons: [Double],
        value: (Int, Int) -> Float?
    ) throws {
        try FileManager.default.createDirectory(
            at: path.deletingLastPathComponent(), withIntermediateDirectories: true)
        let f = try NetCDFFile.create(path: path.path)
        let g = try f.defineGroup("Grid")
        let dt = try g.defineDimension("time", length: 1)
        let dlon = try g.defineDimension("lon", length: lons.count)
        let dlat = try g.defineDimension("lat", length: lats.count)
        let vt = try g.defineVariable("time", .int, dimensions: [dt])
        try g.setAttribute("units", .text("seconds since 1970-01-01 00:00:00 UTC"), variable: vt)
        let vlon = try g.defineVariable("lon", .float, dimensions: [dlon])
        let vlat = try g.defineVariable("lat", .float, dimensions: [dlat])
        let v = try g.defineVariable(variable, .float, dimensions: [dt, dlon, dlat], fill: -9999.9)
        try g.setAttribute("units", .text("mm/hr"), variable: v)
        try f.endDefinitions()
        try g.write(vt, [Int32(start)], start: [0], count: [1])
        try g.write(vlon, lons.map { Float($0) }, start: [0], count: [lons.count])
        try g.write(vlat, lats.map { Float($0) }, start: [0], count: [lats.count])
        var plane = [Float](repeating: 0, count: lons.count * lats.count)
        for j in 0..<lons.count {
            for i in 0..<lats.count { plane[j * lats.count + i] = value(i, j) ?? -9999.9 }
        }
        try g.write(v, plane, start: [0, 0, 0], count: [1, lons.count, lats.count])
        try f.close()
    }

    static func gpmName(_ t: EpochSeconds, version: String) -> String {
        let f = UTCTime.fields(t), e = UTCTime.fields(t + 1799)
        let minutes = (t - UTCTime.make(f.year, f.month, f.day)) / 60
        return String(
            format: "3B-HHR.MS.MRG.3IMERG.%04d%02d%02d-S%02d%02d00-E%02d%02d59.%04d.", f.year, f.month, f.day,
            f.hour, f.minute, e.hour, e.minute, Int(minutes)) + version + ".HDF5"
    }

    func testGPMHalfHoursRegridByAreaIntoHourlyRows() throws {
        let root = temporaryDirectory("convert-gpm")
        let day = UTCTime.make(2016, 1, 1)
        let dir = root.appendingPathComponent("gpm/2016/001")
        // The nested grid: 0.5625°, centres half a cell in from −90° and −180° (GPM's convention).
        let nLat = 320, nLon = 640, d = 0.5625
        let lats = (0..<nLat).map { -90 + d / 2 + Double($0) * d },
            lons = (0..<nLon).map { -180 + d / 2 + Double($0) * d }
        func nested(_ half: Int, _ i: Int, _ j: Int) -> Float? {
            // Target cell (5, 7) loses 60 of its 100 cells, (6, 7) 30 of them, to the fill value.
            let (y, x) = (i / 10, ((j + nLon - 315) % nLon) / 10)  // source column 315 is the first at −2.8125°
            let k = (i % 10) * 10 + (j + nLon - 315) % 10
            if half == 0 && ((y, x) == (5, 7) && k < 60 || (y, x) == (6, 7) && k % 10 < 3) { return nil }
            return Float((i * 7 + j * 3 + half * 11) % 97) / 8
        }
        // Hour 0: both halves (V06B); hour 1: only its first half, V07B's variable name.
        for half in 0..<3 {
            let t = day + EpochSeconds(half) * 1800
            try writeGPM(
                dir.appendingPathComponent(Self.gpmName(t, version: half == 2 ? "V07B" : "V06B")), start: t,
                variable: half == 2 ? "precipitation" : "precipitationCal", lats: lats, lons: lons
            ) { nested(half, $0, $1) }
        }
        // Hour 2: GPM's real 0.1° grid (3600 × 1800), a smooth field; its area mean must survive.
        let fine = (lat: (0..<1800).map { -89.95 + Double($0) / 10 }, lon: (0..<3600).map { -179.95 + Double($0) / 10 })
        func smooth(_ half: Int, _ i: Int, _ j: Int) -> Float? {
            let phi = fine.lat[i] * .pi / 180, lambda = fine.lon[j] * .pi / 180
            // Even in latitude and steep at the poles: weights by degree instead of area would show.
            let trend = 3 * pow(fine.lat[i] / 90, 2) + sin(12 * phi) * cos(2 * lambda + Double(half))
            return Float(2 + trend + 0.5 * Double((i * 31 + j * 17) % 7) / 7)
        }
        for half in 0..<2 {
            let t = day + 7200 + EpochSeconds(half) * 1800
            try writeGPM(
                dir.appendingPathComponent(Self.gpmName(t, version: "V06B")), start: t, variable: "precipitationCal",
                lats: fine.lat, lons: fine.lon
            ) { smooth(half, $0, $1) }
        }

        _ = try swiftrain(["convert", "imerg", "--from", "gpm", "--out", "."], in: root, env: ["TZ": "Asia/Kolkata"])
        let out = root.appendingPathComponent("imerg5625")
        let info = try DatasetInfo.load(out.appendingPathComponent("imerg5625.dill"))
        try assertDillEqualsJSON(out, "imerg5625")
        let m = try XCTUnwrap(info.memmap["imerg5625__imerg5625.mmap"])
        XCTAssertEqual(m.daterange, [Double(day), Double(UTCTime.make(2016, 12, 31, 23))])
        XCTAssertEqual(info.variables["imerg5625/precipitationcal"]?.lastTs, Double(day + 7200))
        let data = try Data(contentsOf: out.appendingPathComponent("imerg5625__imerg5625.mmap"))
        func row(_ r: Int) -> [Float] {
            data[(r * h * w * 4)..<((r + 1) * h * w * 4)].withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        }

        // The oracle for the nested grid: each target cell is the sin(lat)-weighted mean of its block.
        func block(_ half: Int, _ y: Int, _ x: Int) -> Double {
            var s = 0.0, valid = 0.0, all = 0.0
            for i in (y * 10)..<(y * 10 + 10) {
                let weight = sin((lats[i] + d / 2) * .pi / 180) - sin((lats[i] - d / 2) * .pi / 180)
                for c in 0..<10 {
                    let j = (x * 10 + c + 315) % nLon
                    all += weight
                    if let v = nested(half, i, j) {
                        s += weight * Double(v)
                        valid += weight
                    }
                }
            }
            return valid >= all / 2 ? s / valid : .nan
        }
        func same(_ a: Float, _ b: Double) -> Bool { a.isNaN ? b.isNaN : abs(Double(a) - b) <= 1e-5 * max(1, abs(b)) }
        let hour0 = row(0), hour1 = row(1)
        for y in 0..<h {
            for x in 0..<w {
                let a = block(0, y, x), b = block(1, y, x)
                let mean = a.isNaN ? b : (a + b) / 2
                XCTAssertTrue(same(hour0[y * w + x], mean), "hour 0 (\(y), \(x)): \(hour0[y * w + x]) vs \(mean)")
                XCTAssertTrue(same(hour1[y * w + x], block(2, y, x)), "hour 1 (\(y), \(x))")
            }
        }
        XCTAssertTrue(block(0, 5, 7).isNaN && !block(0, 6, 7).isNaN, "the oracle covers both fill cases")

        // Conservation on the 0.1° grid: the global area-weighted means agree.
        let hour2 = row(2)
        var source = 0.0
        for half in 0..<2 {
            var s = 0.0
            for i in 0..<1800 {
                let weight = sin((fine.lat[i] + 0.05) * .pi / 180) - sin((fine.lat[i] - 0.05) * .pi / 180)
                var rowSum = 0.0
                for j in 0..<3600 { rowSum += Double(smooth(half, i, j)!) }
                s += weight * rowSum / 3600
            }
            source += s / 2 / 2  // the sines sum to 2 over the sphere; two halves
        }
        var target = 0.0
        for y in 0..<h {
            let phi0 = (-90 + Double(y) * 5.625) * .pi / 180, phi1 = (-90 + Double(y + 1) * 5.625) * .pi / 180
            target += (sin(phi1) - sin(phi0)) * hour2[(y * w)..<(y * w + w)].reduce(0) { $0 + Double($1) } / Double(w)
        }
        target /= 2
        XCTAssertEqual(target, source, accuracy: 1e-6 * source, "the area-weighted mean is not conserved")
        XCTAssertTrue(hour2.allSatisfy { !$0.isNaN })
        XCTAssertTrue(row(3).allSatisfy(\.isNaN), "hours without files are NaN")
    }
}
