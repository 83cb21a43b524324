import Foundation
import RainSupport

extension Dataset {
    /// Metadata file names, most trusted first: PyRain reads only the `.dill`; the JSON is its copy.
    static func isMetadata(_ name: String) -> Bool { name.hasSuffix(".dill") || name.hasSuffix("_info.json") }

    /// `era5625.dill`, `era5625_info.json` → `era5625`; the bucket's `imerg5625-imerg5625.dill` → `imerg5625`.
    static func stem(_ name: String) -> String {
        var s = name.hasSuffix(".dill") ? String(name.dropLast(5)) : String(name.dropLast("_info.json".count))
        let halves = s.split(separator: "-", omittingEmptySubsequences: false)
        if halves.count == 2, halves[0] == halves[1] { s = String(halves[0]) }
        return s
    }

    /// The metadata file `path` means: the file itself, or the one in a directory (a `.dill` before a JSON).
    static func metadataURL(_ path: String) throws -> URL {
        let url = URL(fileURLWithPath: path)
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir) else {
            throw SwiftRainError(
                path, "dataset directory not found",
                hint:
                    """
                    pass the directory holding the dataset's .dill (or _info.json) and its .mmap files (e.g. \
                    data/era5625), or run `swiftrain synth --out data`
                    """)
        }
        guard isDir.boolValue else {
            guard isMetadata(url.lastPathComponent) else {
                throw SwiftRainError(
                    path, "not a dataset's metadata file", expected: "a directory, <name>.dill or <name>_info.json",
                    found: url.lastPathComponent, hint: "point `data` at the dataset directory")
            }
            return url
        }
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: url.path)) ?? []).filter(isMetadata)
        guard
            let first = names.sorted(by: { ($0.hasSuffix(".dill") ? 0 : 1, $0) < ($1.hasSuffix(".dill") ? 0 : 1, $1) })
                .first
        else {
            throw SwiftRainError(
                path, "no dataset metadata in this directory",
                expected:
                    """
                    <name>.dill as RainBench ships it (e.g. era5625_aaai-era5625_aaai.dill, \
                    imerg5625-imerg5625.dill, simsat5625-simsat5625.dill) or <name>_info.json
                    """,
                hint: "point at the dataset directory itself (e.g. data/simsat5625), or download its .dill")
        }
        return url.appendingPathComponent(first)
    }

    /// Loads `url`, and every other metadata file beside it that describes the same dataset: they must
    /// agree, or the user is told which differ and where (PyRain would read only the `.dill`).
    static func loadAgreeing(_ url: URL) throws -> DatasetInfo {
        let info = try DatasetInfo.load(url)
        let dir = url.deletingLastPathComponent()
        let prefixes = Set(info.variables.keys.map { $0.split(separator: "/").first ?? "" })
        for other in ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []).filter(isMetadata)
            .sorted()
        where other != url.lastPathComponent {
            let otherURL = dir.appendingPathComponent(other)
            let them = try DatasetInfo.load(otherURL)
            guard Set(them.variables.keys.map { $0.split(separator: "/").first ?? "" }) == prefixes, them != info else {
                continue
            }
            throw SwiftRainError(
                dir.path, "\(url.lastPathComponent) and \(other) describe this dataset differently",
                expected: "the same metadata (PyRain's converters write the JSON as a copy of the .dill)",
                found: firstDifference(info, them) ?? "different metadata",
                hint:
                    """
                    delete the stale one (PyRain reads only the .dill), or point `data` at the file you mean \
                    and move the other away
                    """)
        }
        return info
    }

    /// The first entry that differs, as `variables["k"]: a vs b`.
    static func firstDifference(_ a: DatasetInfo, _ b: DatasetInfo) -> String? {
        func json<T: Encodable>(_ v: T?) -> String {
            guard let v, let d = try? JSONEncoder.sorted.encode(v) else { return "absent" }
            return String(decoding: d, as: UTF8.self)
        }
        for k in Set(a.variables.keys).union(b.variables.keys).sorted() where a.variables[k] != b.variables[k] {
            return "variables[\"\(k)\"]: \(json(a.variables[k])) vs \(json(b.variables[k]))"
        }
        for k in Set(a.memmap.keys).union(b.memmap.keys).sorted() where a.memmap[k] != b.memmap[k] {
            return "memmap[\"\(k)\"]: \(json(a.memmap[k])) vs \(json(b.memmap[k]))"
        }
        return nil
    }
}

extension JSONEncoder {
    static var sorted: JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        return e
    }
}
