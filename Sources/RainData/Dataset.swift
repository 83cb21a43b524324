import Foundation
import RainSupport

/// One RainBench dataset directory (e.g. `era5625/`): its metadata and the data files that are there.
///
/// Opening a dataset validates all of its metadata, but a data file that is absent or broken is only
/// recorded (`unavailable`): it is an error when a run needs one of its variables (`DataCatalog`), so a
/// SimSat → IMERG run can use ERA5's constants without the 49 GiB ERA5 temporal file.
public final class Dataset {
    /// The dataset's name as its variables spell it (`era5625` for `era5625/t2m`).
    public let name: String
    public let directory: URL
    /// The metadata file read: `<name>.dill` (what PyRain reads), a bucket download name, or `_info.json`.
    public let infoURL: URL
    public let info: DatasetInfo
    /// The data files present with the size their metadata gives, by their metadata name.
    public let files: [String: DataFile]
    /// Files described but absent or broken, with the error a run that needs them gets.
    public let unavailable: [String: SwiftRainError]
    /// Of those, the ones not on disk at all (the others are there with the wrong size).
    public let absent: Set<String>
    /// Quirks of the metadata survived as PyRain survives them, said once (`inspect` prints them).
    public let warnings: [String]

    /// Opens `path`: a dataset directory, or its `.dill` or `_info.json` itself.
    public init(path: String) throws {
        let url = try Self.metadataURL(path)
        infoURL = url
        directory = url.deletingLastPathComponent()
        info = try Self.loadAgreeing(url)
        let prefixes = Set(info.variables.keys.compactMap { $0.split(separator: "/").first.map(String.init) })
        name = prefixes.count == 1 ? prefixes.first! : Self.stem(url.lastPathComponent)

        var problems: [SwiftRainError] = [], warnings: [String] = []
        var files: [String: DataFile] = [:], unavailable: [String: SwiftRainError] = [:], absent: Set<String> = []
        for (fileName, m) in info.memmap.sorted(by: { $0.key < $1.key }) {
            let subject = "\(url.lastPathComponent): memmap[\"\(fileName)\"]"
            do {
                if let quirk = try Self.checkGeometry(m, subject) { warnings.append("\(fileName): \(quirk)") }
            } catch let e as SwiftRainError {
                problems.append(e)
                continue
            }
            var onDisk = directory.appendingPathComponent(fileName)
            if !FileManager.default.fileExists(atPath: onDisk.path), let alias = Self.knownAlias(fileName, directory) {
                warnings.append(
                    """
                    \(fileName) is named \(alias) on disk (PyRain's converter writes it so); using \(alias)
                    """)
                onDisk = directory.appendingPathComponent(alias)
            }
            do {
                let mapped = try MappedFile(path: onDisk.path, expectedBytes: m.byteCount, shape: m.dims)
                files[fileName] = DataFile(name: fileName, info: m, mapped: mapped)
            } catch let e as SwiftRainError {
                unavailable[fileName] = e
                if !FileManager.default.fileExists(atPath: onDisk.path) { absent.insert(fileName) }
            }
        }
        for (key, v) in info.variables.sorted(by: { $0.key < $1.key }) {
            problems += Self.checkVariable(key, v, info, "\(url.lastPathComponent): variables[\"\(key)\"]")
        }
        if !problems.isEmpty { throw ValidationErrors(errors: problems) }
        self.files = files
        self.unavailable = unavailable
        self.absent = absent
        self.warnings = warnings
    }

    /// Names PyRain's converters write beside what their metadata says: `…bi.mmap` for IMERG.
    static let knownSuffixes = ["bi"]

    static func knownAlias(_ fileName: String, _ directory: URL) -> String? {
        guard fileName.hasSuffix(".mmap") else { return nil }
        let stem = fileName.dropLast(".mmap".count)
        return knownSuffixes.map { "\(stem)\($0).mmap" }.first {
            FileManager.default.fileExists(atPath: directory.appendingPathComponent($0).path)
        }
    }

    /// Checks a file's metadata; returns a quirk to warn about, throws what cannot be survived.
    static func checkGeometry(_ m: MemmapInfo, _ subject: String) throws -> String? {
        guard m.dtype == "float32" else {
            throw SwiftRainError(
                subject, "unsupported dtype", expected: "float32", found: m.dtype, hint: "convert the file to float32")
        }
        guard m.daterange != nil else {
            guard m.dims.count == 3 else {
                throw SwiftRainError(
                    subject, "constant file needs dims (C, H, W)", found: "\(m.dims)", hint: "fix the metadata")
            }
            return nil
        }
        guard m.dims.count == 4, let r = m.daterange, r.count == 2, let f = m.tfreqS, f > 0, r[1] >= r[0] else {
            throw SwiftRainError(
                subject, "temporal file needs dims (T, C, H, W), daterange [first, last] and tfreq_s > 0",
                found: "dims \(m.dims), daterange \(m.daterange ?? []), tfreq_s \(m.tfreqS.map { "\($0)" } ?? "null")",
                hint: "fix the metadata")
        }
        // PyRain reads rows by `daterange`; `dims` gives the file's size. More rows than the range
        // describes is what its ERA5 converter writes (to 2019 with a range ending 2018): unavailable.
        let described = Int(((r[1] - r[0]) / f).rounded()) + 1
        let last = UTCTime.short(EpochSeconds(r[1].rounded()))
        if m.dims[0] < described {
            throw SwiftRainError(
                subject, "the date range describes more rows than the file has",
                expected:
                    """
                    (\(last) − \(UTCTime.short(EpochSeconds(r[0].rounded())))) / \(Int(f)) s + 1 = \
                    \(described) rows
                    """,
                found: "dims[0] = \(m.dims[0])", hint: "fix daterange or dims in the metadata")
        }
        if m.dims[0] > described {
            return
                """
                \(m.dims[0] - described) rows after \(last) are present but not described (daterange); \
                treated as unavailable, as PyRain does
                """
        }
        return nil
    }

    /// A variable's entry against its file's metadata (not the file itself, which may be absent).
    static func checkVariable(_ key: String, _ v: VariableInfo, _ info: DatasetInfo, _ subject: String)
        -> [SwiftRainError]
    {
        guard let m = info.memmap[v.mmapName] else {
            return [
                SwiftRainError(
                    subject, "mmap_name names a file the metadata does not describe",
                    expected: "one of \(info.memmap.keys.sorted())", found: v.mmapName, hint: "fix mmap_name")
            ]
        }
        let temporal = m.daterange != nil, d = m.dims
        guard d.count == (temporal ? 4 : 3) else { return [] }  // reported with the file
        let (channels, grid) = temporal ? (d[1], [d[2], d[3]]) : (d[0], [d[1], d[2]])
        var problems: [SwiftRainError] = []
        if v.isTemporal != temporal {
            problems.append(
                SwiftRainError(
                    subject, "type does not match its file", expected: temporal ? "temp" : "const", found: v.type,
                    hint: "fix type"))
        }
        if v.dims != grid {
            problems.append(
                SwiftRainError(
                    subject, "grid differs from its file", expected: "\(grid)", found: "\(v.dims)", hint: "fix dims"))
        }
        if v.offset < 0 || v.offset + v.channelCount > channels {
            problems.append(
                SwiftRainError(
                    subject, "channels outside the file",
                    expected: "offset + \(v.channelCount) level(s) ≤ \(channels) channels",
                    found: "offset \(v.offset)",
                    hint: "fix offset or levels"))
        }
        return problems
    }
}
