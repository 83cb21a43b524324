import RainData
import RainSupport
import XCTest

/// Channel order, normalisation, local solar time and the target transform against hand-computed values.
final class AssemblyTests: XCTestCase {
    func testChannelOrderNormalisationAndTarget() throws {
        let tiny = try TinyDataset(root: temporaryDirectory(self))
        let catalog = try DataCatalog(paths: tiny.paths)
        let spec = try SampleSpec(tiny.config())
        let asm = try SampleAssembler(spec: spec, catalog: catalog, normalisation: tiny.normalisation)
        XCTAssertEqual(
            asm.channelNames,
            [
                "simsat5625/clbt:0", "simsat5625/clbt:1", "simsat5625/clbt:2",
                "time/hour", "time/day", "time/month",
                "era5625/lsm", "era5625/orography", "era5625/lat2d", "era5625/lon2d", "era5625/slt",
                "lead/24h", "lead/48h", "lead/72h", "lead/96h", "lead/120h",
            ])
        XCTAssertEqual(asm.channels, 16)  // DATA-FORMAT §5: simsat with time
        // t0 = 2016-04-30 23:00 UTC; inputs at 11:00, 14:00, 17:00, 20:00, 23:00; lead 48 h.
        let t0 = UTCTime.make(2016, 4, 30, 23)
        let sample = Sample(t0: t0, lead: 48 * 3600)
        var input = [Float](repeating: .nan, count: asm.inputCount),
            target = [Float](repeating: .nan, count: asm.targetCount)
        try asm.assemble(sample, input: &input, target: &target)
        let (H, W, C) = (2, 4, 16)
        func at(_ s: Int, _ c: Int, _ y: Int, _ x: Int) -> Float { input[((s * C + c) * H + y) * W + x] }
        let means: [Float] = [200, 210, 220], stds: [Float] = [2, 4, 5]
        for s in 0..<5 {
            let t = t0 - EpochSeconds(12 - 3 * s) * 3600
            // SimSat is 3-hourly from 00:00: 11:00 reads the 09:00 row (nearest past), etc.
            let row = TinyDataset.start + floorDiv(t - TinyDataset.start, 10800) * 10800
            XCTAssertEqual(t - row, 2 * 3600)
            for y in 0..<H {
                for x in 0..<W {
                    for c in 0..<3 {
                        XCTAssertEqual(at(s, c, y, x), (tiny.clbt(row, c, y, x) - means[c]) / stds[c], accuracy: 1e-4)
                    }
                    // Constants in the order lsm, orography, lat2d, lon2d, slt; file order is lat2d, lon2d, lsm,
                    // orography, slt.
                    for (j, fileChannel) in [2, 3, 0, 1, 4].enumerated() {
                        let key = ["lat2d", "lon2d", "lsm", "orography", "slt"][fileChannel]
                        let st = tiny.normalisation.stats["era5625/\(key)"]!
                        XCTAssertEqual(
                            at(s, 6 + j, y, x), (tiny.constant(fileChannel, y, x) - Float(st.mean)) / Float(st.std),
                            accuracy: 1e-5)
                    }
                    for l in 0..<5 { XCTAssertEqual(at(s, 11 + l, y, x), l == 1 ? 1 : 0) }
                }
            }
        }
        // Local solar time at the last step (2016-04-30 23:00 UTC), columns at longitudes 0, 90, 180, 270:
        //   0°   → 2016-04-30 23:00 → hour 23, day 30, month 4
        //   90°  → +6 h  → 2016-05-01 05:00 → 5, 1, 5
        //   180° → wraps to −180°, −12 h → 2016-04-30 11:00 → 11, 30, 4
        //   270° → −90°, −6 h → 2016-04-30 17:00 → 17, 30, 4
        let expected: [(Float, Float, Float)] = [(23, 30, 4), (5, 1, 5), (11, 30, 4), (17, 30, 4)]
        for x in 0..<W {
            for y in 0..<H {
                XCTAssertEqual(at(4, 3, y, x), expected[x].0 / 24, accuracy: 1e-6, "hour at column \(x)")
                XCTAssertEqual(at(4, 4, y, x), expected[x].1 / 31, accuracy: 1e-6, "day at column \(x)")
                XCTAssertEqual(at(4, 5, y, x), expected[x].2 / 12, accuracy: 1e-6, "month at column \(x)")
            }
        }
        // Target at t0 + 48 h, y′ = ln(1 + y / 0.5).
        for y in 0..<H {
            for x in 0..<W {
                let raw = tiny.rain(t0 + 48 * 3600, y, x)
                XCTAssertEqual(target[y * W + x], Float(log(1 + Double(raw) / 0.5)), accuracy: 1e-5)
                XCTAssertEqual(Normalisation.inverse(target[y * W + x], std: 0.5), raw, accuracy: 1e-4)
            }
        }
    }

    func testNearestPastRowForTimesBetweenRows() throws {
        let tiny = try TinyDataset(root: temporaryDirectory(self))
        let catalog = try DataCatalog(paths: tiny.paths)
        let clbt = try catalog.channels(of: "simsat5625/clbt")
        XCTAssertEqual(clbt.map(\.normKey), ["simsat5625/clbt:0", "simsat5625/clbt:1", "simsat5625/clbt:2"])
        let t = TinyDataset.start + 5 * 3600  // between the 03:00 and 06:00 rows
        XCTAssertEqual(clbt[1].row(at: t), 1)
        XCTAssertEqual(try clbt[1].plane(at: t)![0], tiny.clbt(TinyDataset.start + 3 * 3600, 1, 0, 0))
        XCTAssertNil(clbt[0].row(at: TinyDataset.start - 1))
    }

    func testWithoutTimeChannels() throws {
        let tiny = try TinyDataset(root: temporaryDirectory(self))
        let asm = try SampleAssembler(
            spec: try SampleSpec(tiny.config(incTime: false)), catalog: try DataCatalog(paths: tiny.paths),
            normalisation: tiny.normalisation)
        XCTAssertEqual(asm.channels, 13)
    }
}
