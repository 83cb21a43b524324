import Foundation
import RainConfig
import RainData
import RainSupport
import XCTest

/// `swiftrain synth`: PyRain's format, deterministic for a seed, physically plausible, and moving.
final class SyntheticDataTests: XCTestCase {
    func testDeterministicForASeedWhateverTheRange() throws {
        let a = temporaryDirectory(self), b = temporaryDirectory(self), c = temporaryDirectory(self)
        for (dir, from, seed) in [
            (a, UTCTime.make(2016, 5, 1), UInt64(1)), (b, UTCTime.make(2016, 5, 3), 1),
            (c, UTCTime.make(2016, 5, 3), 2),
        ] {
            var o = SyntheticDataset.Options(out: dir.path)
            o.from = from
            o.to = UTCTime.make(2016, 5, 5, 23)
            o.seed = seed
            o.datasets = ["imerg"]
            try SyntheticDataset.write(o)
        }
        func plane(_ dir: URL, _ t: EpochSeconds) throws -> [Float] {
            let ch = try DataCatalog(paths: [dir.appendingPathComponent("imerg5625").path]).channels(
                of: "imerg5625/precipitationcal")[0]
            return Array(UnsafeBufferPointer(start: try ch.plane(at: t)!, count: 2048))
        }
        let t = UTCTime.make(2016, 5, 4, 6)
        XCTAssertEqual(try plane(a, t), try plane(b, t), "same seed, same hour, different ranges")
        XCTAssertNotEqual(try plane(b, t), try plane(c, t), "another seed, other weather")
    }

    func testPlausibleAndLearnable() throws {
        let dir = temporaryDirectory(self)
        var o = SyntheticDataset.Options(out: dir.path)
        o.from = UTCTime.make(2016, 6, 1)
        o.to = UTCTime.make(2016, 6, 20, 23)
        try SyntheticDataset.write(o)
        let cat = try DataCatalog(
            paths: ["era5625", "imerg5625", "simsat5625"].map { dir.appendingPathComponent($0).path })
        let rain = try cat.channels(of: "imerg5625/precipitationcal")[0]
        let clbt = try cat.channels(of: "simsat5625/clbt")[0]
        let q850 = try cat.channels(of: "era5625/q_850hPa")[0], t2m = try cat.channels(of: "era5625/t2m")[0]
        var wet: [Float] = [], dryClbt: [Float] = [], wetClbt: [Float] = [], wetQ: [Float] = [], dryQ: [Float] = []
        var total = 0.0, n = 0
        // Every value of every variable is finite (tp is NaN only before 1979-01-01 07:00).
        for v in cat.variableKeys {
            for ch in try cat.channels(of: v) {
                for h in stride(from: 0, to: 20 * 24, by: 7) {
                    let p = try ch.plane(at: UTCTime.make(2016, 6, 1) + EpochSeconds(h) * 3600)!
                    XCTAssertTrue((0..<2048).allSatisfy { p[$0].isFinite }, "\(ch.normKey) at hour \(h)")
                }
            }
        }
        let slt = try cat.channels(of: "era5625/slt")[0].plane(at: 0)!
        XCTAssertTrue((0..<2048).allSatisfy { (0...7).contains(slt[$0]) })
        for day in 0..<20 {
            let t = UTCTime.make(2016, 6, 1 + day, 12)
            let r = try rain.plane(at: t)!, b = try clbt.plane(at: t)!, q = try q850.plane(at: t)!,
                s = try t2m.plane(at: t)!
            for i in 0..<2048 {
                XCTAssertGreaterThanOrEqual(r[i], 0)
                XCTAssertTrue((180...330).contains(s[i]), "t2m \(s[i]) K")
                total += Double(r[i])
                n += 1
                if r[i] > 1 {
                    wet.append(r[i])
                    wetClbt.append(b[i])
                    wetQ.append(q[i])
                } else if r[i] == 0 {
                    dryClbt.append(b[i])
                    dryQ.append(q[i])
                }
            }
        }
        let mean = total / Double(n)
        XCTAssertTrue((0.02...1.0).contains(mean), "mean rain \(mean) mm/h")
        XCTAssertGreaterThan(wet.count, 500, "rain systems exist")
        func avg(_ v: [Float]) -> Float { v.reduce(0, +) / Float(v.count) }
        XCTAssertLessThan(avg(wetClbt), avg(dryClbt) - 20, "cold cloud tops over rain")
        XCTAssertGreaterThan(avg(wetQ), avg(dryQ), "humidity where it rains")
        // Systems move: the field 24 h later correlates less with the field now than the field 1 h later does.
        func corr(_ t: EpochSeconds, _ dt: EpochSeconds) throws -> Double {
            let a = try rain.plane(at: t)!, b = try rain.plane(at: t + dt)!
            let ma = (0..<2048).reduce(0.0) { $0 + Double(a[$1]) } / 2048,
                mb = (0..<2048).reduce(0.0) { $0 + Double(b[$1]) } / 2048
            var sab = 0.0, saa = 0.0, sbb = 0.0
            for i in 0..<2048 {
                let x = Double(a[i]) - ma, y = Double(b[i]) - mb
                sab += x * y
                saa += x * x
                sbb += y * y
            }
            return sab / (saa * sbb).squareRoot()
        }
        let t = UTCTime.make(2016, 6, 10)
        let hour = try corr(t, 3600), day = try corr(t, 24 * 3600)
        XCTAssertGreaterThan(hour, 0.8)
        XCTAssertLessThan(day, hour - 0.2, "24 h persistence must lose skill: systems move, grow and decay")
    }

    func testFinerGridAndPyRainMetadata() throws {
        let dir = temporaryDirectory(self)
        var o = SyntheticDataset.Options(out: dir.path)
        o.from = UTCTime.make(2016, 4, 1)
        o.to = UTCTime.make(2016, 4, 1, 23)
        o.grid = 1.40625
        try SyntheticDataset.write(o)
        let info = try DatasetInfo.load(dir.appendingPathComponent("era140625/era140625_info.json"))
        XCTAssertEqual(info.memmap["era140625__era140625.mmap"]?.dims, [24, 18, 128, 256])
        XCTAssertEqual(info.memmap["era140625__era140625_const.mmap"]?.dims, [5, 128, 256])
        XCTAssertEqual(info.variables["era140625/z_500hPa"]?.offset, 11)
        XCTAssertEqual(info.variables["era140625/z_500hPa"]?.index2pressure, ["0": 500])
        // PyRain writes None as null: constants keep explicit nulls.
        let raw = try String(contentsOf: dir.appendingPathComponent("era140625/era140625_info.json"), encoding: .utf8)
        XCTAssertTrue(raw.contains("\"daterange\" : null"))
        var c = Config()
        c.grid = 1.40625
        c.sources = .simsat_era
        c.imerg = true
        c.data = ["era140625", "imerg140625", "simsat140625"].map { dir.appendingPathComponent($0).path }
        let spec = try SampleSpec(c)
        let names = try InputLayout(spec: spec, catalog: try DataCatalog(paths: c.data)).channelNames
        XCTAssertEqual(names.count, 29)  // simsat_era without time: 3 + 16 + 5 + 5
        XCTAssertEqual(names.first, "simsat140625/clbt:0")
    }
}
