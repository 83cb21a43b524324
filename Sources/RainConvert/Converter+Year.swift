import Foundation
import RainNetCDF
import RainSupport
import RainZarr

#if canImport(Glibc)
import Glibc
#endif

/// What converting one year wrote: the per-channel time span the files covered, and counts for the
/// progress line. A child process (`--jobs`) hands it to the parent as JSON.
struct YearResult: Codable {
    var year: Int
    var coverage: [String: [EpochSeconds]]
    /// Per channel, the times written as NaN planes or not written at all (missing dates, chunks, files).
    var missing: [String: [EpochSeconds]]? = nil
    var rows: Int, files: Int, holes: Int, outside: Int
    var seconds: Double
}

extension Converter {
    /// Writes every row of `year` into the open data file `fd` (at `path`), rows placed by timestamp
    /// relative to row 0's time `origin`; rows no file had become NaN.
    func convertYear(_ year: Int, fd: Int32, path: String, origin: EpochSeconds) throws -> YearResult {
        let plane = plan.grid.plane, c = plan.channels.count
        let started = Date()
        let (first, last) = plan.rows(of: year)
        let r0 = Int((first - origin) / plan.step), n = Int((last - first) / plan.step) + 1
        var written = [[Bool]](repeating: [Bool](repeating: false, count: n), count: c)
        var empty = written  // rows written as an all-NaN plane (a missing date or chunk)
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
                empty[key.channel][key.row - r0] = mean.allSatisfy(\.isNaN)
            }
        }
        for path in paths {
            // A Zarr store holds every year: its times outside this one are expected, not counted.
            let store = plan.zarrStore == path ? try ZarrStore(path: path) : nil
            let file = store == nil ? try NetCDFFile.open(path: path) : nil
            for (ci, channel) in plan.channels.enumerated() where perChannel[ci].contains(path) {
                let field =
                    try store.map { try SourceField(plan.zarrVariable($0, channel.sourceVariable), grid: plan.grid) }
                    ?? SourceField(
                        file: file!, variable: channel.sourceVariable, grid: plan.grid,
                        impliedTimes: plan.impliedStart[path].map { ($0, plan.step) },
                        channelAxis: channel.levelIndex != nil)
                let level = try levelIndex(channel, field)
                // Rows by timestamp; a time off the step grid is a broken file, not a rounding case.
                let target: [Int?] = try field.times.enumerated().map { i, t in
                    guard plan.meanOverStep || (t - origin) % plan.step == 0 else {
                        throw SwiftRainError(
                            "\(path): time[\(i)]", "not on the dataset's \(plan.step / 3600)-hourly grid",
                            found: UTCTime.iso(t), hint: "the file's times must fall on whole steps")
                    }
                    let slot = origin + floorDiv(t - origin, plan.step) * plan.step
                    guard slot >= first && slot <= last else {
                        if store == nil { outside += 1 }
                        return nil
                    }
                    return Int(floorDiv(t - origin, plan.step))
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
                        empty[ci][row - r0] = planes[(k - lo) * plane..<(k - lo + 1) * plane].allSatisfy(\.isNaN)
                    }
                }
            }
            try file?.close()
        }
        try flush(before: nil)
        // Hours no file had are NaN, not zeros (a sparse file's hole would read as 0 K, 0 mm).
        let nan = [Float](repeating: .nan, count: plane)
        var holes = 0
        var coverage: [String: [EpochSeconds]] = [:]
        var missing: [String: [EpochSeconds]] = [:]
        for ci in 0..<c {
            let nanRows = (0..<n).filter { !written[ci][$0] || empty[ci][$0] }
            if !nanRows.isEmpty {
                missing[plan.channels[ci].name] = nanRows.map { first + EpochSeconds($0) * plan.step }
            }
            for i in 0..<n where !written[ci][i] {
                holes += 1
                try nan.withUnsafeBufferPointer {
                    try pwriteAll(fd, $0.baseAddress!, plane, row: r0 + i, channel: ci, path)
                }
            }
            if let a = written[ci].firstIndex(of: true), let b = written[ci].lastIndex(of: true) {
                coverage[plan.channels[ci].name] = [
                    first + EpochSeconds(a) * plan.step, first + EpochSeconds(b) * plan.step,
                ]
            }
        }
        try Self.check(fsync(fd), path, "sync")
        return YearResult(
            year: year, coverage: coverage, missing: missing, rows: n, files: paths.count, holes: holes,
            outside: outside,
            seconds: Date().timeIntervalSince(started))
    }
}
