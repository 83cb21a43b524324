import Foundation
import RainSupport

/// A JSON value of Zarr metadata, read with the tolerance the writers need: Python's `json` writes bare
/// `NaN`, `Infinity` and `-Infinity`, which strict JSON refuses; they arrive here as numbers.
public enum ZarrJSON: Equatable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([ZarrJSON])
    case object([String: ZarrJSON])

    /// Metadata files larger than this are refused before they are read (a real `.zmetadata` of ARCO-ERA5's
    /// 273 variables is under 1 MiB).
    public static let fileLimit = 64 << 20

    /// Reads and parses `url`; nil when the file does not exist.
    static func load(_ url: URL, subject: String) throws -> ZarrJSON? {
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: url.path) else { return nil }
        let size = (attributes[.size] as? Int) ?? 0
        guard size <= fileLimit else {
            throw SwiftRainError(
                url.path, "metadata file too large", expected: "at most \(fileLimit >> 20) MiB of JSON",
                found: "\(size) bytes", hint: "this is not Zarr metadata; check the store")
        }
        let data = try Data(contentsOf: url)
        return try parse(data, subject: url.path)
    }

    static func parse(_ data: Data, subject: String) throws -> ZarrJSON {
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: sanitised(data), options: [.fragmentsAllowed])
        } catch {
            throw SwiftRainError(
                subject, "not valid JSON", found: "\(error.localizedDescription)",
                hint: "the store's metadata is damaged; rewrite it (zarr-python: zarr.consolidate_metadata)")
        }
        return try ZarrJSON(object, depth: 0, subject: subject)
    }

    /// Bare NaN/Infinity tokens outside strings become the strings Zarr v3 uses for them.
    private static func sanitised(_ data: Data) -> Data {
        let bytes = [UInt8](data)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var inString = false, escaped = false, i = 0
        let tokens: [(String, String)] = [
            ("-Infinity", "\"-Infinity\""), ("Infinity", "\"Infinity\""), ("NaN", "\"NaN\""),
        ]
        outer: while i < bytes.count {
            let b = bytes[i]
            if inString {
                if escaped {
                    escaped = false
                } else if b == UInt8(ascii: "\\") {
                    escaped = true
                } else if b == 34 {
                    inString = false
                }
            } else if b == 34 {
                inString = true
            } else {
                for (token, replacement) in tokens {
                    let t = Array(token.utf8)
                    if bytes.count - i >= t.count && Array(bytes[i..<i + t.count]) == t {
                        out += Array(replacement.utf8)
                        i += t.count
                        continue outer
                    }
                }
            }
            out.append(b)
            i += 1
        }
        return Data(out)
    }

    private init(_ any: Any, depth: Int, subject: String) throws {
        guard depth < 64 else {
            throw SwiftRainError(subject, "JSON nested deeper than 64 levels", hint: "this is not Zarr metadata")
        }
        switch any {
        case let s as String: self = .string(s)
        case let n as NSNumber:
            // JSONSerialization gives true/false as NSNumber too, of a Boolean subclass.
            self = "\(type(of: n))".contains("Boolean") ? .bool(n.boolValue) : .number(n.doubleValue)
        case let a as [Any]: self = .array(try a.map { try ZarrJSON($0, depth: depth + 1, subject: subject) })
        case let o as [String: Any]:
            self = .object(try o.mapValues { try ZarrJSON($0, depth: depth + 1, subject: subject) })
        default: self = .null
        }
    }

    public subscript(key: String) -> ZarrJSON? {
        if case .object(let o) = self { return o[key] }
        return nil
    }

    public var string: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    /// A number, or one of the strings "NaN", "Infinity", "-Infinity".
    public var double: Double? {
        switch self {
        case .number(let d): d
        case .string("NaN"): .nan
        case .string("Infinity"): .infinity
        case .string("-Infinity"): -.infinity
        default: nil
        }
    }

    /// A whole number that fits an Int.
    public var int: Int? {
        guard case .number(let d) = self, d == d.rounded(), abs(d) < 9e15 else { return nil }
        return Int(d)
    }

    public var array: [ZarrJSON]? {
        if case .array(let a) = self { return a }
        return nil
    }

    public var object: [String: ZarrJSON]? {
        if case .object(let o) = self { return o }
        return nil
    }

    /// Numbers as one list (an attribute holding a number or a list of numbers).
    public var doubles: [Double]? {
        if let d = double { return [d] }
        return array?.compactMap(\.double)
    }

    public var strings: [String]? { array?.compactMap(\.string) }
}
