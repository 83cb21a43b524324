import Foundation
import RainSupport

/// The wire format (DESIGN.md §5): every message is a fixed 48-byte header frame, a small JSON body
/// frame, and optionally one payload frame of raw little-endian floats (ring pieces). The receiver
/// validates the header (magic, version, run id, kind, sizes, checksum) before it uses a byte. Every
/// message is tagged with (run, membership version, step, round): what the coordinator sends carries
/// its membership version (bumped whenever the live workers change) and, for a training step, the ring
/// round; a worker's answer and its ring pieces carry the tags of the step they answer, so an answer
/// or a piece of another round or membership is recognised as stale before its body is read.
public struct MessageHeader: Equatable {
    public static let magic: UInt32 = 0x4E52_5753  // "SWRN"
    /// 3: headers carry the membership version and the round. (2: workers own the model state.)
    public static let version: UInt16 = 3
    public static let size = 48

    public enum Kind: UInt8, CaseIterable {
        case hello = 1, welcome, ready, step, result, shutdown, abort, heartbeat, ring
        /// Write your slice of the checkpoint; its answer.
        case save, saved
    }
    public enum Phase: UInt8 { case none = 0, train, valid }

    public var kind: Kind
    public var phase: Phase
    public var runId: UInt64
    public var step: UInt64
    public var bodyBytes: UInt32
    public var payloadBytes: UInt64
    public var checksum: UInt32
    /// The coordinator's membership version the message belongs to (0: none yet, e.g. a hello).
    public var membership: UInt32
    /// The ring round a training step, its result and its pieces belong to (0: not a ring round).
    public var round: UInt32

    public init(
        kind: Kind, phase: Phase = .none, runId: UInt64, step: UInt64 = 0, bodyBytes: UInt32 = 0,
        payloadBytes: UInt64 = 0, checksum: UInt32 = 0, membership: UInt32 = 0, round: UInt32 = 0
    ) {
        self.kind = kind
        self.phase = phase
        self.runId = runId
        self.step = step
        self.bodyBytes = bodyBytes
        self.payloadBytes = payloadBytes
        self.checksum = checksum
        self.membership = membership
        self.round = round
    }

    public func encoded() -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(Self.size)
        func put<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        put(Self.magic)
        put(Self.version)
        put(kind.rawValue)
        put(phase.rawValue)
        put(runId)
        put(step)
        put(bodyBytes)
        put(payloadBytes)
        put(checksum)
        put(membership)
        put(round)
        return out
    }

    /// Why a message was refused (counted and logged by the receiver, never trusted).
    public enum Rejection: String, Error, CaseIterable {
        case malformed = "malformed header", badMagic = "not a SwiftRain message", badVersion =
            "protocol version mismatch",
            foreignRun = "wrong run id", stale = "stale membership version or round", badKind = "unknown kind",
            badSize = "size mismatch", badChecksum =
            "checksum mismatch",
            nonFinite = "NaN or Inf in a gradient", unexpected = "unexpected message",
            forgedHeartbeat = "heartbeat without its rank's token", tooManyJoins = "too many pending joins",
            wrongKey = "sent under another worker's key"
    }

    public static func decode(_ b: [UInt8]) throws -> MessageHeader {
        guard b.count == size else { throw Rejection.malformed }
        func get<T: FixedWidthInteger>(_ o: Int, _: T.Type) -> T {
            var v: T = 0
            withUnsafeMutableBytes(of: &v) { $0.copyBytes(from: b[o..<(o + MemoryLayout<T>.size)]) }
            return T(littleEndian: v)
        }
        guard get(0, UInt32.self) == magic else { throw Rejection.badMagic }
        guard get(4, UInt16.self) == version else { throw Rejection.badVersion }
        guard let kind = Kind(rawValue: b[6]), let phase = Phase(rawValue: b[7]) else { throw Rejection.badKind }
        return MessageHeader(
            kind: kind, phase: phase, runId: get(8, UInt64.self), step: get(16, UInt64.self),
            bodyBytes: get(24, UInt32.self), payloadBytes: get(28, UInt64.self), checksum: get(36, UInt32.self),
            membership: get(40, UInt32.self), round: get(44, UInt32.self))
    }
}

/// A decoded message: header, JSON body, optional float payload.
public struct Message {
    /// The largest frame of a control message (a worker's results, hello, ready): the coordinator's
    /// socket refuses larger ones. A welcome (the whole configuration) goes the other way.
    public static let maxControlBytes = 64 << 10
    public var header: MessageHeader
    public var body: [UInt8]
    public var payload: [Float]

    /// Builds the frames of a message; the checksum covers body and payload.
    public static func frames(
        _ kind: MessageHeader.Kind, phase: MessageHeader.Phase = .none, runId: UInt64, step: UInt64 = 0,
        membership: UInt32 = 0, round: UInt32 = 0, body: [UInt8] = [], payload: UnsafeBufferPointer<Float>? = nil
    ) -> [[UInt8]] {
        let p = payload.map { [UInt8](UnsafeRawBufferPointer($0)) } ?? []
        let h = MessageHeader(
            kind: kind, phase: phase, runId: runId, step: step, bodyBytes: UInt32(body.count),
            payloadBytes: UInt64(p.count), checksum: Checksum.of(body, p), membership: membership, round: round)
        return p.isEmpty ? [h.encoded(), body] : [h.encoded(), body, p]
    }

    /// Validates and decodes frames. `runId` nil accepts any run (a worker's first contact).
    public static func decode(_ frames: [[UInt8]], runId: UInt64?, maxPayloadBytes: Int) throws -> Message {
        guard frames.count == 2 || frames.count == 3 else { throw MessageHeader.Rejection.malformed }
        let h = try MessageHeader.decode(frames[0])
        if let runId, h.runId != runId { throw MessageHeader.Rejection.foreignRun }
        let payloadBytes = frames.count == 3 ? frames[2].count : 0
        guard frames[1].count == Int(h.bodyBytes), payloadBytes == Int(h.payloadBytes), payloadBytes <= maxPayloadBytes,
            payloadBytes % 4 == 0, frames[1].count <= 1 << 24
        else { throw MessageHeader.Rejection.badSize }
        let p = frames.count == 3 ? frames[2] : []
        guard Checksum.of(frames[1], p) == h.checksum else { throw MessageHeader.Rejection.badChecksum }
        let floats = p.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        return Message(header: h, body: frames[1], payload: floats)
    }

    public func decodeBody<T: Decodable>(_ type: T.Type) throws -> T {
        do { return try JSONDecoder().decode(T.self, from: Data(body)) } catch {
            throw MessageHeader.Rejection.malformed
        }
    }
}

/// JSON bodies of the control messages.
public enum Body {
    public struct Hello: Codable {
        public var version: Int
        public var host: String
        public var pid: Int32
        public var rank: Int?
        public init(version: Int, host: String, pid: Int32, rank: Int?) {
            self.version = version
            self.host = host
            self.pid = pid
            self.rank = rank
        }
    }
    public struct Welcome: Codable {
        public var rank: Int
        public var config: String
        public var parameterCount: Int
        public var blasThreads: Int
        /// The run's checkpoints directory (absolute, as the coordinator sees it) and the contents of the
        /// probe file the coordinator wrote there: a worker that reads them shares the run directory.
        public var checkpoints: String = ""
        public var probe: String = ""
        /// This rank's heartbeat token (see `Heartbeat`).
        public var token: String = ""
        public init(
            rank: Int, config: String, parameterCount: Int, blasThreads: Int, checkpoints: String = "",
            probe: String = "", token: String = ""
        ) {
            self.token = token
            self.rank = rank
            self.config = config
            self.parameterCount = parameterCount
            self.blasThreads = blasThreads
            self.checkpoints = checkpoints
            self.probe = probe
        }
    }
    public struct Ready: Codable {
        public var trainSamples: Int
        public var validSamples: Int
        /// Where this worker receives ring-allreduce chunks.
        public var ringAddress: String? = nil
        /// Train samples per lead time (samples are indexed lead by lead, times ascending): locality sharding.
        public var trainLeadCounts: [Int]? = nil
        /// The worker read the coordinator's probe file: it can write checkpoint slices the coordinator sees.
        public var sharesRunDirectory: Bool = false
        public init(
            trainSamples: Int, validSamples: Int, ringAddress: String? = nil, trainLeadCounts: [Int]? = nil,
            sharesRunDirectory: Bool = false
        ) {
            self.trainSamples = trainSamples
            self.validSamples = validSamples
            self.ringAddress = ringAddress
            self.trainLeadCounts = trainLeadCounts
            self.sharesRunDirectory = sharesRunDirectory
        }
    }
    public struct Step: Codable {
        public var epoch: Int
        public var step: Int
        /// Partition sample indices for this worker.
        public var samples: [Int]
        /// Samples in the whole global batch (the gradient's denominator).
        public var globalBatch: Int
        /// Which shard of the round this is (a dead worker's shard is re-split under new ids).
        public var shard: Int = 0
        /// The ring's addresses in order, sent when they change (nil: the last ones sent), this worker's
        /// position, and the round id (chunks of an abandoned round are recognised and dropped).
        public var ring: [String]? = nil
        /// With `ring`: each position's host group (nil: one flat ring), for hierarchical sums.
        public var hosts: [Int]? = nil
        /// With `ring` under CURVE: each position's public key (Z85), the only key its pieces may come under.
        public var ringKeys: [String]? = nil
        public var position: Int = 0
        public var round: Int = 0
        /// The update this round's gradient makes: learning rate and Adam's step number t.
        public var lr: Double = 0
        public var adamStep: Int = 0
        /// The last round whose update every member reached: apply it (if it is the one pending) before
        /// anything else; a pending update of any other round was abandoned and is dropped.
        public var commit: Int? = nil
        /// Load the model state from this checkpoint (absolute path) first: a resumed run, or a worker
        /// that joined after the start.
        public var load: String? = nil
        /// The request's number (`Request`): a copy sent again after a reset is recognised by it.
        public var seq: Int? = nil
        // One per worker per step, so the keys are short: the coordinator's bytes grow with N only.
        enum CodingKeys: String, CodingKey {
            case epoch = "e", step = "s", samples = "x", globalBatch = "b", shard = "h", ring = "ring", hosts = "hosts"
            case ringKeys = "keys"
            case position = "p", round = "r", lr = "l", adamStep = "t", commit = "c", load = "load", seq = "q"
        }
        public init(
            epoch: Int, step: Int, samples: [Int], globalBatch: Int, shard: Int = 0, ring: [String]? = nil,
            position: Int = 0, round: Int = 0
        ) {
            self.epoch = epoch
            self.step = step
            self.samples = samples
            self.globalBatch = globalBatch
            self.shard = shard
            self.ring = ring
            self.position = position
            self.round = round
        }
    }
    public struct RingChunk: Codable {
        public var round: Int
        public var stage: Int
        public var k: Int
        public var chunk: Int
        /// Which piece of the chunk (pieces are pipelined).
        public var piece: Int = 0
        public init(round: Int, stage: Int, k: Int, chunk: Int, piece: Int = 0) {
            self.round = round
            self.stage = stage
            self.k = k
            self.chunk = chunk
            self.piece = piece
        }
    }
    /// Sent every interval on a connection of its own; it also says where the worker is, so that a message
    /// lost with a reset connection is seen from state within an interval or two, not at a deadline.
    public struct Heartbeat: Codable {
        public var rank: Int
        /// The secret the welcome gave this rank: a heartbeat cannot keep another rank alive.
        public var token: String = ""
        /// The highest request number (`seq`) the worker has received.
        public var got: Int? = nil
        /// Seconds the worker has been waiting for a message with nothing to do (nil: busy).
        public var idle: Double? = nil
        /// The ring round the worker is summing in (nil: none), and the ring pieces it has received so far.
        public var ring: Int? = nil
        public var pieces: Int? = nil
        public init(rank: Int, token: String = "") {
            self.rank = rank
            self.token = token
        }
    }
    public struct Result: Codable {
        public var step: Int
        public var shard: Int = 0
        /// Ring: the allreduce failed (a neighbour vanished); the coordinator restarts the round.
        public var ringFailed: Bool = false
        /// With `ringFailed`: what went wrong, for the coordinator's log and its error if it keeps failing.
        public var ringError: String? = nil
        public var round: Int = 0
        /// Seconds the worker spent computing (assembly, forward, backward), to separate compute from waiting.
        public var computeSeconds: Double = 0
        /// The allreduced gradient held NaN or Inf (every member says the same; none applies it).
        public var nonFinite: Bool = false
        /// Checksum of the worker's parameters (at validation: the replicas must agree bit for bit).
        public var paramsChecksum: UInt32? = nil
        /// Bytes this worker sent over the ring in this round.
        public var ringBytes: Int = 0
        public var count: Int
        /// Σ over samples of the transformed-space loss.
        public var lossSum: Double
        /// Per lead time: Σ latitude-weighted squared error in physical units, and pixel-weight count.
        public var leadSquaredError: [Double]
        public var leadWeight: [Double]
        /// The number of the request this answers (a duplicate answer is recognised by it).
        public var seq: Int? = nil
        enum CodingKeys: String, CodingKey {
            case seq = "q"
            case step = "s", shard = "h", ringFailed = "f", ringError = "fe", round = "r", computeSeconds = "u"
            case nonFinite = "nf"
            case paramsChecksum = "pc", ringBytes = "y", count = "n", lossSum = "L", leadSquaredError = "E"
            case leadWeight = "W"
        }
        public init(
            step: Int = 0, shard: Int = 0, count: Int, lossSum: Double, leadSquaredError: [Double] = [],
            leadWeight: [Double] = []
        ) {
            self.step = step
            self.shard = shard
            self.count = count
            self.lossSum = lossSum
            self.leadSquaredError = leadSquaredError
            self.leadWeight = leadWeight
        }
    }
    /// Write part `part` of `parts` of the model state under `checkpoints/directory`.
    public struct Save: Codable {
        public var directory: String
        public var part: Int
        public var parts: Int
        public var globalStep: Int
        public var commit: Int?
        /// Load this checkpoint first (a resumed run saved before its first step).
        public var load: String?
        /// The request's number (see `Step.seq`).
        public var seq: Int? = nil
        enum CodingKeys: String, CodingKey {
            case directory, part, parts, globalStep, commit, load, seq = "q"
        }
        public init(directory: String, part: Int, parts: Int, globalStep: Int, commit: Int?, load: String? = nil) {
            self.directory = directory
            self.part = part
            self.parts = parts
            self.globalStep = globalStep
            self.commit = commit
            self.load = load
        }
    }
    /// A slice written: its file (relative to the checkpoints directory), range and checksum.
    public struct Saved: Codable {
        public var part: Int
        public var file: String
        public var lower: Int, upper: Int
        public var checksum: UInt32
        public var paramsChecksum: UInt32
        /// Set when the slice could not be written (a full disk, a quota, an I/O error): the worker and its
        /// state live on, and the coordinator retries at the next checkpoint time.
        public var error: String?
        /// The number of the request this answers.
        public var seq: Int? = nil
        enum CodingKeys: String, CodingKey {
            case part, file, lower, upper, checksum, paramsChecksum, error, seq = "q"
        }
        public init(part: Int, file: String, lower: Int, upper: Int, checksum: UInt32, paramsChecksum: UInt32) {
            self.part = part
            self.file = file
            self.lower = lower
            self.upper = upper
            self.checksum = checksum
            self.paramsChecksum = paramsChecksum
        }
    }
    /// The number of a request (a step, a save) or of the request an answer answers, read without knowing
    /// its kind; nil for any other body.
    public struct Numbered: Decodable {
        public var seq: Int?
        enum CodingKeys: String, CodingKey { case seq = "q" }
    }
    public static func encode<T: Encodable>(_ v: T) -> [UInt8] { [UInt8](try! JSONEncoder().encode(v)) }
}
