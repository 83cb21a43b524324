import Foundation
import RainModel
import RainProtocol
import RainSupport

/// Rounds: sending shards to the live workers and collecting their results, surviving deaths.
extension TrainingCoordinator {
    /// Broken rounds of one step, in a row and among the same members, after which the run stops.
    static let maxFruitlessRounds = 5

    /// One round: a shard per live worker, then every shard's result. A worker that aborts or stays
    /// silent past `workerTimeoutMs` while it owes a shard is declared dead and its shard is split
    /// among the survivors, so the round's sum covers the same samples. Results come back in shard order.
    func dispatch(
        _ phase: MessageHeader.Phase, shards: [[Int]], globalBatch: Int, epoch: Int, step: Int, timeoutMs: Int
    ) throws -> [Body.Result] {
        var assigned: [(samples: [Int], rank: Int)] = []
        var replaced = Set<Int>()
        var results: [Int: Body.Result] = [:]
        defer { forgetRequests() }
        func send(_ id: Int) throws {
            var body = Body.Step(
                epoch: epoch, step: step, samples: assigned[id].samples, globalBatch: globalBatch, shard: id)
            body.commit = committedRound
            body.load = loadFor.removeValue(forKey: assigned[id].rank)
            let seq = nextRequest()
            body.seq = seq
            try sendRequest(
                assigned[id].rank, seq: seq, what: "\(phase == .valid ? "validation" : "step") \(step) shard \(id)",
                frames(.step, phase: phase, step: UInt64(step), body: Body.encode(body)))
        }
        let ranks = holding
        let shards = shards.count == ranks.count ? shards : Sharding.shards(shards.flatMap { $0 }, workers: ranks.count)
        for (i, s) in shards.enumerated() where !s.isEmpty {
            assigned.append((s, ranks[i]))
            lastSeen[ranks[i]] = clock.now
            try send(assigned.count - 1)
        }
        func declareDead(_ rank: Int, _ why: String) throws {
            remove(rank)
            deaths.append((rank, why))
            log("worker \(rank) declared dead (\(why)); \(live.count) live")
            try reassign(rank, why)
        }
        /// The shards `rank` (gone from the run) still owes, re-split among the survivors.
        func reassign(_ rank: Int, _ why: String) throws {
            if live.count < max(1, options.minWorkers) { throw NotEnoughWorkers(reason: "worker \(rank) \(why)") }
            let survivors = holding
            guard !survivors.isEmpty else { throw NotEnoughWorkers(reason: "no live worker holds the model state") }
            for id in assigned.indices where assigned[id].rank == rank && results[id] == nil && !replaced.contains(id) {
                replaced.insert(id)
                for part in Sharding.shards(assigned[id].samples, workers: survivors.count).enumerated()
                where !part.element.isEmpty {
                    let r = survivors[part.offset]
                    assigned.append((part.element, r))
                    lastSeen[r] = max(lastSeen[r] ?? clock.now, clock.now)
                    try send(assigned.count - 1)
                }
                log(
                    "step \(step): worker \(rank)'s \(assigned[id].samples.count) sample(s) re-assigned to \(survivors)"
                )
            }
        }
        let start = clock.now
        while assigned.indices.contains(where: { results[$0] == nil && !replaced.contains($0) }) {
            switch try pump(timeoutMs: 200) {
            case .result(let rank, let m)?:
                guard m.header.step == UInt64(step), m.header.phase == phase,
                    let r = try? m.decodeBody(Body.Result.self),
                    assigned.indices.contains(r.shard), assigned[r.shard].rank == rank, results[r.shard] == nil,
                    !replaced.contains(r.shard)
                else {
                    reject(.unexpected, from: peers[rank])
                    continue
                }
                results[r.shard] = r
            case .abort(let rank, let m)?:
                try declareDead(rank, "aborted: \(String(decoding: m.body, as: UTF8.self).prefix(200))")
            case .replaced(let rank)?:
                try reassign(rank, "replaced")
            default: break
            }
            let owing = Set(
                assigned.indices.filter { results[$0] == nil && !replaced.contains($0) }.map { assigned[$0].rank })
            for rank in owing.sorted()
            where live.contains(rank) && (clock.now - (lastSeen[rank] ?? start)) * 1000 > Double(workerTimeoutMs) {
                try declareDead(rank, "silent for \(workerTimeoutMs / 1000) s")
            }
            if (clock.now - start) * 1000 > Double(timeoutMs) {
                throw SwiftRainError(
                    "step \(step)", "not finished within \(timeoutMs / 1000) s although workers are alive",
                    hint:
                        """
                        raise --step-timeout for large models or batches; resume with: swiftrain train --resume \
                        \(run.url.path)
                        """
                )
            }
        }
        return assigned.indices.filter { !replaced.contains($0) }.map { results[$0]! }
    }

    /// The round's members in ring order and, for sums by host, each position's host group. Workers
    /// of one host always sit together (hosts in order of their first rank), so one ring crosses each
    /// host's link once. `auto` sums by host only with two hosts sharing workers: the chains cost two
    /// intra-host copies of the gradient, which the measured costs (README, "Scaling") repay only while
    /// the leaders' ring is short; with more hosts one ring is faster.
    func ringOrder(_ ranks: [Int]) -> ([Int], [Int]?) {
        var groups: [String] = []
        for r in ranks where !groups.contains(hostOf[r] ?? "") { groups.append(hostOf[r] ?? "") }
        let byHost = ranks.sorted {
            (groups.firstIndex(of: hostOf[$0] ?? "")!, $0) < (groups.firstIndex(of: hostOf[$1] ?? "")!, $1)
        }
        let shared = groups.count < ranks.count
        switch options.hierarchy {
        case .flat: return (byHost, nil)
        case .auto where !(groups.count == 2 && shared): return (byHost, nil)
        default: return (byHost, byHost.map { groups.firstIndex(of: hostOf[$0] ?? "")! })
        }
    }

    /// Releases the live members of `round` blocked in the ring (through their inboxes).
    func abandon(round: Int, step: Int, members: [Int]) {
        ringAbandoner?.abandon(
            runId: runId, round: round, step: step,
            members: members.filter { live.contains($0) }.compactMap { r in
                ringAddress[r].map { ($0, keyOf[r] ?? "") }
            })
    }

    /// A training round: every live worker gets a (possibly empty) contiguous shard, the update's
    /// learning rate and step number, and (when they changed) the ring's addresses; they allreduce
    /// among themselves and hold the update until the next message commits the round. If a member
    /// dies or the ring breaks, the round is abandoned (survivors are told through their ring inboxes;
    /// their held updates are dropped) and restarted among the survivors with the same batch.
    func dispatchRing(shards: [[Int]], globalBatch: Int, epoch: Int, step: Int, lr: Double, adamStep: Int) throws
        -> [Body.Result]
    {
        let start = clock.now
        // Rounds of this step broken in a row with nobody leaving: a fault no retry can mend (the same
        // error on every try), so after a few the run stops with the workers' error instead of spinning.
        var fruitless = 0, lastError: String? = nil
        defer { forgetRequests() }
        while true {
            forgetRequests()  // the previous round's, if it was abandoned
            roundCounter += 1
            let round = roundCounter
            let (members, hosts) = ringOrder(holding)
            guard members.allSatisfy({ ringAddress[$0] != nil }) else {
                throw SwiftRainError(
                    "workers", "a worker reported no ring address", hint: "run the same SwiftRain version on every host"
                )
            }
            let ring = members.map { ringAddress[$0]! }
            // Under CURVE each member learns its neighbours' keys: their pieces must come under them.
            let keys = members.map { keyOf[$0] ?? "" }
            // The planned shards while every member is alive; after a death, the same samples re-split.
            let parts =
                shards.count == members.count ? shards : Sharding.shards(shards.flatMap { $0 }, workers: members.count)
            for (pos, part) in parts.enumerated() {
                let r = members[pos]
                let changed = ringSent[r] != ring || hostsSent[r] != hosts
                var body = Body.Step(
                    epoch: epoch, step: step, samples: part, globalBatch: globalBatch, shard: pos,
                    ring: changed ? ring : nil, position: pos, round: round)
                body.hosts = changed ? hosts : nil
                body.ringKeys = changed && keys.contains(where: { !$0.isEmpty }) ? keys : nil
                hostsSent[r] = hosts
                body.lr = lr
                body.adamStep = adamStep
                body.commit = committedRound
                body.load = loadFor.removeValue(forKey: r)
                ringSent[r] = ring
                lastRound[r] = round
                lastSeen[r] = clock.now
                let seq = nextRequest()
                body.seq = seq
                try sendRequest(
                    r, seq: seq, what: "step \(step) (round \(round))",
                    frames(.step, phase: .train, step: UInt64(step), round: round, body: Body.encode(body)))
            }
            var results: [Int: Body.Result] = [:]
            var broken: String? = nil
            let tags = (membership, UInt32(truncatingIfNeeded: round))  // what this round's answers carry
            // Past the step deadline the round is abandoned; members blocked in the ring answer that at
            // once, so whoever stays silent (yet heartbeating) is stuck and is evicted like a dead worker.
            let roundStart = clock.now
            var graceEnd: Double? = nil, releasedAt = 0.0
            var released = Set<Int>()
            while broken == nil && results.count < members.count {
                switch try pump(timeoutMs: 200) {
                case .result(let rank, let m)?:
                    guard (m.header.membership, m.header.round) == tags, m.header.step == UInt64(step) else {
                        reject(.stale, from: peers[rank])  // an answer to an abandoned round
                        continue
                    }
                    guard let r = try? m.decodeBody(Body.Result.self), r.round == round,
                        let pos = members.firstIndex(of: rank), r.shard == pos, results[pos] == nil
                    else { continue }
                    if graceEnd != nil {
                        released.insert(rank)
                        // Everyone answered the release: pieces were lost (a connection reset), nobody is stuck.
                        if members.allSatisfy({ released.contains($0) || !live.contains($0) }) {
                            broken = "pieces lost in the ring; every member answered the release"
                        }
                    } else if r.ringFailed {
                        broken = "worker \(rank) lost its ring neighbour"
                        if let e = r.ringError { lastError = "worker \(rank): \(e)" }
                    } else {
                        results[pos] = r
                    }
                case .abort(let rank, let m)?:
                    remove(rank)
                    deaths.append((rank, "aborted"))
                    broken = "worker \(rank) aborted: \(String(decoding: m.body, as: UTF8.self).prefix(200))"
                case .replaced(let rank)? where members.contains(rank):
                    broken = "worker \(rank) replaced by a new incarnation"
                default: break
                }
                if let rank = declareSilent(
                    members, since: start, owes: { results[members.firstIndex(of: $0)!] == nil })
                {
                    broken = "worker \(rank) died"
                }
                // A piece lost in flight between two members (a reset connection): every member still in the
                // round waits, and no piece arrives. Released and redone now, rather than at the deadline.
                if graceEnd == nil,
                    let waiting = ringStalled(members, round: round, answered: Set(results.keys.map { members[$0] }))
                {
                    stalledRounds += 1
                    log(
                        """
                        step \(step): ring round \(round) stalled: worker(s) \(waiting) wait in it and no piece has \
                        arrived for \(Int(Self.ringStallAfter)) s (one was lost, with a reset connection?); \
                        releasing it to redo it
                        """)
                    run.appendMetrics(["kind": "ring_stalled", "step": step, "round": round, "waiting": waiting])
                    graceEnd = clock.now + Double(workerTimeoutMs) / 1000
                }
                if graceEnd == nil && (clock.now - roundStart) * 1000 > Double(stepTimeoutMs) {
                    log("step \(step): round \(round) past its \(stepTimeoutMs / 1000) s deadline; releasing the ring")
                    graceEnd = clock.now + Double(workerTimeoutMs) / 1000
                }
                // Released, and released again every couple of seconds while some member has not answered:
                // the release itself can be lost on a connection that is being reset.
                if graceEnd != nil && clock.now - releasedAt >= Self.ringStallAfter {
                    for pos in results.keys { released.insert(members[pos]) }
                    abandon(round: round, step: step, members: members.filter { !released.contains($0) })
                    releasedAt = clock.now
                }
                if let end = graceEnd, clock.now > end {
                    let stuck = members.filter { live.contains($0) && !released.contains($0) }
                    guard !stuck.isEmpty else {
                        throw SwiftRainError(
                            "step \(step)", "not finished within \(stepTimeoutMs / 1000) s by any worker",
                            hint: "raise --step-timeout; resume with: swiftrain train --resume \(run.url.path)")
                    }
                    for r in stuck {
                        remove(r)
                        deaths.append((r, "stuck"))
                        log(
                            "worker \(r) evicted: missed its step deadline while still heartbeating; \(live.count) live"
                        )
                        try? send(to: peers[r], frames(.shutdown))
                    }
                    broken = "worker(s) \(stuck) stuck"
                    if live.count < max(1, options.minWorkers) { throw NotEnoughWorkers(reason: broken!) }
                    if holding.isEmpty { throw NotEnoughWorkers(reason: "no live worker holds the model state") }
                    continue
                }
            }
            if let broken {
                fruitless = Set(holding) == Set(members) ? fruitless + 1 : 0
                if fruitless >= Self.maxFruitlessRounds {
                    throw SwiftRainError(
                        "step \(step)",
                        "the ring failed \(fruitless) times in a row among the same workers (\(broken))",
                        found: lastError,
                        hint:
                            """
                            fix what the workers report (their logs say more); the last checkpoint stands: resume \
                            with swiftrain train --resume \(run.url.path)
                            """)
                }
                log("step \(step): ring round \(round) abandoned (\(broken)); restarting among \(live)")
                if graceEnd == nil { abandon(round: round, step: step, members: members) }
                if live.count < max(1, options.minWorkers) { throw NotEnoughWorkers(reason: broken) }
                if holding.isEmpty { throw NotEnoughWorkers(reason: "no live worker holds the model state") }
                continue
            }
            return (0..<members.count).map { results[$0]! }
        }
    }
}
