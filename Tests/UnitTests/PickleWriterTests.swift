import Foundation
import RainData
import XCTest

/// The pickle writer against Python's own unpickler (the oracle), and the metadata it writes against
/// the `.dill` files PyRain's converters wrote (fixtures/release).
final class PickleWriterTests: XCTestCase {
    func testPythonReadsEveryKindOfValueAsWritten() throws {
        let value: PickleValue = .dict([
            .init(key: .string("ints"), value: .list([.int(0), .int(255), .int(256), .int(-1), .int(1 << 40)])),
            .init(key: .string("floats"), value: .tuple([.float(1.5), .float(-0.0), .float(1_546_297_200)])),
            .init(key: .string("é ünïcode " + String(repeating: "x", count: 300)), value: .string("∂")),
            .init(key: .int(7), value: .tuple([.none, .bool(true), .bool(false), .tuple([]), .list([])])),
            .init(key: .string("t4"), value: .tuple([.int(1), .int(2), .int(3), .int(4)])),
            .init(key: .string("bytes"), value: .bytes([0, 1, 254])),
            .init(key: .string("set"), value: .set([.int(3)])),
        ])
        let bytes = PickleWriter.encode(value)
        XCTAssertEqual(try PickleReader.decode(bytes), value, "our reader reads our writer")
        let url = temporaryDirectory(self).appendingPathComponent("v.pkl")
        try Data(bytes).write(to: url)
        let expected = """
            {"ints": [0, 255, 256, -1, 1 << 40], "floats": (1.5, -0.0, 1546297200.0),
             "é ünïcode " + "x" * 300: "∂", 7: (None, True, False, (), []), "t4": (1, 2, 3, 4),
             "bytes": b"\\x00\\x01\\xfe", "set": {3}}
            """
        let out = try python(
            """
            import pickle, sys
            v = pickle.load(open(sys.argv[1], "rb"))
            e = \(expected.replacingOccurrences(of: "\n", with: " "))
            print(v == e and type(v["floats"]) is tuple and type(v[7][0]) is type(None))
            """, [url.path])
        XCTAssertEqual(String(decoding: out, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines), "True")
    }

    func testMetadataWrittenAgainIsPyRainsOwnDictAndMatchesItsJSON() throws {
        let dir = temporaryDirectory(self)
        for name in ["era5625", "imerg5625", "simsat5625"] {
            let fixture = releaseFixtures.appendingPathComponent("\(name)/\(name).dill")
            try DatasetInfo.load(fixture).writeBoth(directory: dir, name: name)
            // Python: the written .dill unpickles to the very dict PyRain's converter pickled, and its JSON
            // round trip equals the _info.json written beside it.
            let out = try python(
                """
                import json, pickle, sys
                ours = pickle.load(open(sys.argv[1], "rb")); theirs = pickle.load(open(sys.argv[2], "rb"))
                info = json.load(open(sys.argv[3]))
                print(ours == theirs, json.loads(json.dumps(ours)) == info)
                """,
                [
                    dir.appendingPathComponent("\(name).dill").path, fixture.path,
                    dir.appendingPathComponent("\(name)_info.json").path,
                ])
            XCTAssertEqual(
                String(decoding: out, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines), "True True", name)
            // And SwiftRain reads both files back to the same metadata.
            XCTAssertEqual(
                try DatasetInfo.load(dir.appendingPathComponent("\(name).dill")),
                try DatasetInfo.load(dir.appendingPathComponent("\(name)_info.json")))
        }
    }
}
