import Foundation
import RainSupport

extension DatasetInfo {
    /// Decodes PyRain's `.dill` (the metadata dict pickled by dill) without Python: the plain-data pickle
    /// subset is read natively, then decoded exactly as the `_info.json` PyRain writes beside it would be.
    public static func loadDill(_ url: URL, bytes: [UInt8]) throws -> DatasetInfo {
        let value: PickleValue
        do { value = try PickleReader.decode(bytes) } catch let f as PickleReader.Failure {
            let json = url.deletingPathExtension().lastPathComponent + "_info.json"
            let convert = """
                python3 -c 'import pickle,json,sys; json.dump(pickle.load(open(sys.argv[1],"rb")),\
                 open(sys.argv[2],"w"))' \(url.path) \(json)
                """
            throw SwiftRainError(
                url.path, "cannot read the pickled metadata at byte \(f.offset): \(f.problem)",
                expected: "PyRain's metadata dict pickled with only dict, list, tuple, str, int, float and None",
                found: f.refusedOpcode.map { "opcode \($0), which SwiftRain never executes" },
                hint: f.refusedOpcode != nil
                    ? "this is not plain RainBench metadata; only if you trust its source, write the JSON with "
                        + convert
                    : "re-download the file (a partial download is the usual cause), or write the JSON with \(convert)")
        }
        let object: Any
        do { object = try value.jsonObject() } catch let e as JSONConversionError {
            throw SwiftRainError(
                url.path, "the pickled metadata holds \(e.what), which PyRain's metadata never does",
                expected: "dict, list, tuple, str, int, float, None",
                hint: "regenerate the file with PyRain's converter")
        }
        guard JSONSerialization.isValidJSONObject(object) else {
            throw SwiftRainError(
                url.path, "the pickled metadata is not a dict", found: "\(value)".prefix(80).description,
                hint: "point at the dataset's metadata dict as PyRain's converters write it")
        }
        let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        return try decode(data, source: url.path)
    }
}

/// A pickled value JSON cannot hold.
struct JSONConversionError: Error { var what: String }

extension PickleValue {
    /// What Python's `json.dump` writes for this value: tuples become lists, int/float/bool/None keys
    /// become strings (`1` → "1", `None` → "null"). Bytes, non-finite floats and tuple keys cannot be written.
    func jsonObject() throws -> Any {
        switch self {
        case .none: return NSNull()
        case .bool(let b): return b
        case .int(let i): return i
        case .float(let d):
            guard d.isFinite else { throw JSONConversionError(what: "a non-finite float (\(d))") }
            return d
        case .string(let s): return s
        case .bytes: throw JSONConversionError(what: "bytes")
        case .set: throw JSONConversionError(what: "a set")
        case .list(let l), .tuple(let l): return try l.map { try $0.jsonObject() }
        case .dict(let entries):
            var out: [String: Any] = [:]
            for e in entries { out[try e.key.jsonKey()] = try e.value.jsonObject() }
            return out
        }
    }

    func jsonKey() throws -> String {
        switch self {
        case .string(let s): return s
        case .int(let i): return String(i)
        case .float(let d): return "\(d)"
        case .bool(let b): return b ? "true" : "false"
        case .none: return "null"
        default: throw JSONConversionError(what: "a dict key that is not a str, int, float, bool or None")
        }
    }
}
