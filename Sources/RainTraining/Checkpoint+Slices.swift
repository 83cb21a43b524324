import Foundation
import RainModel
import RainSupport

#if canImport(Glibc)
import Glibc
#endif

/// A training run's checkpoint (format 2, after PyTorch DCP): every worker writes its slice of the
/// parameters and Adam moments; the coordinator, which holds no parameters, commits them by writing the
/// manifest (`last.ckpt`, `best.ckpt`) last, atomically. Any number of workers can load it: a reader
/// assembles the whole buffers from whatever slices the manifest lists.
///
///     checkpoints/last.ckpt                          SWRNCKPT | 2 | header: TrainingState + slice records
///     checkpoints/slices/<tag>/part-<i>-of-<n>.bin   SWRNSLCE | 1 | header: range | params | m | v
public struct CheckpointSlice: Codable, Equatable {
    /// Path relative to the manifest's directory.
    public var file: String
    /// The flat parameter indices this slice holds.
    public var lower: Int, upper: Int
    /// Over the slice's parameters, m and v in turn.
    public var checksum: UInt32
    public init(file: String, lower: Int, upper: Int, checksum: UInt32) {
        self.file = file
        self.lower = lower
        self.upper = upper
        self.checksum = checksum
    }
}

struct CheckpointManifest: Codable {
    var state: TrainingState
    var slices: [CheckpointSlice]
}

extension Checkpoint {
    static let sliceMagic = Array("SWRNSLCE".utf8)
    struct SliceHeader: Codable {
        var lower: Int, upper: Int, parameters: Int, globalStep: Int
    }

    /// Part `part` of `parts` of `count` parameters: the same cut as the ring's chunks.
    public static func sliceRange(part: Int, of parts: Int, count: Int) -> Range<Int> {
        (count * part / parts)..<(count * (part + 1) / parts)
    }

    /// A worker's side: writes `range` of its parameters and moments to `directory/part-i-of-n.bin`
    /// (atomically) and returns the record the coordinator puts in the manifest. `directory` is
    /// relative to `checkpoints`.
    public static func writeSlice(
        checkpoints: String, directory: String, part: Int, of parts: Int, globalStep: Int,
        params: FlatBuffer, m: FlatBuffer, v: FlatBuffer
    ) throws -> CheckpointSlice {
        let r = sliceRange(part: part, of: parts, count: params.count)
        let regions = [params, m, v].map { UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: $0.buffer[r])) }
        let file = "\(directory)/part-\(part)-of-\(parts).bin"
        let header = try encoder.encode(
            SliceHeader(lower: r.lowerBound, upper: r.upperBound, parameters: params.count, globalStep: globalStep))
        try writeAtomically(
            path: checkpoints + "/" + file,
            parts: [container(magic: sliceMagic, version: 1, header: header)] + regions)
        return CheckpointSlice(
            file: file, lower: r.lowerBound, upper: r.upperBound, checksum: Checksum.of(parts: regions))
    }

    /// The coordinator's side: checks that every slice is there with the size its range needs and that
    /// together they cover the parameters once, then writes the manifest at `path` atomically.
    public static func commit(path: String, state: TrainingState, slices: [CheckpointSlice], parameters: Int) throws {
        let dir = (path as NSString).deletingLastPathComponent
        let sorted = slices.sorted { ($0.lower, $0.upper) < ($1.lower, $1.upper) }
        var next = 0
        for s in sorted {
            guard s.lower == next, s.upper >= s.lower else {
                throw SwiftRainError(
                    path, "checkpoint slices do not cover the parameters once", expected: "a slice starting at \(next)",
                    found: "\(s.file) at \(s.lower)",
                    hint: "a worker wrote a wrong slice; the previous checkpoint stands")
            }
            next = s.upper
            let size = (try? FileManager.default.attributesOfItem(atPath: dir + "/" + s.file)[.size] as? Int) ?? nil
            guard let size, size > 12 * (s.upper - s.lower) else {
                throw SwiftRainError(
                    dir + "/" + s.file, "checkpoint slice missing or short on the coordinator's host",
                    expected: "more than \(12 * (s.upper - s.lower)) bytes",
                    found: size.map { "\($0) bytes" } ?? "nothing",
                    hint: """
                        the run directory must be the same shared directory on every host (e.g. on the cluster's \
                        shared filesystem); the previous checkpoint stands
                        """)
            }
        }
        guard next == parameters else {
            throw SwiftRainError(
                path, "checkpoint slices do not cover the parameters", expected: "\(parameters)", found: "\(next)",
                hint: "a worker wrote a wrong slice; the previous checkpoint stands")
        }
        let header = try encoder.encode(CheckpointManifest(state: state, slices: sorted))
        try writeAtomically(path: path, parts: [container(version: 2, header: header)])
    }

    /// Assembles the buffers from a manifest's slices, checking each slice's header and checksum.
    static func readManifest(path: String, header: Data, layout: ParameterLayout) throws -> (
        TrainingState, FlatBuffer, FlatBuffer, FlatBuffer
    ) {
        let manifest = try decoder.decode(CheckpointManifest.self, from: header)
        try check(manifest.state, layout: layout, path: path)
        let dir = (path as NSString).deletingLastPathComponent
        let bufs = (0..<3).map { _ in FlatBuffer(count: layout.count) }
        var covered = 0
        for s in manifest.slices.sorted(by: { ($0.lower, $0.upper) < ($1.lower, $1.upper) }) {
            let file = dir + "/" + s.file
            let (_, h, payload) = try readContainer(path: file, magic: sliceMagic, what: "checkpoint slice")
            let sh = try decoder.decode(SliceHeader.self, from: h)
            let n = s.upper - s.lower
            guard s.lower == covered, sh.lower == s.lower, sh.upper == s.upper, sh.parameters == layout.count,
                s.upper <= layout.count, n >= 0, payload.count == 12 * n
            else {
                throw SwiftRainError(
                    file, "checkpoint slice does not match its manifest",
                    expected: "parameters \(s.lower)..<\(s.upper) of \(layout.count), \(12 * n) bytes",
                    found: "\(sh.lower)..<\(sh.upper) of \(sh.parameters), \(payload.count) bytes",
                    hint: "the slice is damaged or from another checkpoint; use checkpoints/best.ckpt")
            }
            let sum = payload.withUnsafeBytes { raw in
                Checksum.of(
                    parts: (0..<3).map { UnsafeRawBufferPointer(rebasing: raw[(4 * n * $0)..<(4 * n * ($0 + 1))]) })
            }
            guard sum == s.checksum else {
                throw SwiftRainError(
                    file, "checkpoint slice checksum mismatch",
                    hint: "the file is damaged; use checkpoints/best.ckpt or an earlier copy")
            }
            payload.withUnsafeBytes { raw in
                for (i, b) in bufs.enumerated() {
                    UnsafeMutableRawPointer(b.pointer + s.lower).copyMemory(
                        from: raw.baseAddress! + 4 * n * i, byteCount: 4 * n)
                }
            }
            covered += n
        }
        guard covered == layout.count else {
            throw SwiftRainError(
                path, "checkpoint slices do not cover the model", expected: "\(layout.count) parameters",
                found: "\(covered)", hint: "the manifest is damaged; use checkpoints/best.ckpt")
        }
        return (manifest.state, bufs[0], bufs[1], bufs[2])
    }

    /// Removes slice directories that neither `keep` manifest refers to (after a commit).
    public static func removeUnreferencedSlices(checkpoints: String, keep: [String]) {
        var used = Set<String>()
        for path in keep {
            guard let (version, header, _) = try? readContainer(path: path, what: "checkpoint"), version == 2,
                let m = try? decoder.decode(CheckpointManifest.self, from: header)
            else { continue }
            for s in m.slices { used.insert((s.file as NSString).deletingLastPathComponent) }
        }
        let root = checkpoints + "/slices"
        for d in (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? [] where !used.contains("slices/\(d)")
        {
            try? FileManager.default.removeItem(atPath: root + "/" + d)
        }
    }
}
