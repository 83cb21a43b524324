import Foundation
import RainModel
import RainSupport

/// The safetensors format, for ConvLSTMForecaster's tensors:
///
///     u64 little-endian header length n | n bytes of JSON {name: {dtype, shape, data_offsets}, "__metadata__"}
///     | raw little-endian tensor data (offsets relative to the end of the header)
///
/// Names are PyRain's (`ParameterTensor.pyrainName`), optionally behind a Lightning checkpoint's `net.`.
public enum Safetensors {
    /// The largest header accepted: far above any model's (a few hundred bytes a tensor), and a bound on
    /// what a hostile file can make us allocate before anything is checked.
    static let maxHeaderBytes = 16 << 20

    /// Writes `params` (laid out by `layout`) under PyRain's names, each behind `prefix` ("" or "net.").
    public static func write(
        path: String, layout: ParameterLayout, params: FlatBuffer, prefix: String, metadata: [String: String]
    ) throws {
        var header: [String: Any] = ["__metadata__": metadata]
        for (t, e) in zip(ParameterTensor.allCases, layout.entries) {
            header[prefix + t.pyrainName] =
                ["dtype": "F32", "shape": e.shape, "data_offsets": [4 * e.offset, 4 * (e.offset + e.count)]]
                as [String: Any]
        }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        while json.count % 8 != 0 { json.append(0x20) }  // the format pads the header with spaces to 8 bytes
        var out = Data()
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(json)
        out.append(Data(buffer: UnsafeBufferPointer(start: params.pointer, count: layout.count)))
        try out.write(to: URL(fileURLWithPath: path), options: .atomic)
    }

    /// Reads PyRain-named weights (plain, or every name behind `net.`) into a buffer laid out by `layout`,
    /// as PyTorch's `load_state_dict(strict=True)` would: every tensor present with its shape, nothing
    /// else. F32 and F64 data are accepted (F64 is rounded to float32).
    public static func read(path: String, layout: ParameterLayout) throws -> FlatBuffer {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped) } catch {
            throw SwiftRainError(path, "cannot read the weights file", found: "\(error)", hint: "check the path")
        }
        let n = data.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        guard data.count >= 8, n <= UInt64(min(maxHeaderBytes, data.count - 8)) else {
            throw SwiftRainError(
                path, "not a safetensors file", expected: "a u64 header length within the file (≤ 16 MiB)",
                found: data.count < 8
                    ? "\(data.count) bytes in all" : "header length \(n) in a \(data.count)-byte file",
                hint: "save the state_dict with safetensors.torch.save_file(model.state_dict(), PATH)")
        }
        let body = 8 + Int(n)
        guard let header = try? JSONSerialization.jsonObject(with: data.subdata(in: 8..<body)) as? [String: Any] else {
            throw SwiftRainError(
                path, "not a safetensors file", expected: "a JSON object as header", found: "unparsable header",
                hint: "the file is damaged, or not safetensors (a torch.save .pt pickle is not read)")
        }
        var names = Set(header.keys)
        names.remove("__metadata__")
        let prefix =
            names.contains { $0.hasPrefix(ParameterTensor.lightningPrefix) } ? ParameterTensor.lightningPrefix : ""
        let out = FlatBuffer(count: layout.count)
        for (t, e) in zip(ParameterTensor.allCases, layout.entries) {
            let name = prefix + t.pyrainName
            guard let entry = header[name] as? [String: Any] else {
                throw SwiftRainError(
                    "\(path): \(name)", "missing tensor", expected: "PyRain's ConvLSTMForecaster state_dict names",
                    found: names.sorted().prefix(12).joined(separator: ", "),
                    hint: "export the weights of PyRain's ConvLSTMForecaster (or its Lightning module's state_dict)")
            }
            names.remove(name)
            let shape = (entry["shape"] as? [Int]) ?? []
            guard shape == e.shape else {
                throw SwiftRainError(
                    "\(path): \(name)", "shape mismatch", expected: "\(e.shape) (from the model configuration)",
                    found: "\(shape)",
                    hint:
                        "set hidden_1, hidden_2, sources, inc_time and the grid to the model's training values"
                )
            }
            let dtype = entry["dtype"] as? String ?? "?"
            let width = dtype == "F32" ? 4 : dtype == "F64" ? 8 : 0
            guard width > 0 else {
                throw SwiftRainError(
                    "\(path): \(name)", "unsupported dtype", expected: "F32 or F64", found: dtype,
                    hint: "convert the model to float32 before saving (model.float())")
            }
            let offsets = (entry["data_offsets"] as? [Int]) ?? []
            guard offsets.count == 2, offsets[0] >= 0, offsets[1] - offsets[0] == width * e.count,
                body + offsets[1] <= data.count
            else {
                throw SwiftRainError(
                    "\(path): \(name)", "data offsets do not fit",
                    expected: "\(width * e.count) bytes within the file's \(data.count - body) data bytes",
                    found: "\(offsets)", hint: "the file is truncated or damaged")
            }
            data.withUnsafeBytes { raw in
                let src = raw.baseAddress! + body + offsets[0]
                for k in 0..<e.count { out.pointer[e.offset + k] = width == 4 ? f32(src, k) : Float(f64(src, k)) }
            }
        }
        if let bad = (0..<layout.count).first(where: { !out.pointer[$0].isFinite }) {
            let e = layout.entries.last { $0.offset <= bad }!
            throw SwiftRainError(
                "\(path): \(prefix)\(ParameterTensor(rawValue: e.name)!.pyrainName)", "non-finite weight",
                found: "\(out.pointer[bad]) at flat index \(bad - e.offset)",
                hint: "the model diverged before it was saved; export an earlier checkpoint")
        }
        guard names.isEmpty else {
            throw SwiftRainError(
                path, "unexpected tensors", expected: "only ConvLSTMForecaster's \(layout.entries.count)",
                found: names.sorted().prefix(12).joined(separator: ", "),
                hint: "the file holds another model (or extra state); save only the forecaster's state_dict")
        }
        return out
    }

    /// Element k of little-endian float32 / float64 data at any alignment.
    static func f32(_ p: UnsafeRawPointer, _ k: Int) -> Float {
        Float(bitPattern: UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 4 * k, as: UInt32.self)))
    }
    static func f64(_ p: UnsafeRawPointer, _ k: Int) -> Double {
        Double(bitPattern: UInt64(littleEndian: p.loadUnaligned(fromByteOffset: 8 * k, as: UInt64.self)))
    }
}
