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

    /// Writes atomically: a temporary file, fsync, rename over `path`, fsync of the directory.
    public static func write(path: String, state: TrainingState, params: FlatBuffer, m: FlatBuffer, v: FlatBuffer)
        throws
    {
        var s = state
        let payload = [params, m, v].map { [UInt8](UnsafeRawBufferPointer($0.buffer)) }
        s.payloadChecksum = Checksum.of([], payload.flatMap { $0 })
        let header = [UInt8](try encoder.encode(s))
        var bytes = magic
        withUnsafeBytes(of: UInt32(1).littleEndian) { bytes.append(contentsOf: $0) }
        withUnsafeBytes(of: UInt32(header.count).littleEndian) { bytes.append(contentsOf: $0) }
        bytes += header
        for p in payload { bytes += p }
        let dir = (path as NSString).deletingLastPathComponent
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let tmp = path + ".tmp-\(getpid())"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else {
            throw SwiftRainError(
                tmp, "cannot write checkpoint: \(String(cString: strerror(errno)))",
                hint: "check the run directory is writable and the disk has space")
        }
        let ok = bytes.withUnsafeBytes { b -> Bool in
            var done = 0
            while done < b.count {
                let n = Glibc.write(fd, b.baseAddress! + done, b.count - done)
                if n <= 0 { return false }
                done += n
            }
            return fsync(fd) == 0
        }
        close(fd)
        guard ok, rename(tmp, path) == 0 else {
            unlink(tmp)
            throw SwiftRainError(
                path, "checkpoint write failed: \(String(cString: strerror(errno)))",
                hint: "check free disk space; the previous checkpoint is intact")
        }
        let dfd = open(dir, O_RDONLY)
        if dfd >= 0 {
            fsync(dfd)
            close(dfd)
        }
    }

    /// Reads a checkpoint, checking magic, version, layout against `layout` and the checksum.
    public static func read(path: String, layout: ParameterLayout) throws -> (
        TrainingState, FlatBuffer, FlatBuffer, FlatBuffer
    ) {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw SwiftRainError(
                path, "checkpoint not found", hint: "pass the run directory of an earlier `swiftrain train`")
        }
        let b = [UInt8](data)
        guard b.count >= 16, Array(b[0..<8]) == magic else {
            throw SwiftRainError(
                path, "not a SwiftRain checkpoint", expected: "a file starting with SWRNCKPT",
                hint: "pass checkpoints/last.ckpt of a run")
        }
        let version = b[8..<12].withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) }
        let hlen = Int(b[12..<16].withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) })
        guard version == 1, b.count >= 16 + hlen else {
            throw SwiftRainError(
                path, "unsupported or truncated checkpoint", expected: "format version 1",
                found: "version \(version), \(b.count) bytes", hint: "the file is damaged or from a newer SwiftRain")
        }
        let state = try decoder.decode(TrainingState.self, from: Data(b[16..<(16 + hlen)]))
        for e in state.layout { try layout.check(e.name, shape: e.shape, source: path) }
        guard state.layout.count == layout.entries.count, b.count == 16 + hlen + 12 * layout.count else {
            throw SwiftRainError(
                path, "checkpoint size does not match the model", expected: "\(16 + hlen + 12 * layout.count) bytes",
                found: "\(b.count) bytes", hint: "the file is truncated or from another model configuration")
        }
        let payload = Array(b[(16 + hlen)...])
        guard Checksum.of([], payload) == state.payloadChecksum else {
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
