import Foundation

/// The wire format (DESIGN.md §5): every message is a fixed 40-byte header frame, a small JSON body
/// frame, and optionally one payload frame of raw little-endian floats (gradients, parameters). The
/// receiver validates the header (magic, version, run id, kind, sizes, checksum) before it uses a byte.
public struct MessageHeader: Equatable {
    public static let magic: UInt32 = 0x4E52_5753  // "SWRN"
    public static let version: UInt16 = 1
    public static let size = 40

    public enum Kind: UInt8, CaseIterable { case hello = 1, welcome, ready, step, result, shutdown, abort, heartbeat, ring }
    public enum Phase: UInt8 { case none = 0, train, valid }

    public var kind: Kind
    public var phase: Phase
    public var runId: UInt64
    public var step: UInt64
    public var bodyBytes: UInt32
    public var payloadBytes: UInt64
    public var checksum: UInt32

    public init(kind: Kind, phase: Phase = .none, runId: UInt64, step: UInt64 = 0, bodyBytes: UInt32 = 0, payloadBytes: UInt64 = 0, checksum: UInt32 = 0) {
        self.kind = kind; self.phase = phase; self.runId = runId; self.step = step
        self.bodyBytes = bodyBytes; self.payloadBytes = payloadBytes; self.checksum = checksum
    }

    public func encoded() -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(Self.size)
        func put<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        put(Self.magic); put(Self.version); put(kind.rawValue); put(phase.rawValue)
        put(runId); put(step); put(bodyBytes); put(payloadBytes); put(checksum)
        return out
    }

    /// Why a message was refused (counted and logged by the receiver, never trusted).
    public enum Rejection: String, Error, CaseIterable {
        case malformed = "malformed header", badMagic = "not a SwiftRain message", badVersion = "protocol version mismatch",
             foreignRun = "wrong run id", badKind = "unknown kind", badSize = "size mismatch", badChecksum = "checksum mismatch",
             nonFinite = "NaN or Inf in a gradient", unexpected = "unexpected message"
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
        return MessageHeader(kind: kind, phase: phase, runId: get(8, UInt64.self), step: get(16, UInt64.self),
                             bodyBytes: get(24, UInt32.self), payloadBytes: get(28, UInt64.self), checksum: get(36, UInt32.self))
    }
}

/// A decoded message: header, JSON body, optional float payload.
public struct Message {
    public var header: MessageHeader
    public var body: [UInt8]
    public var payload: [Float]

    /// Builds the frames of a message; the checksum covers body and payload.
    public static func frames(_ kind: MessageHeader.Kind, phase: MessageHeader.Phase = .none, runId: UInt64, step: UInt64 = 0,
                              body: [UInt8] = [], payload: UnsafeBufferPointer<Float>? = nil) -> [[UInt8]] {
        let p = payload.map { [UInt8](UnsafeRawBufferPointer($0)) } ?? []
        let h = MessageHeader(kind: kind, phase: phase, runId: runId, step: step, bodyBytes: UInt32(body.count),
                              payloadBytes: UInt64(p.count), checksum: checksum(body, p))
        return p.isEmpty ? [h.encoded(), body] : [h.encoded(), body, p]
    }

    /// Validates and decodes frames. `runId` nil accepts any run (a worker's first contact).
    public static func decode(_ frames: [[UInt8]], runId: UInt64?, maxPayloadBytes: Int) throws -> Message {
        guard frames.count == 2 || frames.count == 3 else { throw MessageHeader.Rejection.malformed }
        let h = try MessageHeader.decode(frames[0])
        if let runId, h.runId != runId { throw MessageHeader.Rejection.foreignRun }
        let payloadBytes = frames.count == 3 ? frames[2].count : 0
        guard frames[1].count == Int(h.bodyBytes), payloadBytes == Int(h.payloadBytes), payloadBytes <= maxPayloadBytes,
              payloadBytes % 4 == 0, frames[1].count <= 1 << 24 else { throw MessageHeader.Rejection.badSize }
        let p = frames.count == 3 ? frames[2] : []
        guard checksum(frames[1], p) == h.checksum else { throw MessageHeader.Rejection.badChecksum }
        let floats = p.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        return Message(header: h, body: frames[1], payload: floats)
    }

    /// Fletcher-style checksum over 64-bit words with wrapping sums (no modulo, so it runs near memory
    /// speed on 32 MB gradients); catches torn, truncated or altered frames.
    public static func checksum(_ body: [UInt8], _ payload: [UInt8]) -> UInt32 {
        body.withUnsafeBytes { b in payload.withUnsafeBytes { p in checksum(b, p) } }
    }

    /// The same checksum over raw memory (zero-copy ring chunks).
    public static func checksum(_ body: UnsafeRawBufferPointer, _ payload: UnsafeRawBufferPointer) -> UInt32 {
        var a: UInt64 = 1, b: UInt64 = 0
        for raw in [body, payload] {
            // Eight lanes at once, giving the sequential sums exactly (wrapping arithmetic is exact mod 2^64):
            // after G groups of 8 words, b gains 8G·a + Σ_l (8·t_l − l·s_l), where s_l sums lane l's words and
            // t_l sums lane l's running sums; a gains Σ_l s_l.
            let groups = raw.count / 64
            var s = SIMD8<UInt64>(repeating: 0), t = SIMD8<UInt64>(repeating: 0)
            for g in 0..<groups {
                s &+= raw.loadUnaligned(fromByteOffset: 64 * g, as: SIMD8<UInt64>.self)
                t &+= s
            }
            let lane = SIMD8<UInt64>(0, 1, 2, 3, 4, 5, 6, 7)
            b &+= 8 &* UInt64(groups) &* a &+ ((8 &* t) &- (lane &* s)).wrappedSum()
            a &+= s.wrappedSum()
            sequentialSums(raw, fromWord: groups * 8, &a, &b)
        }
        return finish(a, b)
    }

    /// Adds words `fromWord…` of `raw` one at a time, then its trailing bytes and its length.
    private static func sequentialSums(_ raw: UnsafeRawBufferPointer, fromWord: Int, _ a: inout UInt64, _ b: inout UInt64) {
        let words = raw.count / 8
        for i in fromWord..<words {
            a &+= raw.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self)
            b &+= a
        }
        for i in (words * 8)..<raw.count { a &+= UInt64(raw[i]); b &+= a }
        a &+= UInt64(raw.count)
    }

    private static func finish(_ a: UInt64, _ b: UInt64) -> UInt32 {
        let x = a ^ (b &* 0x9E37_79B9_7F4A_7C15)
        return UInt32(truncatingIfNeeded: x ^ (x >> 32))
    }

    /// The definition, one word at a time (the test oracle for the eight-lane version).
    public static func sequentialChecksum(_ body: UnsafeRawBufferPointer, _ payload: UnsafeRawBufferPointer) -> UInt32 {
        var a: UInt64 = 1, b: UInt64 = 0
        for raw in [body, payload] { sequentialSums(raw, fromWord: 0, &a, &b) }
        return finish(a, b)
    }

    public func decodeBody<T: Decodable>(_ type: T.Type) throws -> T {
        do { return try JSONDecoder().decode(T.self, from: Data(body)) } catch { throw MessageHeader.Rejection.malformed }
    }
}

/// JSON bodies of the control messages.
public enum Body {
    public struct Hello: Codable {
        public var version: Int; public var host: String; public var pid: Int32; public var rank: Int?
        public init(version: Int, host: String, pid: Int32, rank: Int?) { self.version = version; self.host = host; self.pid = pid; self.rank = rank }
    }
    public struct Welcome: Codable { public var rank: Int; public var config: String; public var parameterCount: Int; public var blasThreads: Int }
    public struct Ready: Codable {
        public var trainSamples: Int; public var validSamples: Int
        /// Where this worker receives ring-allreduce chunks.
        public var ringAddress: String? = nil
        /// Train samples per lead time (samples are indexed lead by lead, times ascending): locality sharding.
        public var trainLeadCounts: [Int]? = nil
    }
    public struct Step: Codable {
        public var epoch: Int; public var step: Int
        /// Partition sample indices for this worker.
        public var samples: [Int]
        /// Samples in the whole global batch (the gradient's denominator).
        public var globalBatch: Int
        /// Whether the payload holds new parameters (sent when they changed).
        public var hasParameters: Bool
        /// Which shard of the round this is (a dead worker's shard is re-split under new ids).
        public var shard: Int = 0
        /// Ring allreduce: the ring's addresses in order, this worker's position, and the round id
        /// (chunks of an abandoned round are recognised and dropped). Nil: star (gradient to the coordinator).
        public var ring: [String]? = nil
        public var position: Int = 0
        public var round: Int = 0
    }
    public struct RingChunk: Codable {
        public var round: Int; public var stage: Int; public var k: Int; public var chunk: Int
        /// Which piece of the chunk (pieces are pipelined).
        public var piece: Int = 0
    }
    public struct Heartbeat: Codable { public var rank: Int }
    public struct Result: Codable {
        public var step: Int
        public var shard: Int = 0
        /// Ring: the allreduce failed (a neighbour vanished); the coordinator restarts the round.
        public var ringFailed: Bool = false
        public var round: Int = 0
        /// Seconds the worker spent computing (assembly, forward, backward), to separate compute from waiting.
        public var computeSeconds: Double = 0
        public var count: Int
        /// Σ over samples of the transformed-space loss.
        public var lossSum: Double
        /// Per lead time: Σ latitude-weighted squared error in physical units, and pixel-weight count.
        public var leadSquaredError: [Double]
        public var leadWeight: [Double]
    }
    public static func encode<T: Encodable>(_ v: T) -> [UInt8] { [UInt8](try! JSONEncoder().encode(v)) }
}
