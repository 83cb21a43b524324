import Foundation
import RainConfig
import RainModel
import RainProtocol
import RainSupport

#if canImport(Glibc)
import Glibc
#endif

/// Everything needed to continue a run exactly (DESIGN.md §6). The sample order is a pure function of
/// (seed, epoch), so the position (epoch, step) is the whole RNG state.
public struct TrainingState: Codable, Equatable {
    public var layout: [ParameterEntry]
    public var configHash: String
    /// Next step to run: `step` of `epoch` (step 0 of the next epoch after validation).
    public var epoch: Int
    public var step: Int
    public var globalStep: Int
    public var adam: Adam
    public var scheduler: PlateauScheduler
    public var bestValLoss: Double?
    public var payloadChecksum: UInt32 = 0
    /// The global batch the run was started with, and its learning-rate warm-up (nil: `batch_size`,
    /// none). Kept so a resumed run, whatever its N, continues the same schedule.
    public var globalBatch: Int?
    public var warmup: LRWarmup?

    public init(
        layout: [ParameterEntry], configHash: String, epoch: Int, step: Int, globalStep: Int, adam: Adam,
        scheduler: PlateauScheduler, bestValLoss: Double? = nil
    ) {
        self.layout = layout
        self.configHash = configHash
        self.epoch = epoch
        self.step = step
        self.globalStep = globalStep
        self.adam = adam
        self.scheduler = scheduler
        self.bestValLoss = bestValLoss
    }
}

extension TrainingState {
    /// A run's start: step 0 of epoch 0, Adam and the plateau scheduler as `config` sets them.
    public static func start(layout: ParameterLayout, config: Config) -> TrainingState {
        TrainingState(
            layout: layout.entries, configHash: config.hash, epoch: 0, step: 0, globalStep: 0,
            adam: Adam(lr: config.lr, beta1: config.beta1, beta2: config.beta2, eps: config.eps),
            scheduler: PlateauScheduler(
                factor: config.lrFactor, patience: config.lrPatience, threshold: config.lrThreshold))
    }
}

/// `SWRNCKPT` | UInt32 format version | UInt32 header length | header JSON | parameters | Adam m | Adam v.
public enum Checkpoint {
    static let magic = Array("SWRNCKPT".utf8)
    // The scheduler's best value starts at +∞, which plain JSON cannot hold.
    static var encoder: JSONEncoder {
        let e = JSONEncoder()
        e.nonConformingFloatEncodingStrategy = .convertToString(
            positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return e
    }
    static var decoder: JSONDecoder {
        let d = JSONDecoder()
        d.nonConformingFloatDecodingStrategy = .convertFromString(
            positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return d
    }

    /// Writes a whole checkpoint in one file (format 1): what tools and tests write; a training run
    /// writes a manifest and its workers' slices instead (`Checkpoint+Slices.swift`).
    public static func write(path: String, state: TrainingState, params: FlatBuffer, m: FlatBuffer, v: FlatBuffer)
        throws
    {
        var s = state
        let parts = [params, m, v].map { UnsafeRawBufferPointer($0.buffer) }
        s.payloadChecksum = Checksum.of([], parts.flatMap { [UInt8]($0) })  // over the concatenation
        try writeAtomically(path: path, parts: [container(version: 1, header: try encoder.encode(s))] + parts)
    }

    /// `magic` | UInt32 version | UInt32 header length | header.
    static func container(magic: [UInt8] = magic, version: UInt32, header: Data) -> UnsafeRawBufferPointer {
        var bytes = magic
        withUnsafeBytes(of: version.littleEndian) { bytes.append(contentsOf: $0) }
        withUnsafeBytes(of: UInt32(header.count).littleEndian) { bytes.append(contentsOf: $0) }
        bytes += header
        let raw = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count, alignment: 8)
        raw.copyBytes(from: bytes)
        return UnsafeRawBufferPointer(raw)  // freed by writeAtomically
    }

    /// Writes `parts` (the first freed afterwards) to a temporary file, fsync, rename over `path`, fsync
    /// of the directory: a reader sees the old file or the new one, never a torn one.
    static func writeAtomically(path: String, parts: [UnsafeRawBufferPointer]) throws {
        defer { parts[0].deallocate() }
        let dir = (path as NSString).deletingLastPathComponent
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let tmp = path + ".tmp-\(getpid())"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw CheckpointWriteFailed(path: tmp, errno: errno) }
        var failure: Int32 = 0  // errno of the first failing call
        for b in parts where failure == 0 && b.count > 0 {
            var done = 0
            while done < b.count {
                let n = Glibc.write(fd, b.baseAddress! + done, b.count - done)
                if n <= 0 {
                    failure = n < 0 ? errno : ENOSPC  // a write of 0 bytes: no room left
                    break
                }
                done += n
            }
        }
        if failure == 0 && fsync(fd) != 0 { failure = errno }
        close(fd)
        if failure == 0 && rename(tmp, path) != 0 { failure = errno }
        guard failure == 0 else {
            unlink(tmp)
            throw CheckpointWriteFailed(path: path, errno: failure)
        }
        let dfd = open(dir, O_RDONLY)
        if dfd >= 0 {
            fsync(dfd)
            close(dfd)
        }
    }

    /// The version, header and what follows of a file written by `container`.
    static func readContainer(path: String, magic: [UInt8] = magic, what: String) throws -> (
        version: UInt32, header: Data, payload: Data
    ) {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw SwiftRainError(
                path, "\(what) not found", hint: "pass the run directory of an earlier `swiftrain train`")
        }
        guard data.count >= 16, Array(data.prefix(8)) == magic else {
            throw SwiftRainError(
                path, "not a SwiftRain \(what)",
                expected: "a file starting with \(String(decoding: magic, as: UTF8.self))",
                hint: "pass checkpoints/last.ckpt of a run")
        }
        let word = { (o: Int) in
            data.withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: o, as: UInt32.self)) }
        }
        let version = word(8), hlen = Int(word(12))
        guard data.count >= 16 + hlen else {
            throw SwiftRainError(
                path, "truncated \(what)", found: "\(data.count) bytes",
                hint: "the file is damaged; use an earlier copy")
        }
        return (version, data.subdata(in: 16..<(16 + hlen)), data.subdata(in: (16 + hlen)..<data.count))
    }

    /// Reads a checkpoint (one file, or a manifest and its slices), checking magic, version, layout
    /// against `layout` and the checksums.
    public static func read(path: String, layout: ParameterLayout) throws -> (
        TrainingState, FlatBuffer, FlatBuffer, FlatBuffer
    ) {
        let (version, header, payload) = try readContainer(path: path, what: "checkpoint")
        if version == 2 { return try readManifest(path: path, header: header, layout: layout) }
        guard version == 1 else {
            throw SwiftRainError(
                path, "unsupported checkpoint", expected: "format version 1 or 2", found: "version \(version)",
                hint: "the file is damaged or from a newer SwiftRain")
        }
        let state = try decoder.decode(TrainingState.self, from: header)
        try check(state, layout: layout, path: path)
        guard payload.count == 12 * layout.count else {
            throw SwiftRainError(
                path, "checkpoint size does not match the model",
                expected: "\(12 * layout.count) bytes after the header", found: "\(payload.count)",
                hint: "the file is truncated or from another model configuration")
        }
        guard Checksum.of([], [UInt8](payload)) == state.payloadChecksum else {
            throw SwiftRainError(
                path, "checkpoint checksum mismatch",
                hint: "the file is damaged; use checkpoints/best.ckpt or an earlier copy")
        }
        let bufs = (0..<3).map { i -> FlatBuffer in
            let f = FlatBuffer(count: layout.count)
            payload.withUnsafeBytes { raw in
                UnsafeMutableRawPointer(f.pointer).copyMemory(
                    from: raw.baseAddress! + i * 4 * layout.count, byteCount: 4 * layout.count)
            }
            return f
        }
        return (state, bufs[0], bufs[1], bufs[2])
    }

    static func check(_ state: TrainingState, layout: ParameterLayout, path: String) throws {
        for e in state.layout { try layout.check(e.name, shape: e.shape, source: path) }
        guard state.layout.count == layout.entries.count else {
            throw SwiftRainError(
                path, "checkpoint does not match the model", expected: "\(layout.entries.count) tensors",
                found: "\(state.layout.count)", hint: "the checkpoint is from another model configuration")
        }
    }
}

/// What `swiftrain checkpoint` reports about a checkpoint it loaded and verified.
public struct CheckpointSummary: Encodable {
    public var path: String
    public var epoch: Int, step: Int, globalStep: Int
    public var lr: Double
    public var bestValLoss: Double?
    public var parameters: Int
    public var configHash: String
    public var finished: Bool

    /// Loads `path` (a run directory or a .ckpt file inside one) against the run's config.yaml,
    /// verifying layout and checksum as `--resume` would.
    public static func load(_ path: String, best: Bool = false) throws -> CheckpointSummary {
        var isDir: ObjCBool = false
        let exists = FileManager.default.fileExists(atPath: path, isDirectory: &isDir)
        guard exists else {
            throw SwiftRainError(
                path, "no such run directory or checkpoint",
                hint: "pass a run directory (runs/NAME) or its checkpoints/last.ckpt")
        }
        let runURL =
            isDir.boolValue
            ? URL(fileURLWithPath: path)
            : URL(fileURLWithPath: path).deletingLastPathComponent().deletingLastPathComponent()
        let run = try RunDirectory(path: runURL.path)
        let file = isDir.boolValue ? (best ? run.bestCheckpoint : run.lastCheckpoint) : path
        let model = try run.trainedModel(checkpoint: file)
        let state = model.state
        return CheckpointSummary(
            path: file, epoch: state.epoch, step: state.step, globalStep: state.globalStep, lr: Double(state.adam.lr),
            bestValLoss: state.bestValLoss, parameters: model.params.count, configHash: state.configHash,
            finished: FileManager.default.fileExists(atPath: run.finishedPath))
    }
}

/// A checkpoint file that could not be written: no space (ENOSPC), over quota (EDQUOT), an I/O error (EIO), a
/// read-only file system. Nothing is lost yet: the previous checkpoint is intact and the state is in memory.
public struct CheckpointWriteFailed: UserFacingError {
    public let path: String
    public let errno: Int32
    public var reason: String { String(cString: strerror(errno)) }
    public var description: String {
        "\(path): checkpoint write failed: \(reason) (hint: free space on the run directory's file system; "
            + "the previous checkpoint is intact)"
    }
}
