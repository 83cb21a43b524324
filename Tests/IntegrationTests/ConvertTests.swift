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
