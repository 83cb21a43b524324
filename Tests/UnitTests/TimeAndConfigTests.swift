import RainConfig
import RainData
import RainSupport
import XCTest

final class UTCTimeTests: XCTestCase {
    func testKnownEpochs() {
        XCTAssertEqual(UTCTime.make(1970, 1, 1), 0)
        XCTAssertEqual(UTCTime.make(2016, 4, 1), 1_459_468_800)
        XCTAssertEqual(UTCTime.make(1979, 1, 1, 7), 283_996_800 + 7 * 3600)
        XCTAssertEqual(UTCTime.make(2000, 2, 29, 12), 951_825_600)
        XCTAssertEqual(UTCTime.iso(1_459_468_800 + 3600 * 23 + 60 * 5 + 9), "2016-04-01T23:05:09Z")
        let f = UTCTime.fields(UTCTime.make(2016, 12, 31, 18))
        XCTAssertEqual([f.year, f.month, f.day, f.hour, f.dayOfYear], [2016, 12, 31, 18, 366])
        XCTAssertEqual(UTCTime.fields(UTCTime.make(2016, 4, 1)).weekday, 4)  // a Friday
        XCTAssertEqual(UTCTime.fields(-1).year, 1969)
    }

    func testParse() {
        XCTAssertEqual(UTCTime.parse("2016-04-01"), UTCTime.make(2016, 4, 1))
        XCTAssertEqual(UTCTime.parse("2016-04-01", endOfDay: true), UTCTime.make(2016, 4, 1, 23))
        XCTAssertEqual(UTCTime.parse("2016-04-01 03:00"), UTCTime.make(2016, 4, 1, 3))
        XCTAssertEqual(UTCTime.parse("2016-04-01T03:30:15Z"), UTCTime.make(2016, 4, 1, 3, 30, 15))
        XCTAssertNil(UTCTime.parse("2017-02-30"))
        XCTAssertNil(UTCTime.parse("2016-13-01"))
        XCTAssertNil(UTCTime.parse("yesterday"))
    }

    func testFloorDivRoundsDown() {
        XCTAssertEqual(floorDiv(-1, 3600), -1)
        XCTAssertEqual(floorDiv(7199, 3600), 1)
        XCTAssertEqual(ceilDiv(3601, 3600), 2)
        XCTAssertEqual(ceilDiv(-3599, 3600), 0)
    }
}

final class ConfigTests: XCTestCase {
    func testDefaultsArePyRains() throws {
        let c = Config()
        XCTAssertEqual(c.lr, 5e-5)
        XCTAssertEqual(c.batchSize, 32)
        XCTAssertEqual(c.epochs, 100)
        XCTAssertEqual(c.seed, 2020)
        XCTAssertEqual(c.hidden1, 384)
        XCTAssertEqual(c.hidden2, 32)
        XCTAssertEqual(c.lrFactor, 0.5)
        XCTAssertEqual(c.lrPatience, 2)
        XCTAssertEqual(c.lrThreshold, 1e-4)
        let spec = try SampleSpec(c)
        XCTAssertEqual(spec.offsets.map { $0 / 3600 }, [-12, -9, -6, -3, 0])
        XCTAssertEqual(spec.leads.map { $0 / 3600 }, [24, 48, 72, 96, 120])
    }

    func testYAMLFlagsAndSetOverride() throws {
        var c = Config()
        try c.apply(
            yaml: "sources: era\nimerg: true\nlr: 1e-3\ntrain_end: 2017-06-30\ndata: [a, b]\n", source: "test.yaml")
        XCTAssertEqual(c.sources, .era)
        XCTAssertTrue(c.imerg)
        XCTAssertEqual(c.lr, 1e-3)
        XCTAssertEqual(c.trainEnd, UTCTime.make(2017, 6, 30, 23))
        XCTAssertEqual(c.data, ["a", "b"])
        try c.apply(assignment: "lr=2e-4")
        XCTAssertEqual(c.lr, 2e-4)
        let spec = try SampleSpec(c)
        XCTAssertEqual(spec.partition(.train).start, UTCTime.make(2000, 6, 1))  // era + IMERG
        XCTAssertEqual(spec.partition(.train).stride, 3600)
        c.imerg = false
        XCTAssertEqual(try SampleSpec(c).partition(.train).start, UTCTime.make(1979, 1, 1, 7))  // era + tp
    }

    func testResolvedYAMLRoundTrips() throws {
        var c = Config()
        c.sources = .simsat_era
        c.trainStart = UTCTime.make(2016, 5, 1, 6)
        c.hidden1 = 64
        c.noRelu = true
        var d = Config()
        try d.apply(yaml: c.yaml(), source: "config.yaml")
        XCTAssertEqual(c, d)
    }

    func testBadKeysAndValuesAreNamed() {
        var c = Config()
        let unknown = errorText { try c.apply(yaml: "learning_rate: 1", source: "my.yaml") }
        XCTAssertTrue(
            unknown.contains("my.yaml: learning_rate") && unknown.contains("unknown configuration key")
                && unknown.contains("lr"), unknown)
        let bad = errorText { try c.apply(assignment: "batch_size=many") }
        XCTAssertTrue(bad.contains("batch_size") && bad.contains("an integer") && bad.contains("many"), bad)
        let src = errorText { try c.apply(assignment: "sources=radar") }
        XCTAssertTrue(src.contains("simsat | era | simsat_era | era16_3"), src)
        let malformed = errorText { try c.apply(yaml: "lr: [1, 2\n", source: "broken.yaml") }
        XCTAssertTrue(malformed.contains("broken.yaml") && malformed.contains("malformed YAML"), malformed)
    }
}
