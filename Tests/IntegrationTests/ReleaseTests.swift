import Foundation
import RainData
import RainSupport
import XCTest

/// The RainBench release as a user downloads it, built from `shared/fixtures/release/`: the bucket's
/// download names for the `.dill` files, the real ERA5 constants, sparse stand-ins of the published
/// sizes for SimSat and IMERG (IMERG under its converter's `…bi.mmap` name) with synthetic rows in
/// April–May 2016, and no ERA5 temporal file at all.
enum ReleaseTree {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../../shared/fixtures/release").standardized
    static let simsatStart = UTCTime.make(2016, 4, 1), imergStart = UTCTime.make(2000, 6, 1)
    static let plane = 32 * 64
    /// The filled window: every read of the configuration below falls inside it.
    static let fill = TimeSpan(first: UTCTime.make(2016, 4, 1), last: UTCTime.make(2016, 5, 10, 21))

    static func make(_ root: URL) throws {
        let fm = FileManager.default
        for (ds, download) in [
            ("era5625", "era5625_aaai-era5625_aaai.dill"), ("imerg5625", "imerg5625-imerg5625.dill"),
            ("simsat5625", "simsat5625-simsat5625.dill"),
        ] {
            let dir = root.appendingPathComponent(ds)
            try fm.createDirectory(at: dir, withIntermediateDirectories: true)
            try fm.copyItem(
                at: fixtures.appendingPathComponent("\(ds)/\(ds).dill"), to: dir.appendingPathComponent(download))
        }
        try fm.copyItem(
            at: fixtures.appendingPathComponent("era5625/era5625__era5625_const.mmap"),
            to: root.appendingPathComponent("era5625/era5625__era5625_const.mmap"))
        // Published sizes (fixtures/release/README.md); rows outside the window stay holes.
        try sparse(
            root.appendingPathComponent("simsat5625/simsat5625__simsat5625.mmap"), bytes: 287_244_288,
            rowFloats: 3 * plane,
            row: { Int(($0 - simsatStart) / (3 * UTCTime.hour)) }, step: 3 * UTCTime.hour
        ) { t, c, i in 230 + 10 * Float(c) + 15 * sinf(Float(i % 64) / 10 + Float(t / 3600) / 24) }
        try sparse(
            root.appendingPathComponent("imerg5625/imerg5625__imerg5625bi.mmap"), bytes: 171_672 * 4 * plane,
            rowFloats: plane, row: { Int(($0 - imergStart) / UTCTime.hour) }, step: UTCTime.hour
        ) { t, _, i in max(0, 2 * sinf(Float(i % 64) / 7 - Float(t / 3600) / 30)) }
    }

    /// A file of `bytes` with rows written only inside `fill`, value(t, channel, pixel).
    static func sparse(
        _ url: URL, bytes: Int, rowFloats: Int, row: (EpochSeconds) -> Int, step: EpochSeconds,
        value: (EpochSeconds, Int, Int) -> Float
    ) throws {
        _ = FileManager.default.createFile(atPath: url.path, contents: nil)
        let h = try FileHandle(forWritingTo: url)
        try h.truncate(atOffset: UInt64(bytes))
        var buf = [Float](repeating: 0, count: rowFloats)
        for t in stride(from: fill.first, through: fill.last, by: Int(step)) {
            for k in 0..<rowFloats { buf[k] = value(t, k / plane, k % plane) }
            try h.seek(toOffset: UInt64(row(t) * rowFloats * 4))
            try buf.withUnsafeBytes { try h.write(contentsOf: Data($0)) }
        }
        try h.close()
    }

    static let yaml = """
        data: [era5625, imerg5625, simsat5625]
        normalisation: norm.json
        sources: simsat
        imerg: true
        inc_time: true
        train_start: 2016-04-01
        train_end: 2016-04-20T23:00
        valid_start: 2016-04-21
        valid_end: 2016-04-30T23:00
        test_start: 2016-05-01
        test_end: 2016-05-08T23:00
        forecast_time_window: 48
        forecast_freq: 24
        hidden_1: 8
        hidden_2: 4
        batch_size: 8
        micro_batch: 4
        epochs: 1
        """
}

final class ReleaseTests: XCTestCase {
    var root: URL!

    override func setUpWithError() throws {
        root = temporaryDirectory("release")
        try ReleaseTree.make(root)
        try ReleaseTree.yaml.write(to: root.appendingPathComponent("c.yaml"), atomically: true, encoding: .utf8)
    }

    func swiftrain(_ args: [String], status: Int32 = 0, line: UInt = #line) throws -> (out: String, err: String) {
        let r = try runProcess(Binaries.swiftrain, args, cwd: root)
        XCTAssertEqual(r.status, status, "swiftrain \(args.joined(separator: " ")):\n\(r.out)\n\(r.err)", line: line)
        return (r.out, r.err)
    }

    /// SimSat → IMERG, the paper's first setting, on the release as downloaded, without the 49 GiB file.
    func testSimsatToImergWithoutTheERA5TemporalFile() throws {
        let inspect = try swiftrain(["inspect", "--config", "c.yaml"]).out
        let table = inspect.components(separatedBy: "files this configuration reads:")
        XCTAssertEqual(table.count, 2, inspect)
        let rows = table.last!.split(separator: "\n").prefix(4).map(String.init)
        func row(_ file: String) -> String { rows.first { $0.contains(file) } ?? "no row for \(file) in \(rows)" }
        XCTAssertTrue(
            row("era5625__era5625.mmap ").contains("absent") && row("era5625__era5625.mmap ").contains("not needed"))
        XCTAssertTrue(row("era5625__era5625.mmap ").contains("49.36 GiB"), row("era5625__era5625.mmap "))
        XCTAssertTrue(row("era5625__era5625_const.mmap").contains("present") && row("_const").contains("era5625/lsm"))
        XCTAssertTrue(row("imerg5625__imerg5625.mmap").contains("present") && row("imerg").contains("1.31 GiB"))
        XCTAssertTrue(row("simsat5625__simsat5625.mmap").contains("present"), row("simsat"))
        // Only the rows of 2016-04-01 … 2016-05-08 23:00 are read
        // (hours since 2000-06-01; 3-hourly since 2016-04-01).
        XCTAssertTrue(row("imerg5625__imerg5625.mmap").contains("rows 138792…139703"), row("imerg"))
        XCTAssertTrue(row("simsat5625__simsat5625.mmap").contains("rows 0…303"), row("simsat"))
        // The quirks, said once each.
        XCTAssertTrue(inspect.contains("8760 rows after 2018-12-31 23:00 are present but not described"), inspect)
        XCTAssertTrue(inspect.contains("is named imerg5625__imerg5625bi.mmap on disk"), inspect)

        _ = try swiftrain(["normalize", "--config", "c.yaml"])
        // The constants come from the real file: PyRain's own normalisation file is the oracle.
        let ours = try Normalisation.load(path: root.appendingPathComponent("norm.json").path)
        let pyrain = try Normalisation.load(
            path: ReleaseTree.fixtures.appendingPathComponent("../pyrain-normalisation-2016-2017.json").standardized
                .path)
        for v in ["lsm", "orography", "lat2d", "lon2d", "slt"] {
            let a = try ours.require("era5625/\(v)"), b = try pyrain.require("era5625/\(v)")
            XCTAssertEqual(a.mean, b.mean, accuracy: 1e-6 * max(1, abs(b.mean)), v)
            XCTAssertEqual(a.std, b.std, accuracy: 1e-6 * b.std, v)
        }
        XCTAssertNil(ours.stats["era5625/t2m"], "no statistics without the ERA5 temporal file")

        let train = try swiftrain([
            "train", "--config", "c.yaml", "--workers", "1", "--run", "run", "--blas-threads", "1",
            "--progress-every", "0",
        ])
        let log = train.out + train.err
        XCTAssertTrue(log.contains("warning: imerg5625"), "the quirks are said in the run's log: \(log)")
        XCTAssertTrue(
            FileManager.default.fileExists(atPath: root.appendingPathComponent("run/checkpoints/last.ckpt").path), log)
        // A finished epoch: the metrics have a finite validation loss.
        let metrics = try String(contentsOf: root.appendingPathComponent("run/metrics.jsonl"), encoding: .utf8)
        XCTAssertTrue(metrics.contains("val_loss"), metrics)
    }

    /// ERA5 inputs on the same release: every reason is given at once, each naming what to do.
    func testERA5SourcesSayEverythingThatIsMissing() throws {
        let r = try swiftrain(["train", "--config", "c.yaml", "--sources", "simsat_era", "--run", "era"], status: 1)
        let e = r.out + r.err
        XCTAssertTrue(e.contains("era5625__era5625.mmap: data file missing"), e)
        XCTAssertTrue(e.contains("this configuration reads era5625/sp, era5625/t2m"), e)
        XCTAssertTrue(
            e.contains("era5625/t_300hPa, era5625/t_500hPa: this release's metadata describes only t at 850 hPa"), e)
        XCTAssertTrue(e.contains("t at 300, 500, 850 hPa is channel 5, 10, 15"), e)
        XCTAssertTrue(e.contains("4 problems in the data"), "one per file and one per variable: \(e)")
        XCTAssertFalse(e.contains("Fatal error") || e.contains("IndexError"), e)
    }
}
