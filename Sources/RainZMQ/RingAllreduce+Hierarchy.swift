import Foundation
import RainProtocol
import RainSupport

/// Hierarchical averaging for workers that share hosts: a chain within each host reduces onto the
/// host's leader, the leaders run the ring among themselves, and a chain within each host hands the
/// sum back out. Only leaders cross the network (2(H−1)/H of the gradient each, H hosts), and every
/// worker ends with the leader's bits.
///
///     host A:  a2 → a1 → a0 (leader) ─┐                       ┌→ a0 → a1 → a2
///     host B:       b1 → b0 (leader) ─┴─ ring among leaders ──┴→ b0 → b1
///
/// Both chains are pipelined piece by piece, in a fixed order, so the sums are the same in every run.
extension RingAllreduce {
    /// Stage numbers of the chain pieces (the ring uses 0 and 1; −1 abandons a round).
    static let chainReduce = 10, chainBroadcast = 11

    /// Sums `buffer` over every worker: `chain` is this host's members in order (leader first),
    /// `link` this worker's place in it, `leaders` the leaders' ring (used by the leader only) and
    /// `leaderPosition` the leader's place there. Returns false if the sum is not finite (every
    /// member says the same). Throws as `allreduce` does.
    public func hierarchicalAllreduce(
        _ buffer: UnsafeMutableBufferPointer<Float>, chain: [String], link: Int, leaders: [String],
        leaderPosition: Int, step: Int, round: Int, timeoutMs: Int
    ) throws -> Bool {
        var finite = true
        let total = buffer.count
        let pieces = stride(from: 0, to: total, by: pieceFloats).map { $0..<min($0 + pieceFloats, total) }
        let sent = [ZMQSendTracker(), ZMQSendTracker()]
        func settle(_ t: ZMQSendTracker) throws {
            try self.settle(t, step: step, round: round, timeoutMs: timeoutMs, peer: "a neighbour on this host")
        }
        defer { for t in sent { _ = t.waitAll(timeoutMs: 1000) } }
        // 1. Reduce along the chain, from its end to the leader.
        let toward = link > 0 ? try outbox(chain[link - 1]) : nil
        for (j, r) in pieces.enumerated() {
            if link + 1 < chain.count {
                try receive(
                    step: step, round: round, stage: Self.chainReduce, k: 0, chunk: 0, piece: j, count: r.count,
                    from: chain[link + 1], timeoutMs: timeoutMs
                ) { src in _ = Self.add(src, into: UnsafeMutableBufferPointer(rebasing: buffer[r])) }
            }
            if let toward {
                try sendPiece(
                    to: toward, UnsafeBufferPointer(rebasing: buffer[r]), step: step, round: round,
                    stage: Self.chainReduce, k: 0, chunk: 0, piece: j, tracker: sent[0])
            }
        }
        // 2. The leaders' ring (the verdict on finiteness is the leader's, passed down the chain).
        if link == 0 {
            finite = try allreduce(
                buffer, ring: leaders, position: leaderPosition, step: step, round: round, timeoutMs: timeoutMs)
        }
        // 3. Broadcast along the chain. A member's reduce sends read the same floats the broadcast now
        // overwrites: they must have left first.
        try settle(sent[0])
        let onward = link + 1 < chain.count ? try outbox(chain[link + 1]) : nil
        for (j, r) in pieces.enumerated() {
            if link > 0 {
                try receive(
                    step: step, round: round, stage: Self.chainBroadcast, k: 0, chunk: 0, piece: j, count: r.count,
                    from: chain[link - 1], timeoutMs: timeoutMs
                ) { src in
                    if !Self.copy(src, into: UnsafeMutableBufferPointer(rebasing: buffer[r])) { finite = false }
                }
            }
            if let onward {
                try sendPiece(
                    to: onward, UnsafeBufferPointer(rebasing: buffer[r]), step: step, round: round,
                    stage: Self.chainBroadcast, k: 0, chunk: 0, piece: j, tracker: sent[1])
            }
        }
        try settle(sent[1])
        // The members judged every piece they copied; a leader without a leaders' ring judges the sum.
        if link == 0 && leaders.count < 2 { finite = buffer.allSatisfy { $0.isFinite } }
        return finite
    }
}
