import RainConfig
import RainData
import RainEvaluation
import RainSupport
import XCTest

/// The validated sample index on synthetic data over RainBench's real date ranges.
final class SampleIndexTests: XCTestCase {
    /// Synthetic SimSat and IMERG over 2016-01 … 2020-03 (covering every 3-hourly partition), ERA5 constants.
    static let data: URL = {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent(
            "swiftrain-index-\(ProcessInfo.processInfo.processIdentifier)")
        var o = SyntheticDataset.Options(out: url.path)
        o.from = UTCTime.make(2016, 1, 1)
        o.to = UTCTime.make(2020, 3, 31, 23)
        o.eraFill = TimeSpan(first: 1, last: 0)  // ERA5 temporal not needed for `simsat`: leave it a hole
        try! SyntheticDataset.write(o)
        return url
    }()
    override class func tearDown() { try? FileManager.default.removeItem(at: data) }

    func config(_ root: URL) -> Config {
        var c = Config()
        c.data = ["era5625", "imerg5625", "simsat5625"].map { root.appendingPathComponent($0).path }
        c.sources = .simsat
        c.imerg = true
        c.incTime = true
        return c
    }

    func testCountsEqualDataFormatOracle() throws {
        let index = try SampleIndex(
            spec: try SampleSpec(config(Self.data)), catalog: try DataCatalog(paths: config(Self.data).data))
        let train = index.samples(.train)
        XCTAssertEqual(train.leads.map(\.kept), [5108, 5100, 5092, 5084, 5076])
        XCTAssertEqual(train.count, 25_460)
        XCTAssertEqual(index.samples(.valid).leads.map(\.kept), [2868, 2860, 2852, 2844, 2836])
        XCTAssertEqual(index.samples(.valid).count, 14_260)
        XCTAssertEqual(index.samples(.test).count, 14_260)
        for p in index.partitions {
            for l in p.leads {
                XCTAssertEqual(l.dropped, 0)
                XCTAssertTrue(l.reasons.isEmpty)
            }
        }
        // Sample k of the train partition at 24 h: t0 = 2016-04-01 12:00 + k · 3 h.
        XCTAssertEqual(train.sample(0), Sample(t0: UTCTime.make(2016, 4, 1, 12), lead: 24 * 3600))
        XCTAssertEqual(train.sample(5108), Sample(t0: UTCTime.make(2016, 4, 1, 12), lead: 48 * 3600))
    }

    func testSimSatStartingThreeHoursLateDropsExactlyTheAffectedSamples() throws {
        let root = temporaryDirectory(self)
        for d in ["era5625", "imerg5625"] {
            try FileManager.default.createSymbolicLink(
                at: root.appendingPathComponent(d), withDestinationURL: Self.data.appendingPathComponent(d))
        }
        var o = SyntheticDataset.Options(out: root.path)
        o.from = UTCTime.make(2016, 4, 1, 3)
        o.to = UTCTime.make(2018, 12, 31, 23)
        o.datasets = ["simsat"]
        try SyntheticDataset.write(o)
        let c = config(root)
        let catalog = try DataCatalog(paths: c.data)
        let spec = try SampleSpec(c)
        let index = try SampleIndex(spec: spec, catalog: catalog)
        let train = index.samples(.train)
        // Only k = 0 (inputs from 2016-04-01 00:00) needs the missing row, once per lead time.
        XCTAssertEqual(train.leads.map(\.kept), [5107, 5099, 5091, 5083, 5075])
        for l in train.leads {
            XCTAssertEqual(
                l.reasons,
                [
                    DropCount(
                        variable: "simsat5625/clbt", reason: "before first available time 2016-04-01 03:00", count: 1)
                ])
            XCTAssertEqual(l.times.first, UTCTime.make(2016, 4, 1, 15))
        }
        // No crash later: every kept train sample assembles.
        let asm = try SampleAssembler(
            spec: spec, catalog: catalog, normalisation: try Normalisation.compute(spec: spec, catalog: catalog))
        var input = [Float](repeating: 0, count: asm.inputCount), target = [Float](repeating: 0, count: asm.targetCount)
        for i in 0..<train.count { try asm.assemble(train.sample(i), input: &input, target: &target) }
        XCTAssertTrue(target.allSatisfy(\.isFinite))
        // The valid partition is whole; the test partition (2019) has no SimSat here: all dropped, and why.
        XCTAssertEqual(index.samples(.valid).count, 14_260)
        let err = errorText { _ = try index.requireSamples(.test) }
        XCTAssertTrue(
            err.contains("test partition") && err.contains("has no usable samples")
                && err.contains("simsat5625/clbt: after last available time 2018-12-31 21:00"), err)
    }

    func testNaNTargetRowsAreDroppedAndCounted() throws {
        let root = temporaryDirectory(self)
        var o = SyntheticDataset.Options(out: root.path)
        o.from = UTCTime.make(1979, 1, 1)
        o.to = UTCTime.make(1979, 1, 2, 23)
        o.datasets = ["era"]
        try SyntheticDataset.write(o)
        let catalog = try DataCatalog(paths: [root.appendingPathComponent("era5625").path])
        let tp = try catalog.channels(of: "era5625/tp")[0]
        for h in 0..<9 {
            XCTAssertEqual(try tp.plane(at: UTCTime.make(1979, 1, 1, h))![100].isNaN, h < 7, "tp at \(h):00")
        }
        var c = Config()
        c.data = [root.appendingPathComponent("era5625").path]
        c.sources = .era
        c.imerg = false
        c.sampleTimeWindow = 0
        c.forecastFreq = 1
        c.forecastTimeWindow = 2
        c.trainStart = UTCTime.make(1979, 1, 1)
        c.trainEnd = UTCTime.make(1979, 1, 1, 23)
        c.validStart = UTCTime.make(1979, 1, 2)
        c.validEnd = UTCTime.make(1979, 1, 2, 23)
        c.testStart = c.validStart
        c.testEnd = c.validEnd
        let train = try SampleIndex(spec: try SampleSpec(c), catalog: catalog).samples(.train)
        // Lead 1 h: t0 = 00:00 … 22:00 (23 candidates); targets 01:00 … 06:00 are NaN → 6 dropped. Lead 2 h: 22
        // candidates, 5 NaN.
        XCTAssertEqual(train.leads.map(\.candidates), [23, 22])
        XCTAssertEqual(train.leads.map(\.kept), [17, 17])
        XCTAssertEqual(
            train.leads[0].reasons, [DropCount(variable: "era5625/tp", reason: "target contains NaN", count: 6)])
        XCTAssertEqual(
            train.leads[1].reasons, [DropCount(variable: "era5625/tp", reason: "target contains NaN", count: 5)])
    }

    func testSparseERAFillMarksTheHolesUnavailable() throws {
        let root = temporaryDirectory(self)
        var o = SyntheticDataset.Options(out: root.path)
        o.from = UTCTime.make(2016, 3, 1)
        o.to = UTCTime.make(2016, 4, 30, 23)
        o.datasets = ["era"]
        o.eraFill = TimeSpan(first: UTCTime.make(2016, 4, 1), last: UTCTime.make(2016, 4, 10, 23))
        try SyntheticDataset.write(o)
        let catalog = try DataCatalog(paths: [root.appendingPathComponent("era5625").path])
        let sp = try catalog.channels(of: "era5625/sp")[0]
        XCTAssertEqual(sp.file.rows, 61 * 24)
        XCTAssertEqual(sp.available, TimeSpan(first: UTCTime.make(2016, 4, 1), last: UTCTime.make(2016, 4, 10, 23)))
        XCTAssertNil(try sp.plane(at: UTCTime.make(2016, 3, 31, 23)))
        XCTAssertGreaterThan(try sp.plane(at: UTCTime.make(2016, 4, 1))![0], 50_000)  // a surface pressure in Pa
        var st = stat()
        stat(sp.file.mapped.path, &st)
        XCTAssertLessThan(Int(st.st_blocks) * 512, sp.file.mapped.byteCount / 3, "unfilled rows must stay holes")
    }
}
