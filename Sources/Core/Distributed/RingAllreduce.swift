/// Ring allreduce among workers (reduce-scatter, then allgather), chunked into N pieces:
///
///     reduce-scatter, k = 0 … N−2: send chunk (p − k) mod N right, add chunk (p − k − 1) mod N from the left
///     allgather,      k = 0 … N−2: send chunk (p + 1 − k) mod N right, copy chunk (p − k) mod N from the left
///
/// Each worker sends and receives 2(N−1)/N of the buffer: the bandwidth-optimal bound. Additions happen
/// in ring order, so results are the same on every worker and from run to run.
public final class RingAllreduce {
    let context: ZMQContext
    let inbox: ZMQSocket
    public let address: String
    private var outboxes: [String: ZMQSocket] = [:]
    let runId: UInt64
    let curve: CurveKeys?

    /// Binds the inbox on `bind` (e.g. tcp://127.0.0.1:*); `advertiseHost` replaces a wildcard host.
    public init(context: ZMQContext, bind: String, advertiseHost: String, runId: UInt64, curve: CurveKeys?) throws {
        self.context = context; self.runId = runId; self.curve = curve
        inbox = try ZMQSocket(context, .pull)
        try inbox.setMaxMessageSize(1 << 30)
        if let curve { try inbox.makeCurveServer(secretKey: curve.workerSecret) }
        try inbox.bind(bind)
        address = try inbox.lastEndpoint().replacingOccurrences(of: "0.0.0.0", with: advertiseHost)
    }

    deinit { close() }
    public func close() {
        for s in outboxes.values { s.close() }
        outboxes.removeAll()
        inbox.close()
    }

    private func outbox(_ address: String) throws -> ZMQSocket {
        if let s = outboxes[address] { return s }
        let s = try ZMQSocket(context, .push, lingerMs: 1000)
        if let curve { try s.makeCurveClient(serverKey: curve.workerPublic, publicKey: curve.workerPublic, secretKey: curve.workerSecret) }
        try s.connect(address)
        outboxes[address] = s
        return s
    }

    /// Sums `buffer` across the ring in place. Throws a timeout `SwiftRainError` if a neighbour is silent.
    public func allreduce(_ buffer: UnsafeMutableBufferPointer<Float>, ring: [String], position p: Int, step: Int, round: Int, timeoutMs: Int) throws {
        let n = ring.count
        guard n > 1 else { return }
        let right = try outbox(ring[(p + 1) % n])
        let total = buffer.count
        func range(_ c: Int) -> Range<Int> { (total * c / n)..<(total * (c + 1) / n) }
        for stage in 0..<2 {
            for k in 0..<(n - 1) {
                let send = stage == 0 ? ((p - k) % n + n) % n : ((p + 1 - k) % n + n) % n
                let recv = stage == 0 ? ((p - k - 1) % n + n) % n : ((p - k) % n + n) % n
                let r = range(send)
                let body = Body.encode(Body.RingChunk(round: round, stage: stage, k: k, chunk: send))
                try right.send(Message.frames(.ring, phase: .train, runId: runId, step: UInt64(step), body: body,
                                              payload: UnsafeBufferPointer(rebasing: buffer[r])))
                let m = try receiveChunk(step: step, round: round, stage: stage, k: k, chunk: recv, count: range(recv).count, timeoutMs: timeoutMs)
                let dst = range(recv).lowerBound
                m.payload.withUnsafeBufferPointer { src in
                    if stage == 0 { for i in 0..<src.count { buffer[dst + i] += src[i] } }
                    else { for i in 0..<src.count { buffer[dst + i] = src[i] } }
                }
            }
        }
    }

    private func receiveChunk(step: Int, round: Int, stage: Int, k: Int, chunk: Int, count: Int, timeoutMs: Int) throws -> Message {
        while true {
            guard let frames = try inbox.receive(timeoutMs: Int32(clamping: timeoutMs)) else {
                throw SwiftRainError("ring", "no chunk from the left neighbour within \(timeoutMs / 1000) s (step \(step))",
                                     hint: "a worker died; the coordinator restarts the step among the survivors")
            }
            // Chunks of an abandoned round, or anything malformed, are dropped.
            guard let m = try? Message.decode(frames, runId: runId, maxPayloadBytes: 4 * count), m.header.kind == .ring,
                  let b = try? m.decodeBody(Body.RingChunk.self), b.round == round else { continue }
            if b.stage == -1 { throw SwiftRainError("ring", "round \(round) abandoned by the coordinator", hint: "a ring member died; the step is restarted") }
            guard b.stage == stage, b.k == k, b.chunk == chunk, m.payload.count == count, m.payload.allSatisfy({ $0.isFinite }) else {
                throw SwiftRainError("ring", "out-of-order or invalid chunk (step \(step))", hint: "a protocol error; the step is restarted")
            }
            return m
        }
    }
}
