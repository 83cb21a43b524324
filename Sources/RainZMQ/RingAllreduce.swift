import Foundation
import RainProtocol
import RainSupport

// glibc's mallopt (malloc.h is not part of Swift's Glibc module). Options from malloc.h.
@_silgen_name("mallopt") private func mallopt(_ option: Int32, _ value: Int32) -> Int32
private let M_TRIM_THRESHOLD: Int32 = -1, M_MMAP_THRESHOLD: Int32 = -3

/// Ring allreduce among workers (reduce-scatter, then allgather) over N chunks:
///
///     reduce-scatter, k = 0 … N−2: send chunk (p − k) mod N right, add chunk (p − k − 1) mod N from the left
///     allgather,      k = 0 … N−2: send chunk (p + 1 − k) mod N right, copy chunk (p − k) mod N from the left
///
/// Each worker sends and receives 2(N−1)/N of the buffer: the bandwidth-optimal bound. Additions happen
/// in ring order, so results are the same on every worker and from run to run.
///
/// Pipelined and zero-copy: every chunk travels as pieces of `pieceFloats`, each a message with its own
/// header and checksum. A piece is forwarded as soon as it has been added (or copied), straight from the
/// buffer without a copy, while the next piece is still on the wire; received pieces are validated and
/// reduced out of ZeroMQ's own buffer, while it is still in cache.
public final class RingAllreduce: GradientRing {
    let context: ZMQContext
    let inbox: ZMQSocket
    public let address: String
    private var outboxes: [String: ZMQSocket] = [:]
    let runId: UInt64
    let curve: CurveKeys?
    private let zap: ZAPHandler?
    let log: (String) -> Void
    /// Floats per piece (1 MiB: fits in L2 between its checksum and its reduction).
    public static let defaultPieceFloats = 1 << 18
    /// A piece's JSON body (round, stage, chunk numbers) is far smaller than this.
    static let maxBodyBytes = 4096
    /// Floats per piece; set at creation, since the inbox's frame limit follows from it.
    public let pieceFloats: Int
    /// Pieces that arrived before their phase (see `receive`), and how many may wait.
    var early: [(round: Int, stage: Int, k: Int, chunk: Int, piece: Int, frames: [ZMQFrame])] = []
    var maxEarly: Int
    /// Bytes this member has sent to its right neighbour so far (headers included).
    public internal(set) var bytesSent = 0
    /// Pieces received so far; read from the worker's heartbeat thread.
    private let received = SharedValue(0)
    public var piecesReceived: Int { received.value }
    public var membership: UInt32 = 0
    /// How the ring's pieces travel (the chain within a host stays fp32: it never leaves the host).
    public var wire: GradientWire = .fp32
    /// bf16 wire: each value's bf16 as sent, by its place in the gradient (the sends read it until settled).
    private var staging: UnsafeMutablePointer<UInt16>?
    private var stagingCount = 0
    /// Under CURVE: the members' public keys by inbox address (`admit`), read by the ZAP thread too.
    private let peerKeys = MemberKeys()
    /// Pieces dropped because they came under another key than the neighbour's they claimed to be.
    public private(set) var misattributed = 0

    /// Binds the inbox on `bind` (e.g. tcp://127.0.0.1:*); `advertiseHost` replaces a wildcard host, and
    /// `advertise` (NAT, a forwarded port) the whole address the other members are told.
    /// With CURVE the inbox serves under this worker's own key, and a ZAP handler on `context` admits
    /// only the coordinator and the ring members the coordinator named (`admit`).
    /// `floats` (the gradient's size) bounds what the inbox accepts: frames of one piece at most, and
    /// no more queued pieces than the whole gradient has.
    public init(
        context: ZMQContext, bind: String, advertiseHost: String, advertise: String? = nil, runId: UInt64,
        curve: CurveKeys?,
        floats: Int = 1 << 26, pieceFloats: Int = RingAllreduce.defaultPieceFloats,
        log: @escaping (String) -> Void = { _ in }
    ) throws {
        self.context = context
        self.runId = runId
        self.curve = curve
        self.pieceFloats = pieceFloats
        self.log = log
        Self.keepMessageBuffers()
        let members = peerKeys
        zap = try curve.map { curve in
            try ZAPHandler(
                context: context,
                admit: { key in key == curve.serverPublic ? "the coordinator" : members.contains(key) ? key : nil },
                log: log)
        }
        inbox = try ZMQSocket(context, .pull)
        try inbox.setMaxMessageSize(Int64(MessageHeader.size + Self.maxBodyBytes + 4 * pieceFloats))
        let pieces = (floats + pieceFloats - 1) / pieceFloats
        maxEarly = pieces + 16
        try inbox.setHighWaterMarks(send: 1000, receive: Int32(clamping: pieces + 16))
        if let curve { try inbox.makeCurveServer(secretKey: curve.workerSecret) }
        try inbox.bind(bind)
        address = try advertise ?? inbox.lastEndpoint().replacingOccurrences(of: "0.0.0.0", with: advertiseHost)
    }

    /// ZeroMQ allocates a buffer for every received piece; by default glibc serves each from a fresh
    /// mmap, and faulting in its zeroed pages cost about a tenth of the ring's time. Serving them from
    /// the heap (and not trimming it) reuses the same memory for every piece.
    static func keepMessageBuffers() {
        #if os(Linux)
        _ = mallopt(M_MMAP_THRESHOLD, 64 << 20)
        _ = mallopt(M_TRIM_THRESHOLD, 256 << 20)
        #endif
    }

    deinit {
        close()
        staging?.deallocate()
    }

    public func close() {
        for s in outboxes.values { s.close() }
        outboxes.removeAll()
        inbox.close()
        zap?.stop()
    }

    /// Drops the connections to the neighbours with whatever they still had queued, as a reset would;
    /// the next send reconnects.
    func dropConnections() {
        for s in outboxes.values { s.drop() }
        outboxes.removeAll()
    }

    /// Connections refused by the ring's ZAP handler.
    public var refused: Int { zap?.refused ?? 0 }

    public func admit(_ keys: [String: String]) { peerKeys.merge(keys) }

    func keyOf(address: String) -> String? { peerKeys[address] }

    func outbox(_ address: String) throws -> ZMQSocket {
        if let s = outboxes[address] { return s }
        let s = try ZMQSocket(context, .push, lingerMs: 1000)
        if let curve {
            guard let serverKey = keyOf(address: address) else {
                throw SwiftRainError(
                    "ring", "no public key for the ring member at \(address)",
                    hint: "the coordinator sends the members' keys with the ring: run one SwiftRain version everywhere")
            }
            try s.makeCurveClient(serverKey: serverKey, publicKey: curve.workerPublic, secretKey: curve.workerSecret)
        }
        try s.connect(address)
        outboxes[address] = s
        return s
    }

    /// Sums `buffer` across the ring in place; returns false if a piece held NaN or Inf (the sum then
    /// does too, on every member, and the round still completes: each member sees the same verdict).
    /// Throws a `SwiftRainError` if a neighbour is silent for `timeoutMs`, the coordinator abandons the
    /// round, or a piece is invalid; the buffer's contents are then undefined (the coordinator restarts
    /// the step, which recomputes the gradient).
    @discardableResult
    public func allreduce(
        _ buffer: UnsafeMutableBufferPointer<Float>, ring: [String], position p: Int, step: Int, round: Int,
        timeoutMs: Int
    ) throws -> Bool {
        let n = ring.count
        guard n > 1 else { return true }
        var finite = true, struck = false
        let total = buffer.count
        func chunk(_ c: Int) -> Range<Int> { (total * c / n)..<(total * (c + 1) / n) }
        func pieces(_ c: Int) -> [Range<Int>] {
            let r = chunk(c)
            return stride(from: r.lowerBound, to: r.upperBound, by: pieceFloats).map {
                $0..<min($0 + pieceFloats, r.upperBound)
            }
        }
        func mod(_ x: Int) -> Int { (x % n + n) % n }
        let half = wire == .bf16
        if half && stagingCount < total {
            staging?.deallocate()
            staging = .allocate(capacity: total)
            stagingCount = total
        }
        // Sends of each stage; stage 1 overwrites chunks stage 0 sent, so it waits for them first.
        let sent = [ZMQSendTracker(), ZMQSendTracker()]
        defer {
            _ = sent[0].waitAll(timeoutMs: 1000)
            _ = sent[1].waitAll(timeoutMs: 1000)
        }
        func send(stage: Int, k: Int, chunk c: Int, piece j: Int, _ r: Range<Int>) throws {
            // Looked up per piece: a reset connection (`dropConnections`) is rebuilt by the next send.
            let to = try outbox(ring[(p + 1) % n])
            guard half, let staging else {
                return try sendPiece(
                    to: to, UnsafeBufferPointer(rebasing: buffer[r]), step: step, round: round, stage: stage, k: k,
                    chunk: c, piece: j, tracker: sent[stage])
            }
            // The allgather's first send is of the chunk this member finished: its sum is rounded here, in
            // place too, so the member keeps the very values the others receive (the same bits everywhere).
            let s = staging + r.lowerBound
            Self.toWire(UnsafeMutableBufferPointer(rebasing: buffer[r]), into: s, final: stage == 1 && k == 0)
            try sendPiece(
                to: to, payload: UnsafeRawBufferPointer(start: s, count: 2 * r.count), step: step, round: round,
                stage: stage, k: k, chunk: c, piece: j, tracker: sent[stage])
        }

        for (j, r) in pieces(p).enumerated() { try send(stage: 0, k: 0, chunk: p, piece: j, r) }
        for stage in 0..<2 {
            if stage == 1 {
                try settle(sent[0], step: step, round: round, timeoutMs: timeoutMs, peer: "the right neighbour")
            }
            for k in 0..<(n - 1) {
                let c = stage == 0 ? mod(p - k - 1) : mod(p - k)
                // What this chunk becomes next: the following step's send, or allgather's first.
                let next: (stage: Int, k: Int)? = k + 1 < n - 1 ? (stage, k + 1) : (stage == 0 ? (1, 0) : nil)
                for (j, r) in pieces(c).enumerated() {
                    let dst = UnsafeMutableBufferPointer(rebasing: buffer[r])
                    if half {
                        try receive(
                            step: step, round: round, stage: stage, k: k, chunk: c, piece: j, count: r.count,
                            bytesPerValue: 2, from: ring[mod(p - 1)], timeoutMs: timeoutMs
                        ) { raw in
                            if !(stage == 0 ? Self.addWire(raw, into: dst) : Self.copyWire(raw, into: dst)) {
                                finite = false
                            }
                        }
                    } else {
                        try receive(
                            step: step, round: round, stage: stage, k: k, chunk: c, piece: j, count: r.count,
                            from: ring[mod(p - 1)], timeoutMs: timeoutMs
                        ) { src in
                            if !(stage == 0 ? Self.add(src, into: dst) : Self.copy(src, into: dst)) { finite = false }
                        }
                    }
                    if !struck {  // fault hook: mid-round, the neighbours still waiting on this member
                        struck = true
                        _ = FaultInjection.strike(
                            .allreduce, step: step, kinds: [.kill, .stop, .stall, .rst], log: log)
                    }
                    // Fault hook: a reset as the round's last forward leaves loses that piece, and no later
                    // piece shows the gap; the members' heartbeats do (the ring stalled), or the step deadline.
                    let lastForward = next != nil && next! == (n == 2 ? (1, 0) : (1, n - 2)) && j == pieces(c).count - 1
                    if lastForward && FaultInjection.strike(.allreduce, step: step, kinds: [.reset], log: log) != nil {
                        dropConnections()
                        continue
                    }
                    if let next { try send(stage: next.stage, k: next.k, chunk: c, piece: j, r) }
                }
            }
        }
        try settle(sent[1], step: step, round: round, timeoutMs: timeoutMs, peer: "the right neighbour")
        return finite
    }

    /// Waits until `tracker`'s sends have left, watching the inbox meanwhile: a peer that stopped
    /// reading (frozen, or its host gone) leaves sends queued, and the coordinator's abandon must
    /// still get through. Pieces of this round that arrive meanwhile are kept for `receive`.
    func settle(_ tracker: ZMQSendTracker, step: Int, round: Int, timeoutMs: Int, peer: String) throws {
        let clock = MonotonicClock(), deadline = clock.now + Double(timeoutMs) / 1000
        while !tracker.waitAll(timeoutMs: 20) {
            while early.count <= maxEarly, let frames = try inbox.receiveFrames(timeoutMs: 0) {
                if isAbandon(frames, round: round) {
                    throw SwiftRainError(
                        "ring", "round abandoned by the coordinator: a ring member died (step \(step), round \(round))",
                        hint: "the coordinator restarts the step among the survivors")
                }
                if let b = Self.piece(frames, runId: runId)?.body, b.round == round {
                    early.append((round, b.stage, b.k, b.chunk, b.piece, frames))
                }
            }
            if clock.now > deadline {
                throw SwiftRainError(
                    "ring", "\(peer) took no data for \(timeoutMs / 1000) s (step \(step))",
                    hint: "a worker died; the coordinator restarts the step among the survivors")
            }
        }
    }

    /// The header and body of a well-formed ring piece of this run (checksum left to `receive`).
    static func piece(_ frames: [ZMQFrame], runId: UInt64) -> (header: MessageHeader, body: Body.RingChunk)? {
        guard frames.count == 3, let h = try? MessageHeader.decode(Array(frames[0].bytes)), h.runId == runId,
            h.kind == .ring, frames[1].bytes.count == Int(h.bodyBytes), frames[1].bytes.count <= maxBodyBytes,
            frames[2].bytes.count == Int(h.payloadBytes),
            let b = try? JSONDecoder().decode(Body.RingChunk.self, from: Data(frames[1].bytes))
        else { return nil }
        return (h, b)
    }

    /// The coordinator's message releasing round `round` (stage −1), under the coordinator's key.
    func isAbandon(_ frames: [ZMQFrame], round: Int) -> Bool {
        guard frames.count == 2, curve == nil || frames[0].userId == curve!.serverPublic,
            let m = try? Message.decode(frames.map { Array($0.bytes) }, runId: runId, maxPayloadBytes: 0),
            let b = try? m.decodeBody(Body.RingChunk.self)
        else { return false }
        return b.round == round && b.stage == -1
    }

    /// Sends `floats` without a copy as one piece; they must stay untouched until `tracker` says sent.
    func sendPiece(
        to socket: ZMQSocket, _ floats: UnsafeBufferPointer<Float>, step: Int, round: Int, stage: Int, k: Int,
        chunk: Int, piece: Int, tracker: ZMQSendTracker
    ) throws {
        try sendPiece(
            to: socket, payload: UnsafeRawBufferPointer(floats), step: step, round: round, stage: stage, k: k,
            chunk: chunk, piece: piece, tracker: tracker)
    }

    /// Sends `payload` (a piece's values as they travel) without a copy.
    func sendPiece(
        to socket: ZMQSocket, payload: UnsafeRawBufferPointer, step: Int, round: Int, stage: Int, k: Int,
        chunk: Int, piece: Int, tracker: ZMQSendTracker
    ) throws {
        let body = Body.encode(Body.RingChunk(round: round, stage: stage, k: k, chunk: chunk, piece: piece))
        let header = MessageHeader(
            kind: .ring, phase: .train, runId: runId, step: UInt64(step), bodyBytes: UInt32(body.count),
            payloadBytes: UInt64(payload.count), checksum: body.withUnsafeBytes { Checksum.of($0, payload) },
            membership: membership, round: UInt32(truncatingIfNeeded: round))
        try socket.send([header.encoded(), body], noCopyPayload: payload, tracker: tracker)
        bytesSent += MessageHeader.size + body.count + payload.count
    }

    /// dst += src; false if the sum holds NaN or Inf. The check is an integer max over the exponent bits
    /// (all ones exactly for NaN and Inf), which vectorises, unlike a strict floating-point reduction.
    /// It looks at the sum, not at src: a member's last add makes its own chunk final, and the other
    /// members see that chunk in `copy`, so every member judges every final element (one verdict).
    static func add(_ src: UnsafeBufferPointer<Float>, into dst: UnsafeMutableBufferPointer<Float>) -> Bool {
        var exponent: UInt32 = 0
        for i in 0..<src.count {
            dst[i] += src[i]
            exponent = max(exponent, dst[i].bitPattern & 0x7F80_0000)
        }
        return exponent != 0x7F80_0000
    }

    /// bf16 wire: `values` as bfloat16 into `wire`; `final` rounds `values` in place too (a finished sum).
    static func toWire(
        _ values: UnsafeMutableBufferPointer<Float>, into wire: UnsafeMutablePointer<UInt16>, final: Bool
    ) {
        for i in 0..<values.count {
            let h = BFloat16.round(values[i])
            wire[i] = h
            if final { values[i] = BFloat16.float(h) }
        }
    }

    /// bf16 wire: dst += the piece's values (added in fp32); false if the sum holds NaN or Inf.
    static func addWire(_ raw: UnsafeRawBufferPointer, into dst: UnsafeMutableBufferPointer<Float>) -> Bool {
        var exponent: UInt32 = 0
        for i in 0..<dst.count {
            dst[i] += BFloat16.float(raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
            exponent = max(exponent, dst[i].bitPattern & 0x7F80_0000)
        }
        return exponent != 0x7F80_0000
    }

    /// bf16 wire: dst = the piece's values; false if one is NaN or Inf.
    static func copyWire(_ raw: UnsafeRawBufferPointer, into dst: UnsafeMutableBufferPointer<Float>) -> Bool {
        var exponent: UInt32 = 0
        for i in 0..<dst.count {
            dst[i] = BFloat16.float(raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
            exponent = max(exponent, dst[i].bitPattern & 0x7F80_0000)
        }
        return exponent != 0x7F80_0000
    }

    static func copy(_ src: UnsafeBufferPointer<Float>, into dst: UnsafeMutableBufferPointer<Float>) -> Bool {
        var exponent: UInt32 = 0
        for i in 0..<src.count {
            dst[i] = src[i]
            exponent = max(exponent, src[i].bitPattern & 0x7F80_0000)
        }
        return exponent != 0x7F80_0000
    }

    /// Receives the expected piece of fp32 values (see the raw `receive`) and hands them, still in ZeroMQ's
    /// buffer where it is aligned, to `use`.
    func receive(
        step: Int, round: Int, stage: Int, k: Int, chunk: Int, piece: Int, count: Int, from: String, timeoutMs: Int,
        _ use: (UnsafeBufferPointer<Float>) -> Void
    ) throws {
        try receive(
            step: step, round: round, stage: stage, k: k, chunk: chunk, piece: piece, count: count, bytesPerValue: 4,
            from: from, timeoutMs: timeoutMs
        ) { raw in
            // ZeroMQ may hand out a message at any byte offset of its receive buffer.
            if Int(bitPattern: raw.baseAddress) % MemoryLayout<Float>.alignment == 0 {
                raw.withMemoryRebound(to: Float.self) { use($0) }
            } else {
                [Float](unsafeUninitializedCapacity: count) { b, n in
                    UnsafeMutableRawBufferPointer(b).copyMemory(from: raw)
                    n = count
                }.withUnsafeBufferPointer { use($0) }
            }
        }
    }

    /// Receives the expected piece from the member at address `from`, validates it (sender's key, header,
    /// size, checksum, order) and hands its bytes (`count` values of `bytesPerValue`), still in ZeroMQ's
    /// buffer, to `use`.
    func receive(
        step: Int, round: Int, stage: Int, k: Int, chunk: Int, piece: Int, count: Int, bytesPerValue: Int,
        from: String, timeoutMs: Int, _ use: (UnsafeRawBufferPointer) -> Void
    ) throws {
        func fail(_ problem: String) -> SwiftRainError {
            SwiftRainError(
                "ring", "\(problem) (step \(step), round \(round))",
                hint: "the coordinator restarts the step among the survivors")
        }
        early.removeAll { $0.round != round }
        while true {
            // A leader can get the leaders' ring pieces while its host's chain still feeds it (and
            // the other way round): those wait here, within the inbox's queue limit, until asked for.
            let frames: [ZMQFrame]
            if let i = early.firstIndex(where: {
                $0.stage == stage && $0.k == k && $0.chunk == chunk && $0.piece == piece
            }) {
                frames = early.remove(at: i).frames
            } else if let f = try inbox.receiveFrames(timeoutMs: Int32(clamping: timeoutMs)) {
                frames = f
            } else {
                throw fail("no chunk from the left neighbour within \(timeoutMs / 1000) s: a worker died")
            }
            // Pieces of an abandoned round, or anything malformed, are dropped.
            guard let (h, b) = Self.piece(frames, runId: runId), b.round == round else {
                if isAbandon(frames, round: round) {
                    throw fail("round abandoned by the coordinator: a ring member died")
                }
                continue
            }
            // Tagged with another membership version or round in its header: stale, like a wrong body round.
            guard h.membership == membership, h.round == UInt32(truncatingIfNeeded: round) else { continue }
            // Under CURVE a piece of the phase under way counts only under the key of the neighbour it is
            // expected from (the ring's both stages: the left one; a chain: the next or previous link), so a
            // member holding another worker's key can neither feed this one pieces nor break the round in its
            // neighbour's name. Another phase's piece is checked when its phase takes it from `early`.
            func phase(_ s: Int) -> Int { s < Self.chainReduce ? 0 : s }
            if curve != nil && phase(b.stage) == phase(stage) && frames[0].userId != keyOf(address: from) {
                misattributed += 1
                log("ring: dropped a piece (stage \(b.stage), chunk \(b.chunk)) sent under another key than \(from)'s")
                continue
            }
            guard b.stage == stage, b.k == k, b.chunk == chunk, b.piece == piece else {
                // Another phase's piece (ring vs chain) is kept; within a phase, order is the protocol.
                if (b.stage >= Self.chainReduce) != (stage >= Self.chainReduce) && early.count <= maxEarly {
                    early.append((round, b.stage, b.k, b.chunk, b.piece, frames))
                    continue
                }
                throw fail("out-of-order piece")
            }
            guard Checksum.of(frames[1].bytes, frames[2].bytes) == h.checksum else {
                throw fail("a piece failed its checksum")
            }
            guard frames[2].bytes.count == bytesPerValue * count else {
                throw fail("a piece of the wrong size (is every worker on the same grad_wire?)")
            }
            // The frames own ZeroMQ's buffers: keep them alive while their bytes are read.
            withExtendedLifetime(frames) { use(frames[2].bytes) }
            received.set(received.value + 1)
            return
        }
    }
}

/// Releases ring members blocked on a dead neighbour: the coordinator's side of an abandoned round.
/// Under CURVE it connects with the coordinator's own keypair, the only key an abandon is obeyed under.
public final class ZMQRingAbandoner: RingAbandoner {
    let context: ZMQContext
    let keys: RunKeys?

    public init(context: ZMQContext, keys: RunKeys?) {
        self.context = context
        self.keys = keys
    }

    public func abandon(runId: UInt64, round: Int, step: Int, members: [(address: String, key: String)]) {
        for (a, key) in members {
            guard let s = try? ZMQSocket(context, .push, lingerMs: 1000) else { continue }
            if let k = keys {
                try? s.makeCurveClient(serverKey: key, publicKey: k.serverPublic, secretKey: k.serverSecret)
            }
            try? s.connect(a)
            try? s.send(
                Message.frames(
                    .ring, phase: .train, runId: runId, step: UInt64(step), round: UInt32(truncatingIfNeeded: round),
                    body: Body.encode(Body.RingChunk(round: round, stage: -1, k: 0, chunk: 0))))
            s.close()
        }
    }
}

/// The ring members' public keys by inbox address, shared with the ZAP handler's thread.
final class MemberKeys: @unchecked Sendable {
    private let lock = NSLock()
    private var byAddress: [String: String] = [:]
    private var keys: Set<String> = []

    func merge(_ more: [String: String]) {
        lock.lock()
        byAddress.merge(more) { $1 }
        keys.formUnion(more.values)
        lock.unlock()
    }
    subscript(address: String) -> String? {
        lock.lock()
        defer { lock.unlock() }
        return byAddress[address]
    }
    func contains(_ key: String) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        return keys.contains(key)
    }
}
