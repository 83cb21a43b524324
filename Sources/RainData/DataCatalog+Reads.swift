import Foundation
import RainSupport

/// One data file of the catalog and whether a configuration reads it (`swiftrain inspect`'s table).
public struct FileRead: Encodable, Equatable {
    public var dataset: String
    /// The file's name in its metadata.
    public var file: String
    /// Its size by the metadata (4 · ∏dims).
    public var bytes: Int
    /// "present", "absent" or "broken" (present but not the size its metadata gives).
    public var status: String
    /// The configuration's variables read from it; empty when the run does not need the file.
    public var readBy: [String]
    public var needed: Bool { !readBy.isEmpty }
}

extension DataCatalog {
    /// The variables a run of `spec` reads: temporal inputs, constants and the target.
    static func variables(of spec: SampleSpec) -> [String] { spec.inputs + spec.constants + [spec.target] }

    /// Every file described, with what `spec` reads from it: the run maps only the needed ones.
    public func reads(for spec: SampleSpec) -> [FileRead] {
        var readers: [String: [String]] = [:]  // "dataset|file" → variables
        for key in Self.variables(of: spec) {
            guard let (ds, v, _) = try? find(key) else { continue }
            readers["\(ds.name)|\(v.mmapName)", default: []].append(key)
        }
        return datasets.flatMap { ds in
            ds.info.memmap.keys.sorted().map { name in
                let status =
                    ds.files[name] != nil
                    ? "present"
                    : (ds.unavailable[name]?.problem.hasPrefix("data file missing") ?? true ? "absent" : "broken")
                return FileRead(
                    dataset: ds.name, file: name, bytes: ds.info.memmap[name]!.byteCount, status: status,
                    readBy: readers["\(ds.name)|\(name)"] ?? [])
            }
        }
    }

    /// Throws every reason a run of `spec` cannot read its variables, together: each absent or broken
    /// file once (with the variables that need it), each variable no dataset has.
    public func requireReads(for spec: SampleSpec) throws {
        var problems: [SwiftRainError] = []
        var byFile: [String: (error: SwiftRainError, keys: [String])] = [:], order: [String] = []
        for key in Self.variables(of: spec) {
            do {
                guard let (ds, v, _) = try find(key), ds.files[v.mmapName] == nil,
                    let e = ds.unavailable[v.mmapName]
                else {
                    _ = try channels(of: key)
                    continue
                }
                let id = "\(ds.name)|\(v.mmapName)"
                if byFile[id] == nil {
                    order.append(id)
                    byFile[id] = (e, [])
                }
                byFile[id]!.keys.append(key)
            } catch let e as SwiftRainError {
                // The same problem for several variables (the levels of one) is said once, naming them all.
                if let i = problems.firstIndex(where: { $0.problem == e.problem && $0.hint == e.hint }) {
                    problems[i].subject += ", " + e.subject
                } else {
                    problems.append(e)
                }
            }
        }
        for id in order {
            var (e, keys) = byFile[id]!
            let shown =
                keys.count > 4
                ? keys.prefix(3).joined(separator: ", ") + " and \(keys.count - 3) more" : keys.joined(separator: ", ")
            e.problem += " (this configuration reads \(shown) from it)"
            e.hint =
                (e.hint ?? "")
                + "; or choose --sources that do not read it (`swiftrain inspect` lists what each file is for)"
            problems.insert(e, at: 0)
        }
        if !problems.isEmpty { throw ValidationErrors(errors: problems) }
    }
}
