import Foundation
import RainModel
import RainProtocol
import RainSupport

/// The worker's loop after `ready`: steps, validation shards and checkpoint slices until shutdown.
/// Nothing large crosses the control socket: the worker holds the model state (`Replica`), sums
/// gradients with the other workers over the ring, and writes its own checkpoint slice.
extension TrainingWorker {
    func serve(runId: UInt64, rank: Int, replica: Replica, ring: GradientRing?, checkpoints: String) throws {
        let compute = replica.runner
        var members: [String] = [], hosts: [Int]? = nil
        var tags = (membership: UInt32(0), round: UInt32(0))  // of the message being answered
        // Requests handled lately, by number, with the answer sent (kept for a copy the coordinator sends again
        // when the answer was lost with a reset connection): a request is never carried out twice.
        var handled: [(seq: Int, answer: Frames?)] = []
        var seq: Int? = nil  // of the request being answered
        func answer(_ kind: MessageHeader.Kind, phase: MessageHeader.Phase = .none, step: UInt64, _ body: [UInt8])
            throws
        {
            let frames = Message.frames(
                kind, phase: phase, runId: runId, step: step, membership: tags.membership, round: tags.round,
                body: body)
            if let seq, let i = handled.lastIndex(where: { $0.seq == seq }) { handled[i].answer = frames }
            try transport.send(frames)
        }
        update { $0.gradientRing = ring }
        while true {
            guard let frames = try receive(timeoutMs: idleTimeoutMs) else {
                throw SwiftRainError(
                    "coordinator", "silent for \(idleTimeoutMs / 1000) s",
                    hint: "the coordinator probably died; restart it with --resume, then the workers")
            }
            let m: Message
            do { m = try Message.decode(frames, runId: runId, maxPayloadBytes: 0) } catch {
                log("worker \(rank): rejected a message (\(error))")
                continue
            }
            seq = (m.header.kind == .step || m.header.kind == .save) ? try? m.decodeBody(Body.Numbered.self).seq : nil
            if let seq {
                if let done = handled.first(where: { $0.seq == seq }) {
                    // A copy of a request already handled: its answer was lost on the way (or is still on it).
                    if let frames = done.answer {
                        log("worker \(rank): request \(seq) came again (its answer was lost?); answered it again")
                        try? transport.send(frames)
                    }
                    continue
                }
                handled.append((seq, nil))
                if handled.count > Self.handledKept { handled.removeFirst() }
                update { $0.got = max($0.got, seq) }
            }
            tags = (m.header.membership, m.header.round)
            membership.set(m.header.membership)
            ring?.membership = m.header.membership
            do {
                switch m.header.kind {
                case .shutdown:
                    if !m.body.isEmpty { log("worker \(rank): \(String(decoding: m.body, as: UTF8.self))") }
                    log("worker \(rank): \(compute.mappedSummary())")
                    return
                case .save:
                    let save = try m.decodeBody(Body.Save.self)
                    replica.settle(commit: save.commit)
                    if let path = save.load { try replica.load(checkpoint: path) }
                    var saved: Body.Saved
                    do {
                        let slice = try Checkpoint.writeSlice(
                            checkpoints: checkpoints, directory: save.directory, part: save.part, of: save.parts,
                            globalStep: save.globalStep, params: compute.params, m: replica.m, v: replica.v)
                        saved = Body.Saved(
                            part: save.part, file: slice.file, lower: slice.lower, upper: slice.upper,
                            checksum: slice.checksum, paramsChecksum: replica.paramsChecksum)
                    } catch {
                        // A slice that cannot be written (full disk, quota, I/O error) ends nothing: the state is
                        // here, in memory, and the coordinator decides when to try again.
                        saved = Body.Saved(
                            part: save.part, file: "", lower: 0, upper: 0, checksum: 0,
                            paramsChecksum: replica.paramsChecksum)
                        saved.error = "\(error)"
                    }
                    saved.seq = seq
                    try answer(.saved, step: m.header.step, Body.encode(saved))
                case .step:
                    let step = try m.decodeBody(Body.Step.self)
                    replica.settle(commit: step.commit)
                    if let path = step.load { try replica.load(checkpoint: path) }
                    if let addresses = step.ring {
                        members = addresses
                        hosts = step.hosts
                        if let keys = step.ringKeys, keys.count == addresses.count {
                            ring?.admit(Dictionary(zip(addresses, keys)) { $1 })
                        }
                    }
                    if m.header.phase == .train {
                        var r = try train(
                            step, replica: replica, ring: ring, members: members, hosts: hosts, rank: rank)
                        r.seq = seq
                        try strike(.result, step: step.step)
                        try answer(.result, phase: .train, step: m.header.step, Body.encode(r))
                    } else {
                        try strike(.validation, step: step.step)
                        var r = Body.Result(
                            step: step.step, shard: step.shard, try compute.evaluate(samples: step.samples))
                        r.paramsChecksum = replica.paramsChecksum
                        r.seq = seq
                        try strike(.validResult, step: step.step)
                        try answer(.result, phase: .valid, step: m.header.step, Body.encode(r))
                    }
                default:
                    log("worker \(rank): ignored a \(m.header.kind) message")
                }
            } catch {
                try? transport.send(Message.frames(.abort, runId: runId, body: Array("\(error)".utf8)))
                throw error
            }
        }
    }

    /// Requests whose answers a worker keeps, to send again if the coordinator asks again.
    static let handledKept = 32

    /// The fault hook at `moment` (`FaultInjection`); a `reset` drops the control connection, with
    /// anything queued on it, and rebuilds it under the same routing id.
    func strike(_ moment: FaultInjection.Moment, step: Int) throws {
        guard FaultInjection.strike(moment, step: step, log: log) == .reset, let reconnect else { return }
        transport.close()
        transport = try reconnect()
    }

    /// One round: this worker's shard's gradient, summed over the ring; its update held until the
    /// coordinator commits the round.
    private func train(
        _ step: Body.Step, replica: Replica, ring: GradientRing?, members: [String], hosts: [Int]?, rank: Int
    ) throws -> Body.Result {
        let compute = replica.runner
        try strike(.compute, step: step.step)
        let t0 = Date()
        let sums = try compute.train(samples: step.samples, globalBatch: step.globalBatch)
        var r = Body.Result(step: step.step, shard: step.shard, sums)
        r.computeSeconds = Date().timeIntervalSince(t0)
        r.round = step.round
        var finite = true
        update { $0.ring = step.round }
        defer { update { $0.ring = nil } }
        if members.count > 1 {
            guard let ring, members.indices.contains(step.position) else {
                throw SwiftRainError(
                    "coordinator", "a ring step without the ring's members",
                    hint: "run the same SwiftRain version everywhere")
            }
            let before = ring.bytesSent
            defer { r.ringBytes = ring.bytesSent - before }
            do {
                if let hosts, hosts.count == members.count {
                    // This host's chain (leader first) and the leaders' ring, in the coordinator's order.
                    let mine = hosts[step.position]
                    let chain = members.indices.filter { hosts[$0] == mine }
                    let leaders = members.indices.filter { $0 == 0 || hosts[$0] != hosts[$0 - 1] }
                    finite = try ring.hierarchicalAllreduce(
                        compute.grads.buffer, chain: chain.map { members[$0] },
                        link: chain.firstIndex(of: step.position)!, leaders: leaders.map { members[$0] },
                        leaderPosition: leaders.firstIndex(of: chain[0])!, step: step.step, round: step.round,
                        timeoutMs: ringTimeoutMs)
                } else {
                    finite = try ring.allreduce(
                        compute.grads.buffer, ring: members, position: step.position, step: step.step,
                        round: step.round, timeoutMs: ringTimeoutMs)
                }
            } catch {
                log("worker \(rank): \(error)")
                r.ringFailed = true
                r.ringError = String("\(error)".prefix(300))
                return r
            }
        } else {
            finite = compute.grads.buffer.allSatisfy { $0.isFinite }
        }
        if finite { replica.hold(round: step.round, lr: step.lr, t: step.adamStep) }
        r.nonFinite = !finite
        return r
    }
}
