import Foundation
import RainEvaluation
import RainModel
import XCTest

/// PyRain-named weights in and out: the names PyRain's `ConvLSTMForecaster.state_dict()` has (written
/// out here from src/benchmark/models.py, the oracle), files written by an independent writer (Python's
/// struct + json), and every way a file can fail to fit.
final class SafetensorsTests: XCTestCase {
    let shape = ModelShape(cin: 3, hidden: 2, head: 3, height: 4, width: 5, relu: true)
    /// PyRain's names and shapes for `shape`, by hand: rnn = ConvLSTM(in 3, filter 2, 4×5), out_layer1 2→3,
    /// out_layer2 3→1.
    let pyrain: [(String, [Int])] = [
        ("rnn._conv.weight", [8, 5, 3, 3]), ("rnn._conv.bias", [8]), ("rnn.Wci", [1, 2, 4, 5]),
        ("rnn.Wcf", [1, 2, 4, 5]), ("rnn.Wco", [1, 2, 4, 5]), ("out_layer1.weight", [3, 2, 1, 1]),
        ("out_layer1.bias", [3]), ("out_layer2.weight", [1, 3, 1, 1]), ("out_layer2.bias", [1]),
    ]

    /// A safetensors file written by Python: `tensors` (name → shape) in the order given, each tensor's
    /// element k = tensor index × 1000 + k, stored as `dtype` ("F32" or "F64").
    func writeWithPython(_ url: URL, _ tensors: [(String, [Int])], dtype: String = "F32") throws {
        let spec = try JSONSerialization.data(withJSONObject: tensors.map { [$0.0, $0.1] })
        _ = try python(
            """
            import json, struct, sys, math
            tensors = json.loads(sys.argv[2]); fmt = {"F32": "f", "F64": "d"}[sys.argv[3]]
            header, data = {"__metadata__": {"format": "pt"}}, b""
            for i, (name, shape) in enumerate(tensors):
                n = math.prod(shape)
                blob = struct.pack("<%d%s" % (n, fmt), *[i * 1000 + k for k in range(n)])
                offsets = [len(data), len(data) + len(blob)]
                header[name] = {"dtype": sys.argv[3], "shape": shape, "data_offsets": offsets}
                data += blob
            h = json.dumps(header).encode()
            open(sys.argv[1], "wb").write(struct.pack("<Q", len(h)) + h + data)
            """, [url.path, String(decoding: spec, as: UTF8.self), dtype])
    }

    func testTheNamesAreThoseOfPyRainsStateDict() {
        let layout = ParameterLayout(shape)
        let ours = Dictionary(
            uniqueKeysWithValues: zip(ParameterTensor.allCases, layout.entries).map { ($0.pyrainName, $1.shape) })
        XCTAssertEqual(ours.count, pyrain.count)
        for (name, s) in pyrain { XCTAssertEqual(ours[name], s, name) }
    }

    func testAFileWrittenByPythonIsReadByNameInEitherFormAndDtype() throws {
        let dir = temporaryDirectory(self)
        let layout = ParameterLayout(shape)
        for (prefix, dtype) in [("", "F32"), ("net.", "F32"), ("", "F64")] {
            let url = dir.appendingPathComponent("w\(prefix)\(dtype).safetensors")
            // Stored in PyRain's registration order, not SwiftRain's: reading goes by name.
            try writeWithPython(url, pyrain.map { (prefix + $0.0, $0.1) }, dtype: dtype)
            let p = try Safetensors.read(path: url.path, layout: layout)
            for (t, e) in zip(ParameterTensor.allCases, layout.entries) {
                let i = pyrain.firstIndex { $0.0 == t.pyrainName }!
                XCTAssertEqual(Array(p[e]), (0..<e.count).map { Float(i * 1000 + $0) }, "\(prefix)\(e.name) \(dtype)")
            }
        }
    }

    func testWriteThenReadIsTheIdentityAndPythonSeesPyRainsNames() throws {
        let dir = temporaryDirectory(self)
        let layout = ParameterLayout(shape)
        let params = FlatBuffer(count: layout.count)
        for k in 0..<layout.count { params.pointer[k] = Float(k) * 0.25 - 7 }
        for prefix in ["", "net."] {
            let url = dir.appendingPathComponent("out.safetensors")
            try Safetensors.write(path: url.path, layout: layout, params: params, prefix: prefix, metadata: [:])
            XCTAssertEqual(try Safetensors.read(path: url.path, layout: layout).values, params.values)
            let seen = try python(
                """
                import json, struct, sys
                f = open(sys.argv[1], "rb"); n = struct.unpack("<Q", f.read(8))[0]; h = json.loads(f.read(n))
                h.pop("__metadata__"); print(json.dumps(sorted([k, v["shape"]] for k, v in h.items())))
                """, [url.path])
            let names = try XCTUnwrap(JSONSerialization.jsonObject(with: seen) as? [[Any]])
            XCTAssertEqual(names.map { $0[0] as? String }, pyrain.map { prefix + $0.0 }.sorted())
        }
    }

    func testFilesThatDoNotFitAreRefusedNamingTheTensor() throws {
        let dir = temporaryDirectory(self)
        let layout = ParameterLayout(shape)
        let url = dir.appendingPathComponent("bad.safetensors")
        func refusal(_ tensors: [(String, [Int])], dtype: String = "F32") throws -> String {
            try writeWithPython(url, tensors, dtype: dtype)
            return errorText { _ = try Safetensors.read(path: url.path, layout: layout) }
        }
        var wrong = pyrain
        wrong[0].1 = [8, 6, 3, 3]
        var e = try refusal(wrong)
        XCTAssertTrue(e.contains("rnn._conv.weight: shape mismatch") && e.contains("[8, 5, 3, 3]"), e)
        XCTAssertTrue(e.contains("[8, 6, 3, 3]"), e)
        e = try refusal(Array(pyrain.dropLast()))
        XCTAssertTrue(e.contains("out_layer2.bias: missing tensor"), e)
        e = try refusal(pyrain + [("rnn.extra", [2])])
        XCTAssertTrue(e.contains("unexpected tensors") && e.contains("rnn.extra"), e)
        e = try refusal(pyrain.map { ($0.0.replacingOccurrences(of: "rnn.", with: "cell."), $0.1) })
        XCTAssertTrue(e.contains("rnn.Wci: missing tensor") && e.contains("cell._conv.weight"), e)

        // Truncated data, a header length past the file, a non-JSON header.
        try writeWithPython(url, pyrain)
        let whole = try Data(contentsOf: url)
        try whole.prefix(whole.count - 4).write(to: url)
        e = errorText { _ = try Safetensors.read(path: url.path, layout: layout) }
        XCTAssertTrue(e.contains("out_layer2.bias: data offsets do not fit"), e)
        var huge = whole
        huge.replaceSubrange(0..<8, with: [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F])
        try huge.write(to: url)
        e = errorText { _ = try Safetensors.read(path: url.path, layout: layout) }
        XCTAssertTrue(e.contains("not a safetensors file") && e.contains("header length"), e)
        var garbled = whole
        garbled[8] = 0x5B  // "[" where the header's "{" was
        try garbled.write(to: url)
        e = errorText { _ = try Safetensors.read(path: url.path, layout: layout) }
        XCTAssertTrue(e.contains("not a safetensors file") && e.contains("JSON object"), e)
        // A NaN as the first element of the data, which is rnn._conv.weight's (written first).
        var nan = whole
        let n = Int(
            whole.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) })
        nan.replaceSubrange((8 + n)..<(12 + n), with: [0x00, 0x00, 0xC0, 0x7F])
        try nan.write(to: url)
        e = errorText { _ = try Safetensors.read(path: url.path, layout: layout) }
        XCTAssertTrue(e.contains("rnn._conv.weight: non-finite weight") && e.contains("flat index 0"), e)
    }
}
