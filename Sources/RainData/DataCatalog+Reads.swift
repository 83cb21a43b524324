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
    /// Rows (time steps) the configuration's partitions can read, first…last; nil for constants and files
    /// not needed. Only these byte ranges are mapped, so a partial copy may hold just them.
    public var rows: ClosedRange<Int>?
    /// Bytes the run may read: the rows' span, the whole file for a constant one, 0 when not needed.
    public var bytesRead: Int
    public var needed: Bool { !readBy.isEmpty }
}

extension DataCatalog {
    /// The variables a run of `spec` reads: temporal inputs, constants and the target.
    static func variables(of spec: SampleSpec) -> [String] { spec.inputs + spec.constants + [spec.target] }

    /// Every file described, with what `spec` reads from it: the run maps only the needed ones.
    public func reads(for spec: SampleSpec) -> [FileRead] {
        var readers: [String: [String]] = [:]  // "dataset|file" → variables
        var spans: [String: TimeSpan] = [:]  // "dataset|file" → times its variables are described at
        // Every read falls in [first t0 − window, last partition end] (inputs before t0, targets up to the end).
        let lo = spec.partitions.map { $0.start }.min() ?? 0, hi = spec.partitions.map(\.end).max() ?? 0
        for key in Self.variables(of: spec) {
            guard let (ds, v, _) = try? find(key) else { continue }
            let id = "\(ds.name)|\(v.mmapName)"
            readers[id, default: []].append(key)
            let span = TimeSpan(
                first: v.firstTs.map { EpochSeconds($0.rounded()) } ?? lo,
                last: v.lastTs.map { EpochSeconds($0.rounded()) } ?? hi)
            let old = spans[id] ?? span
            spans[id] = TimeSpan(first: min(old.first, span.first), last: max(old.last, span.last))
        }
        func rows(_ m: MemmapInfo, _ id: String) -> ClosedRange<Int>? {
            guard let r = m.daterange, r.count == 2, let f = m.tfreqS.map({ EpochSeconds($0.rounded()) }), f > 0,
                let v = spans[id]
            else { return nil }
            let d0 = EpochSeconds(r[0].rounded()), d1 = EpochSeconds(r[1].rounded())
            let a = max(lo, v.first, d0), b = min(hi, v.last, d1)
            guard a <= b else { return nil }
            let first = Int(ceilDiv(a - d0, f)), last = Int(floorDiv(b - d0, f))
            return first <= last ? first...last : nil
        }
        return datasets.flatMap { ds in
            ds.info.memmap.keys.sorted().map { name in
                let status = ds.files[name] != nil ? "present" : ds.absent.contains(name) ? "absent" : "broken"
                let m = ds.info.memmap[name]!, id = "\(ds.name)|\(name)"
                let span = m.daterange != nil && readers[id] != nil ? rows(m, id) : nil
                let read =
                    readers[id] == nil
                    ? 0 : m.daterange == nil ? m.byteCount : (span?.count ?? 0) * 4 * m.dims.dropFirst().reduce(1, *)
                return FileRead(
                    dataset: ds.name, file: name, bytes: m.byteCount, status: status, readBy: readers[id] ?? [],
                    rows: span, bytesRead: read)
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
        problems += stepProblems(for: spec)
        if !problems.isEmpty { throw ValidationErrors(errors: problems) }
    }

    /// Data coarser than PyRain's own steps (1 h, 3 h), such as WeatherBench 2's 6-hourly ERA5, must be read
    /// on whole steps: PyRain's nearest-past rule would silently repeat a row (a 3-hourly history from
    /// 6-hourly data). Each variable's offsets, leads, sample stride and partition starts are checked.
    func stepProblems(for spec: SampleSpec) -> [SwiftRainError] {
        var seen = Set<String>()  // one problem per dataset and role (inputs: offsets; target: leads)
        return Self.variables(of: spec).compactMap { key -> SwiftRainError? in
            guard let (ds, v, _) = try? find(key), let f = v.tfreqS.map({ EpochSeconds($0.rounded()) }), f > 3 * 3600,
                let m = ds.info.memmap[v.mmapName], let d0 = m.daterange?.first.map({ EpochSeconds($0.rounded()) }),
                seen.insert(ds.name + (key == spec.target ? " target" : " inputs")).inserted
            else { return nil }
            let h = { (s: EpochSeconds) in "\(s / 3600) h" }
            var off: [String] = []
            let times = key == spec.target ? spec.leads : spec.offsets
            if let t = times.first(where: { $0 % f != 0 }) {
                off.append(key == spec.target ? "lead time \(h(t))" : "input offset −\(h(-t))")
            }
            for p in spec.partitions {
                if p.stride % f != 0 { off.append("\(p.name.rawValue) sample stride \(h(p.stride))") }
                if (spec.firstSampleTime(p) - d0) % f != 0 {
                    off.append("\(p.name.rawValue) samples starting at \(UTCTime.iso(spec.firstSampleTime(p)))")
                }
            }
            guard !off.isEmpty else { return nil }
            return SwiftRainError(
                key, "the configuration reads between the data's steps: \(ds.name) holds a row every \(h(f))",
                expected: "every time on the \(h(f)) grid from \(UTCTime.iso(d0))",
                found: off.prefix(4).joined(separator: "; "),
                hint: "use multiples of \(f / 3600) for sample_freq, sample_time_window, forecast_freq and "
                    + "sample_stride, and partition starts on the grid (e.g. train_start: 1979-01-01 with "
                    + "sample_time_window a multiple of \(f / 3600))")
        }
    }
}
