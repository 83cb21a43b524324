import Foundation
import RainProtocol
import RainSupport

/// Messages lost with a reset connection: a stateful firewall or NAT that drops what it held and then lets
/// new connections through. ZeroMQ reconnects within milliseconds but never sends again what was lost, so
/// the protocol does, from state rather than at a deadline:
///
/// - every request (a training step, a validation shard, a checkpoint slice) carries a number; the worker
///   carries out each number once, keeps its answers, and answers a copy with the answer it kept;
/// - its heartbeats, on a connection of their own, say whether it waits with nothing to do;
/// - a request still unanswered while its worker has waited idle sends itself again: the worker carries
///   it out if it never came, or repeats its answer if that was lost; a repeated answer is dropped here;
/// - a ring round whose unfinished members all wait in it with no piece arriving lost a piece between two
///   workers: it is released and redone among the same members at once, not at `--step-timeout`.
extension TrainingCoordinator {
    /// A request sent and not yet answered.
    struct Outstanding {
        var rank: Int
        var frames: Frames
        /// For the log: "step 4 (train, round 9)".
        var what: String
        var sentAt: Double
        var resentAt: Double? = nil
        /// The request's header tags (membership version, round, step): its answer carries the same.
        var tags: [UInt64]
    }

    /// What `rank`'s last heartbeats said of its ring: the round it sums in, the pieces it has received,
    /// since when these have not changed, and when a heartbeat last said so.
    struct RingWatch {
        var round: Int?
        var pieces: Int?
        var since: Double
        var heardAt: Double
    }

    /// Seconds a request stays unanswered, and its worker idle, before it is sent again: about two heartbeat
    /// intervals, so that a request or an answer still on its way is not taken for lost.
    static let resendAfter = 2.0
    static let idleBeforeResend = 1.0
    /// Seconds with every unfinished ring member waiting in the round and no piece arriving: one was lost.
    static let ringStallAfter = 2.0

    /// The number of the request an answer answers (nil: none, an older worker's or a scripted one's).
    func requestNumber(_ m: Message) -> Int? { try? m.decodeBody(Body.Numbered.self).seq }

    func nextRequest() -> Int {
        requestCounter += 1
        return requestCounter
    }

    /// Sends request `seq` to `rank` and keeps it until it is answered or the round gives it up.
    func sendRequest(_ rank: Int, seq: Int, what: String, _ frames: Frames) throws {
        let h = try MessageHeader.decode(frames[0])
        outstanding[seq] = Outstanding(
            rank: rank, frames: frames, what: what, sentAt: clock.now,
            tags: [UInt64(h.membership), UInt64(h.round), h.step])
        try send(to: peers[rank], frames)
    }

    /// The requests of a round, a validation pass or a checkpoint that is over: late answers to them are
    /// judged by their tags, as before.
    func forgetRequests() { outstanding.removeAll() }

    /// An answer from `rank` to request `seq` (header `h`); false for one already received (the worker
    /// repeated it while the first was still on its way), which the caller drops. Only an answer with its
    /// request's tags settles the request: one tagged otherwise (stale, or forged) goes to the caller to refuse.
    func accept(answer seq: Int?, header h: MessageHeader, from rank: Int) -> Bool {
        guard let seq else { return true }
        let tags = [UInt64(rank), UInt64(h.membership), UInt64(h.round), h.step]
        if let o = outstanding[seq] {
            guard [UInt64(o.rank)] + o.tags == tags else { return true }
            outstanding[seq] = nil
            answeredRequests[seq] = tags
            if answeredRequests.count > 4096 { answeredRequests = answeredRequests.filter { $0.key > seq - 2048 } }
            return true
        }
        guard answeredRequests[seq] == tags else { return true }
        duplicateAnswers += 1
        return false
    }

    /// What a heartbeat says of `rank`: its ring's progress is noted, and a request it seems never to have
    /// got, or whose answer seems lost, is sent again (once per `resendAfter`, logged once).
    func heard(_ hb: Body.Heartbeat, from rank: Int) {
        let now = clock.now
        if var w = ringWatch[rank], w.round == hb.ring, w.pieces == hb.pieces {
            w.heardAt = now
            ringWatch[rank] = w
        } else {
            ringWatch[rank] = RingWatch(round: hb.ring, pieces: hb.pieces, since: now, heardAt: now)
        }
        guard let idle = hb.idle, idle >= Self.idleBeforeResend else { return }
        for (seq, o) in outstanding.sorted(by: { $0.key < $1.key }) where o.rank == rank {
            guard now - (o.resentAt ?? o.sentAt) >= Self.resendAfter else { continue }
            if o.resentAt == nil {
                let lost = hb.got.map { $0 >= seq ? "its answer" : "the request" } ?? "the request or its answer"
                log(
                    """
                    worker \(rank) waits idle (\(String(format: "%.1f", idle)) s) without having answered \
                    \(o.what), sent \(String(format: "%.1f", now - o.sentAt)) s ago: \(lost) was lost (a reset \
                    connection?); sent it again
                    """)
                run.appendMetrics([
                    "kind": "resent", "rank": rank, "request": o.what, "lost": lost,
                    "seconds": ((now - o.sentAt) * 1000).rounded() / 1000,
                ])
                resentRequests += 1
            }
            outstanding[seq]?.resentAt = now
            try? send(to: peers[rank], o.frames)
        }
    }

    /// The live members of `round` that have not answered it, if every one of them has waited in the ring
    /// with no piece arriving for `ringStallAfter`, as heartbeats sent since then show; nil otherwise.
    func ringStalled(_ members: [Int], round: Int, answered: Set<Int>) -> [Int]? {
        let waiting = members.filter { live.contains($0) && !answered.contains($0) }
        guard !waiting.isEmpty else { return nil }
        for r in waiting {
            guard let w = ringWatch[r], w.round == round, w.heardAt - w.since >= Self.ringStallAfter else { return nil }
        }
        return waiting
    }
}
