import Foundation
import RainModel
import RainProtocol
import RainSupport

/// Rounds: sending shards to the live workers and collecting their results, surviving deaths.
extension TrainingCoordinator {
    /// One round: a shard per live worker, then every shard's result. A worker that aborts or stays
    /// silent past `workerTimeoutMs` while it owes a shard is declared dead and its shard is split
    /// among the survivors, so the round's sum covers the same samples. Results come back in shard order.
    func dispatch(
        _ phase: MessageHeader.Phase, shards: [[Int]], globalBatch: Int, epoch: Int, step: Int,
        params: FlatBuffer, timeoutMs: Int
    ) throws -> [(Body.Result, [Float])] {
        let payload = UnsafeBufferPointer(params.buffer)
        var assigned: [(samples: [Int], rank: Int)] = []
        var replaced = Set<Int>()
        var results: [Int: (Body.Result, [Float])] = [:]
        func send(_ id: Int) throws {
            let body = Body.Step(
                epoch: epoch, step: step, samples: assigned[id].samples, globalBatch: globalBatch, shard: id)
            try transport.send(
                to: peers[assigned[id].rank],
                Message.frames(
                    .step, phase: phase, runId: runId, step: UInt64(step), body: Body.encode(body), payload: payload))
        }
        let ranks = live
        for (i, s) in shards.enumerated() where !s.isEmpty {
            assigned.append((s, ranks[i]))
            lastSeen[ranks[i]] = clock.now
            try send(assigned.count - 1)
        }
        func declareDead(_ rank: Int, _ why: String) throws {
            live.removeAll { $0 == rank }
            deaths.append((rank, why))
            log("worker \(rank) declared dead (\(why)); \(live.count) live")
            if live.count < max(1, options.minWorkers) { throw NotEnoughWorkers(reason: "worker \(rank) \(why)") }
            for id in assigned.indices where assigned[id].rank == rank && results[id] == nil && !replaced.contains(id) {
                replaced.insert(id)
                for part in Sharding.shards(assigned[id].samples, workers: live.count).enumerated()
                where !part.element.isEmpty {
                    assigned.append((part.element, live[part.offset]))
                    lastSeen[live[part.offset]] = max(lastSeen[live[part.offset]] ?? clock.now, clock.now)
                    try send(assigned.count - 1)
                }
                log("step \(step): worker \(rank)'s \(assigned[id].samples.count) sample(s) re-assigned to \(live)")
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
                guard m.payload.allSatisfy({ $0.isFinite }) else {
                    reject(.nonFinite, from: peers[rank])
                    try declareDead(rank, "sent a non-finite gradient")
                    continue
                }
                results[r.shard] = (r, m.payload)
            case .abort(let rank, let m)?:
                try declareDead(rank, "aborted: \(String(decoding: m.body, as: UTF8.self).prefix(200))")
            case nil: break
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

    /// A ring round: every live worker gets a (possibly empty) contiguous shard and the ring; they
    /// allreduce among themselves and the first returns the sum. If a member dies or the ring breaks,
    /// the round is abandoned (survivors are told through their ring inboxes) and restarted among the
    /// survivors with the same batch.
    func dispatchRing(shards: [[Int]], globalBatch: Int, epoch: Int, step: Int, params: FlatBuffer) throws -> [(
        Body.Result, [Float]
    )] {
        let payload = UnsafeBufferPointer(params.buffer)
        let start = clock.now
        while true {
            roundCounter += 1
            let round = roundCounter, members = live
            guard members.allSatisfy({ ringAddress[$0] != nil }) else {
                throw SwiftRainError(
                    "workers", "a worker reported no ring address", hint: "run the same SwiftRain version on every host"
                )
            }
            let ring = members.map { ringAddress[$0]! }
            // The planned shards while every member is alive; after a death, the same samples re-split.
            let parts =
                shards.count == members.count ? shards : Sharding.shards(shards.flatMap { $0 }, workers: members.count)
            for (pos, part) in parts.enumerated() {
                let body = Body.Step(
                    epoch: epoch, step: step, samples: part, globalBatch: globalBatch,
                    shard: pos, ring: ring, position: pos, round: round)
                lastSeen[members[pos]] = clock.now
                try transport.send(
                    to: peers[members[pos]],
                    Message.frames(
                        .step, phase: .train, runId: runId, step: UInt64(step), body: Body.encode(body),
                        payload: payload))
            }
            var results: [Int: (Body.Result, [Float])] = [:]
            var broken: String? = nil
            while broken == nil && results.count < members.count {
                switch try pump(timeoutMs: 200) {
                case .result(let rank, let m)?:
                    guard let r = try? m.decodeBody(Body.Result.self), r.round == round, m.header.step == UInt64(step),
                        let pos = members.firstIndex(of: rank), r.shard == pos, results[pos] == nil
                    else { continue }  // a stale round's result
                    if r.ringFailed {
                        broken = "worker \(rank) lost its ring neighbour"
                    } else {
                        results[pos] = (r, m.payload)
                    }
                case .abort(let rank, let m)?:
                    live.removeAll { $0 == rank }
                    deaths.append((rank, "aborted"))
                    broken = "worker \(rank) aborted: \(String(decoding: m.body, as: UTF8.self).prefix(200))"
                case nil: break
                }
                for rank in members
                where live.contains(rank) && results[members.firstIndex(of: rank)!] == nil
                    && (clock.now - (lastSeen[rank] ?? start)) * 1000 > Double(workerTimeoutMs)
                {
                    live.removeAll { $0 == rank }
                    deaths.append((rank, "silent"))
                    log("worker \(rank) declared dead (silent for \(workerTimeoutMs / 1000) s); \(live.count) live")
                    broken = "worker \(rank) died"
                }
                if (clock.now - start) * 1000 > Double(stepTimeoutMs) {
                    throw SwiftRainError(
                        "step \(step)", "not finished within \(stepTimeoutMs / 1000) s",
                        hint: "raise --step-timeout; resume with: swiftrain train --resume \(run.url.path)")
                }
            }
            if let broken {
                log("step \(step): ring round \(round) abandoned (\(broken)); restarting among \(live)")
                ringAbandoner?.abandon(
                    runId: runId, round: round, step: step,
                    addresses: members.filter { live.contains($0) }.compactMap { ringAddress[$0] })
                if live.count < max(1, options.minWorkers) { throw NotEnoughWorkers(reason: broken) }
                continue
            }
            return (0..<members.count).map { results[$0]! }
        }
    }
}
