import Foundation
import RainSupport

/// A Zarr store in a local directory (v2 or v3, its group's arrays found through consolidated metadata when
/// present, else by listing). Arrays are opened by their path inside the store, as xarray names variables.
public final class ZarrStore {
    public let url: URL
    /// 2 or 3.
    public let format: Int
    /// The root group's attributes (`.zattrs` or `zarr.json`'s `attributes`).
    public let attributes: [String: ZarrJSON]
    /// Every array's metadata by path, from consolidated metadata or by listing.
    private var v2: [String: (array: ZarrJSON, attributes: ZarrJSON?)] = [:]
    private var v3: [String: ZarrJSON] = [:]
    private var opened: [String: ZarrArray] = [:]

    /// Opens the store at `path`: a directory holding `.zgroup`/`.zmetadata` (v2) or `zarr.json` (v3).
    public init(path: String) throws {
        url = URL(fileURLWithPath: path)
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue else {
            throw SwiftRainError(
                path, "no such directory", expected: "a Zarr store (a directory with .zgroup, .zmetadata or zarr.json)",
                hint: "download the store first (gsutil -m cp -r gs://… DIR); remote stores are not read directly")
        }
        if let root = try ZarrJSON.load(url.appendingPathComponent("zarr.json"), subject: path) {
            format = 3
            attributes = root["attributes"]?.object ?? [:]
            if root["node_type"]?.string == "array" {
                v3[""] = root
            } else if let consolidated = root["consolidated_metadata"]?["metadata"]?.object {
                v3 = consolidated.filter { $0.value["node_type"]?.string == "array" }
            } else {
                for name in try Self.list(url, marker: "zarr.json") {
                    if let m = try ZarrJSON.load(url.appendingPathComponent(name + "/zarr.json"), subject: path),
                        m["node_type"]?.string == "array"
                    {
                        v3[name] = m
                    }
                }
            }
            return
        }
        format = 2
        if let zmeta = try ZarrJSON.load(url.appendingPathComponent(".zmetadata"), subject: path),
            let all = zmeta["metadata"]?.object
        {
            attributes = all[".zattrs"]?.object ?? [:]
            for (key, value) in all where key.hasSuffix("/.zarray") {
                let name = String(key.dropLast("/.zarray".count))
                v2[name] = (value, all[name + "/.zattrs"])
            }
            if let root = all[".zarray"] { v2[""] = (root, all[".zattrs"]) }
            return
        }
        let hasGroup = FileManager.default.fileExists(atPath: url.appendingPathComponent(".zgroup").path)
        let root = try ZarrJSON.load(url.appendingPathComponent(".zarray"), subject: path)
        guard hasGroup || root != nil else {
            throw SwiftRainError(
                path, "not a Zarr store", expected: ".zgroup or .zmetadata (Zarr v2), or zarr.json (Zarr v3)",
                found: "none of them", hint: "pass the store's top directory (the one ending in .zarr)")
        }
        attributes = try ZarrJSON.load(url.appendingPathComponent(".zattrs"), subject: path)?.object ?? [:]
        if let root {
            v2[""] = (root, try ZarrJSON.load(url.appendingPathComponent(".zattrs"), subject: path))
        }
        for name in try Self.list(url, marker: ".zarray") {
            let dir = url.appendingPathComponent(name)
            if let a = try ZarrJSON.load(dir.appendingPathComponent(".zarray"), subject: path) {
                v2[name] = (a, try ZarrJSON.load(dir.appendingPathComponent(".zattrs"), subject: path))
            }
        }
    }

    /// Paths of directories under `url` holding `marker` (arrays in nested groups included; chunk
    /// directories are not descended).
    private static func list(_ url: URL, marker: String) throws -> [String] {
        var found: [String] = []
        let fm = FileManager.default
        func walk(_ relative: String, depth: Int) {
            guard depth < 8 else { return }
            let dir = relative.isEmpty ? url : url.appendingPathComponent(relative)
            for entry in (try? fm.contentsOfDirectory(atPath: dir.path)) ?? [] where !entry.hasPrefix(".") {
                let path = relative.isEmpty ? entry : relative + "/" + entry
                var isDir: ObjCBool = false
                guard fm.fileExists(atPath: url.appendingPathComponent(path).path, isDirectory: &isDir),
                    isDir.boolValue
                else { continue }
                if fm.fileExists(atPath: url.appendingPathComponent(path + "/" + marker).path) {
                    found.append(path)
                } else if entry != "c" {
                    walk(path, depth: depth + 1)
                }
            }
        }
        walk("", depth: 0)
        return found.sorted()
    }

    /// The arrays' paths, sorted.
    public var arrayNames: [String] { (format == 2 ? Array(v2.keys) : Array(v3.keys)).sorted() }

    /// The array at `name` (a path inside the store), or nil when there is none.
    public func array(_ name: String) throws -> ZarrArray? {
        if let a = opened[name] { return a }
        let a: ZarrArray
        if format == 2 {
            guard let m = v2[name] else { return nil }
            a = try ZarrArray(store: url, name: name, v2: m.array, attributes: m.attributes)
        } else {
            guard let m = v3[name] else { return nil }
            a = try ZarrArray(store: url, name: name, v3: m)
        }
        opened[name] = a
        return a
    }

    /// The array at `name`, or an error naming what the store does hold.
    public func require(_ name: String, for purpose: String) throws -> ZarrArray {
        if let a = try array(name) { return a }
        let shown = arrayNames.prefix(24).joined(separator: ", ") + (arrayNames.count > 24 ? ", …" : "")
        throw SwiftRainError(
            url.path, "no array '\(name)'", expected: "\(name) (\(purpose))", found: shown,
            hint: "check the store is the one meant (its arrays are listed above)")
    }
}
