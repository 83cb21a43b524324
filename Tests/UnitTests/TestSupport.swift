import Foundation
import RainConfig
import RainData
import RainSupport
import XCTest

/// A fresh temporary directory, removed at the end of the test case.
func temporaryDirectory(_ test: XCTestCase, _ name: String = #function) -> URL {
    let url = FileManager.default.temporaryDirectory
        .appendingPathComponent(
            "swiftrain-tests-\(ProcessInfo.processInfo.processIdentifier)-\(UUID().uuidString.prefix(8))")
    try! FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    test.addTeardownBlock { try? FileManager.default.removeItem(at: url) }
    return url
}

func writeFloats(_ values: [Float], to url: URL) throws {
    try values.withUnsafeBytes { try Data($0).write(to: url) }
}

func readFloats(_ url: URL) throws -> [Float] {
    let d = try Data(contentsOf: url)
    return d.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
}

/// The thrown error's text, or a failure if nothing was thrown.
func errorText(_ body: () throws -> Void, file: StaticString = #filePath, line: UInt = #line) -> String {
    do { try body() } catch { return "\(error)" }
    XCTFail("expected an error", file: file, line: line)
    return ""
}

/// A hand-made RainBench-format dataset with a tiny grid and values given by formulas, so that
/// tests can compute every expected number by hand.
///
///     simsatX/clbt [T, 3, H, W], every 3 h:  value(t, c, y, x) = 200 + 10c + y + 0.1x + hours(t − start)/1000
///     imergX/precipitationcal [T, 1, H, W], hourly: 0.5 · (y + 1) + hours(t − start)/100
///     eraX const [5, H, W]: lat2d, lon2d, lsm = (x+y)%2, orography = 100x, slt = y
struct TinyDataset {
    static let start = UTCTime.make(2016, 4, 1)
    let root: URL
    let height = 2, width = 4

    func clbt(_ t: EpochSeconds, _ c: Int, _ y: Int, _ x: Int) -> Float {
        200 + 10 * Float(c) + Float(y) + 0.1 * Float(x) + Float((t - Self.start) / 3600) / 1000
    }
    func rain(_ t: EpochSeconds, _ y: Int, _ x: Int) -> Float {
        0.5 * Float(y + 1) + Float((t - Self.start) / 3600) / 100
    }
    func constant(_ c: Int, _ y: Int, _ x: Int) -> Float {
        [Float(-45 + 90 * y), Float(90 * x), Float((x + y) % 2), Float(100 * x), Float(y)][c]
    }

    /// Writes the three datasets: SimSat from `simsatStart` for `days` days, IMERG and constants.
    init(root: URL, days: Int = 40, simsatStart: EpochSeconds = TinyDataset.start) throws {
        self.root = root
        let h = height, w = width
        func write(
            _ name: String, file: String, dims: [Int], range: (EpochSeconds, EpochSeconds)?, step: Int?,
            vars: [String: VariableInfo], values: [Float]
        ) throws {
            let dir = root.appendingPathComponent(name)
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            try writeFloats(values, to: dir.appendingPathComponent(file))
            var info =
                (try? DatasetInfo.load(dir.appendingPathComponent("\(name)_info.json")))
                ?? DatasetInfo(variables: [:], memmap: [:])
            info.memmap[file] = MemmapInfo(
                dims: dims, daterange: range.map { [Double($0.0), Double($0.1)] }, tfreqS: step.map(Double.init))
            info.variables.merge(vars) { $1 }
            try info.write(to: dir.appendingPathComponent("\(name)_info.json"))
        }
        let simsatRows = (days * 24 - Int((simsatStart - Self.start) / 3600)) / 3
        let sEnd = simsatStart + EpochSeconds(simsatRows - 1) * 3 * 3600
        var s: [Float] = []
        for r in 0..<simsatRows {
            for c in 0..<3 {
                for y in 0..<h { for x in 0..<w { s.append(clbt(simsatStart + EpochSeconds(r) * 10800, c, y, x)) } }
            }
        }
        try write(
            "simsat5625", file: "simsat5625__simsat5625.mmap", dims: [simsatRows, 3, h, w], range: (simsatStart, sEnd),
            step: 10800,
            vars: [
                "simsat5625/clbt": VariableInfo(
                    name: "clbt", mmapName: "simsat5625__simsat5625.mmap", type: "temp", dims: [h, w], offset: 0,
                    levels: [0, 1, 2], firstTs: Double(simsatStart), lastTs: Double(sEnd), tfreqS: 10800)
            ], values: s)
        let imergRows = days * 24
        let iEnd = Self.start + EpochSeconds(imergRows - 1) * 3600
        var p: [Float] = []
        for r in 0..<imergRows {
            for y in 0..<h { for x in 0..<w { p.append(rain(Self.start + EpochSeconds(r) * 3600, y, x)) } }
        }
        try write(
            "imerg5625", file: "imerg5625__imerg5625.mmap", dims: [imergRows, 1, h, w], range: (Self.start, iEnd),
            step: 3600,
            vars: [
                "imerg5625/precipitationcal": VariableInfo(
                    name: "precipitationcal", mmapName: "imerg5625__imerg5625.mmap", type: "temp",
                    dims: [h, w], offset: 0, levels: [0], firstTs: Double(Self.start), lastTs: Double(iEnd),
                    tfreqS: 3600)
            ], values: p)
        var k: [Float] = []
        for c in 0..<5 { for y in 0..<h { for x in 0..<w { k.append(constant(c, y, x)) } } }
        var cv: [String: VariableInfo] = [:]
        for (i, n) in ["lat2d", "lon2d", "lsm", "orography", "slt"].enumerated() {
            cv["era5625/\(n)"] = VariableInfo(
                name: n, mmapName: "era5625__era5625_const.mmap", type: "const", dims: [h, w], offset: i, levels: nil,
                firstTs: nil, lastTs: nil, tfreqS: nil)
        }
        try write(
            "era5625", file: "era5625__era5625_const.mmap", dims: [5, h, w], range: nil, step: nil, vars: cv, values: k)
    }

    var paths: [String] { ["era5625", "imerg5625", "simsat5625"].map { root.appendingPathComponent($0).path } }

    /// Statistics chosen by hand (not computed from the data), so expected values are simple.
    var normalisation: Normalisation {
        var s: [String: ChannelStats] = [
            "simsat5625/clbt:0": .init(mean: 200, std: 2), "simsat5625/clbt:1": .init(mean: 210, std: 4),
            "simsat5625/clbt:2": .init(mean: 220, std: 5), "imerg5625/precipitationcal": .init(mean: 1, std: 0.5),
            "1plog::imerg5625/precipitationcal": .init(mean: 0.3, std: 0.2),
        ]
        for (i, n) in ["lat2d", "lon2d", "lsm", "orography", "slt"].enumerated() {
            s["era5625/\(n)"] = .init(mean: Double(i), std: Double(i + 1))
        }
        return Normalisation(stats: s, source: root.appendingPathComponent("norm.json").path)
    }

    /// A configuration over this dataset: SimSat inputs, IMERG target, short partitions.
    func config(incTime: Bool = true) -> Config {
        var c = Config()
        c.data = paths
        c.sources = .simsat
        c.imerg = true
        c.incTime = incTime
        c.trainStart = Self.start
        c.trainEnd = Self.start + 20 * UTCTime.day - 3600
        c.validStart = Self.start + 20 * UTCTime.day
        c.validEnd = Self.start + 30 * UTCTime.day - 3600
        c.testStart = Self.start + 30 * UTCTime.day
        c.testEnd = Self.start + 40 * UTCTime.day - 3600
        return c
    }
}
