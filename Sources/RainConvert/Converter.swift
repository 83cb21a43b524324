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
    /// Years converted at once, each in its own process (libnetcdf is not thread-safe).
    public var jobs = 1
    /// Starts a child process that converts one year (`--only-year`); nil: every year in this process.
    public var spawnYear: ((Int) throws -> Process)?

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
            for year in saved.done where saved.inputs?[String(year)] != inputFingerprint(year) {
                throw SwiftRainError(
                    directory.path, "the input files of \(year), already converted, have changed since",
                    expected: "the same files for the years written", found: "other sizes or files",
                    hint: "delete \(directory.path) and convert again (or restore the files)")
            }
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
            yearsWritten: plan.years.filter { !state.resumedFrom.contains($0) },
            yearsResumed: state.resumedFrom.sorted())
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
        let bytes = off_t(rows) * off_t(plan.channels.count * plan.grid.plane * 4)
        var st = stat()
        fstat(fd, &st)
        if st.st_size < bytes { try Self.check(ftruncate(fd, bytes), path, "grow to \(bytes) bytes") }
        state.resumedFrom = state.done
        let pending = plan.years.filter { !state.done.contains($0) }
        // A year converted is recorded at once: an interruption loses at most the years in flight.
        func record(_ r: YearResult) throws {
            for (name, span) in r.coverage {
                let old = state.coverage[name]
                state.coverage[name] = [min(old?[0] ?? span[0], span[0]), max(old?[1] ?? span[1], span[1])]
            }
            for (name, times) in r.missing ?? [:] { state.missing[name, default: []] += times }
            state.done.append(r.year)
            state.inputs = (state.inputs ?? [:]).merging([String(r.year): inputFingerprint(r.year)]) { $1 }
            try state.save(stateURL)
            // For the resume test: die as a killed process would, with no cleanup, right after a year.
            if ProcessInfo.processInfo.environment["SWIFTRAIN_CONVERT_DIE_AFTER_YEAR"] == String(r.year) {
                kill(getpid(), SIGKILL)
            }
            progress(
                "\(plan.dataset) \(r.year): \(plan.channels.count) channel(s) from \(r.files) file(s), \(r.rows) rows"
                    + (r.holes > 0 ? ", \(r.holes) channel-steps not in the files (NaN)" : "")
                    + (r.outside > 0 ? ", \(r.outside) times outside \(r.year) skipped" : "")
                    + " in \(String(format: "%.1f", r.seconds)) s")
        }
        if let spawnYear, jobs > 1, pending.count > 1 {
            progress(
                "\(plan.dataset): \(pending.count) years, \(min(jobs, pending.count)) at a time in child processes")
            try runInChildren(pending, jobs: jobs, spawn: spawnYear, record: record)
        } else {
            for year in pending { try record(try convertYear(year, fd: fd, path: path, origin: state.origin)) }
        }
    }

    func levelIndex(_ channel: ConversionPlan.Channel, _ field: SourceField) throws -> Int? {
        let subject = field.subject
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

    func pwriteAll(
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
