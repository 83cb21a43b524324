import Foundation
import RainData
import RainNetCDF
import RainSupport

#if canImport(Glibc)
import Glibc
#endif

/// Runs a `ConversionPlan`: streams year by year into the dataset's memory-mapped layout, resumable
/// after an interruption, and writes the metadata (`.dill` and `_info.json`) last.
///
/// Every row is placed by its UTC timestamp, never by its position in a file: hours a file lacks (ERA5's
/// tp before 1979-01-01 07:00) and masked values become NaN. Memory stays bounded by one read chunk.
public struct Converter {
    public var plan: ConversionPlan
    /// The parent of the dataset directory (`OUT/era5625`).
    public var out: URL
    /// Extend the existing dataset with the plan's (later) years instead of writing a new one.
    public var append: Bool
    public var progress: (String) -> Void
    /// Upper bound on one read (bytes of doubles).
    public var chunkBytes = 8 << 20

    public init(plan: ConversionPlan, out: URL, append: Bool = false, progress: @escaping (String) -> Void = { _ in }) {
        self.plan = plan
        self.out = out
        self.append = append
        self.progress = progress
    }

    public var directory: URL { out.appendingPathComponent(plan.dataset) }

    /// What a conversion wrote.
    public struct Summary {
        public var directory: URL
        public var rows: Int
        public var channels: Int
        public var yearsWritten: [Int]
        public var yearsResumed: [Int]
    }

    public func run() throws -> Summary {
        let fm = FileManager.default
        try fm.createDirectory(at: directory, withIntermediateDirectories: true)
        let stateURL = directory.appendingPathComponent(".convert-state.json")
        let existing = try existingInfo()
        var state: ConversionState
        if let saved = try ConversionState.load(stateURL) {
            guard saved.fingerprint == fingerprint() else {
                throw SwiftRainError(
                    directory.path, "an interrupted conversion with other settings is in progress here",
                    expected: "the same command as before (same inputs, years, variables, grid)",
                    found: "state in \(stateURL.lastPathComponent)",
                    hint: "re-run that command to finish it, or delete \(directory.path) to start over")
            }
            state = saved
        } else {
            guard append || existing == nil else {
                throw SwiftRainError(
                    directory.path, "a dataset already exists here",
                    hint: "pass --append to add later years, or choose another --out")
            }
            state = ConversionState(fingerprint: fingerprint(), origin: 0, baseRows: 0, done: [], coverage: [:])
            if append {
                guard let existing else {
                    throw SwiftRainError(
                        directory.path, "nothing to append to", expected: "\(plan.dataset).dill or _info.json here",
                        hint: "run without --append to create the dataset")
                }
                (state.origin, state.baseRows) = try appendBase(existing)
            } else if !plan.years.isEmpty {
                state.origin = plan.rows(of: plan.years[0]).first
            }
            try state.save(stateURL)
        }

        var rows = state.baseRows
        if !plan.channels.isEmpty && !plan.years.isEmpty {
            let last = plan.rows(of: plan.years.last!).last
            rows = Int((last - state.origin) / plan.step) + 1
            try writeTemporal(rows: rows, state: &state, stateURL: stateURL)
        }
        if let c = plan.constants, !append { try writeConstants(c) }
        try writeMetadata(existing: existing, rows: rows, state: state)
        try? fm.removeItem(at: stateURL)
        return Summary(
            directory: directory, rows: rows, channels: plan.channels.count,
            yearsWritten: plan.years.filter { !state.resumedFrom.contains($0) }, yearsResumed: state.resumedFrom)
    }

    // MARK: Temporal rows

    private func writeTemporal(rows: Int, state: inout ConversionState, stateURL: URL) throws {
        let path = directory.appendingPathComponent(plan.temporalFile).path
        let fd = open(path, O_RDWR | O_CREAT, 0o644)
        guard fd >= 0 else {
            throw SwiftRainError(
                path, "cannot open for writing", found: String(cString: strerror(errno)),
                hint: "check the permissions and free space of --out")
        }
        defer { close(fd) }
        let plane = plan.grid.plane, c = plan.channels.count
        let bytes = off_t(rows) * off_t(c * plane * 4)
        var st = stat()
        fstat(fd, &st)
        if st.st_size < bytes { try Self.check(ftruncate(fd, bytes), path, "grow to \(bytes) bytes") }
        state.resumedFrom = state.done

        for year in plan.years where !state.done.contains(year) {
            let started = Date()
            let (first, last) = plan.rows(of: year)
            let r0 = Int((first - state.origin) / plan.step), n = Int((last - first) / plan.step) + 1
            var written = [[Bool]](repeating: [Bool](repeating: false, count: n), count: c)
            var outside = 0
            let perChannel = plan.inputs[year] ?? []
            // In the plan's order (chronological for half-hourly files, which averaging relies on).
            var seenPaths = Set<String>()
            let paths = perChannel.joined().filter { seenPaths.insert($0).inserted }
            var means = StepMeans(plane: plane)
            func flush(before row: Int?) throws {
                for (key, mean) in means.take(before: row) {
                    try mean.withUnsafeBufferPointer { b in
                        try pwriteAll(fd, b.baseAddress!, plane, row: key.row, channel: key.channel, path)
                    }
                    written[key.channel][key.row - r0] = true
                }
            }
            for path in paths {
                let file = try NetCDFFile.open(path: path)
                for (ci, channel) in plan.channels.enumerated() where perChannel[ci].contains(path) {
                    let field = try SourceField(
                        file: file, variable: channel.sourceVariable, grid: plan.grid,
                        impliedTimes: plan.impliedStart[path].map { ($0, plan.step) },
                        channelAxis: channel.levelIndex != nil)
                    let level = try levelIndex(channel, field)
                    // Rows by timestamp; a time off the step grid is a broken file, not a rounding case.
                    let target: [Int?] = try field.times.enumerated().map { i, t in
                        guard plan.meanOverStep || (t - state.origin) % plan.step == 0 else {
                            throw SwiftRainError(
                                "\(path): time[\(i)]", "not on the dataset's \(plan.step / 3600)-hourly grid",
                                found: UTCTime.iso(t), hint: "the file's times must fall on whole steps")
                        }
                        let slot = state.origin + floorDiv(t - state.origin, plan.step) * plan.step
                        guard slot >= first && slot <= last else {
                            outside += 1
                            return nil
                        }
                        return Int(floorDiv(t - state.origin, plan.step))
                    }
                    guard !target.isEmpty else { continue }
                    if plan.meanOverStep, let low = target.compactMap({ $0 }).min() {
                        try flush(before: low)
                        guard !target.contains(where: { $0.map { written[ci][$0 - r0] } ?? false }) else {
                            throw SwiftRainError(
                                path, "times of a step already written from earlier files",
                                expected: "files in time order, each time in one file only",
                                hint: "remove duplicated or overlapping files from --from")
                        }
                    }
                    let chunk = max(1, chunkBytes / (field.sourcePlane * 8))
                    for lo in stride(from: 0, to: target.count, by: chunk) {
                        let hi = min(target.count, lo + chunk)
                        guard target[lo..<hi].contains(where: { $0 != nil }) else { continue }
                        let planes = try field.read(lo..<hi, level: level)
                        for k in lo..<hi {
                            guard let row = target[k] else { continue }
                            if plan.meanOverStep {
                                means.add(planes[(k - lo) * plane..<(k - lo + 1) * plane], row: row, channel: ci)
                                continue
                            }
                            try planes.withUnsafeBufferPointer { b in
                                try pwriteAll(fd, b.baseAddress! + (k - lo) * plane, plane, row: row, channel: ci, path)
                            }
                            written[ci][row - r0] = true
                        }
                    }
                }
                try file.close()
            }
            try flush(before: nil)
            // Hours no file had are NaN, not zeros (a sparse file's hole would read as 0 K, 0 mm).
            let nan = [Float](repeating: .nan, count: plane)
            var holes = 0
            for ci in 0..<c {
                for i in 0..<n where !written[ci][i] {
                    holes += 1
                    try nan.withUnsafeBufferPointer {
                        try pwriteAll(fd, $0.baseAddress!, plane, row: r0 + i, channel: ci, path)
                    }
                }
                if let a = written[ci].firstIndex(of: true), let b = written[ci].lastIndex(of: true) {
                    let t0 = first + EpochSeconds(a) * plan.step, t1 = first + EpochSeconds(b) * plan.step
                    let name = plan.channels[ci].name
                    let old = state.coverage[name]
                    state.coverage[name] = [min(old?[0] ?? t0, t0), max(old?[1] ?? t1, t1)]
                }
            }
            try Self.check(fsync(fd), path, "sync")
            state.done.append(year)
            try state.save(stateURL)
            // For the resume test: die as a killed process would, with no cleanup, right after a year.
            if ProcessInfo.processInfo.environment["SWIFTRAIN_CONVERT_DIE_AFTER_YEAR"] == String(year) {
                kill(getpid(), SIGKILL)
            }
            let s = String(format: "%.1f", Date().timeIntervalSince(started))
            progress(
                "\(plan.dataset) \(year): \(c) channel(s) from \(paths.count) file(s), \(n) rows"
                    + (holes > 0 ? ", \(holes) channel-hours not in the files (NaN)" : "")
                    + (outside > 0 ? ", \(outside) times outside \(year) skipped" : "") + " in \(s) s")
        }
    }

    private func levelIndex(_ channel: ConversionPlan.Channel, _ field: SourceField) throws -> Int? {
        let subject = "\(field.file.path): \(field.name)"
        if let p = channel.pressure { return try field.levelIndex(Double(p)) }
        if let i = channel.levelIndex {
            guard let levels = field.levels, i < levels.count else {
                throw SwiftRainError(
                    subject, "no channel \(i)", expected: "a level/channel axis with at least \(i + 1) entries",
                    found: "\(field.levels?.count ?? 0)", hint: "check the file is the dataset's")
            }
            return i
        }
        // A single-level variable must not silently take the first of several levels (PyRain's bug).
        if let levels = field.levels, levels.count > 1 {
            throw SwiftRainError(
                subject, "a single-level variable with \(levels.count) levels",
                expected: "no level axis, or one of length 1", hint: "select the level first, or check the file")
        }
        return field.levels == nil ? nil : 0
    }

    private func pwriteAll(
        _ fd: Int32, _ p: UnsafePointer<Float>, _ count: Int, row: Int, channel: Int, _ path: String
    ) throws {
        let offset = off_t(((row * plan.channels.count) + channel) * plan.grid.plane) * 4
        var done = 0
        let total = count * 4
        while done < total {
            let w = pwrite(fd, UnsafeRawPointer(p) + done, total - done, offset + off_t(done))
            if w < 0 && errno == EINTR { continue }
            try Self.check(w > 0 ? 0 : -1, path, "write")
            done += w
        }
    }

    static func check(_ status: Int32, _ path: String, _ what: String) throws {
        guard status != 0 else { return }
        throw SwiftRainError(
            path, "\(what) failed", found: String(cString: strerror(errno)),
            hint: "check the free space of --out; re-running the same command resumes")
    }
}
