import Foundation
import RainModel
import RainProtocol
import RainSupport

/// Checkpoints without a central copy: the workers holding the state write one slice each, the
/// coordinator commits the manifest last (DESIGN.md §6), and joiners load what was committed.
extension TrainingCoordinator {
    /// Writes the probe file workers read to show that they share the run directory.
    func writeProbe() throws {
        let path = run.checkpointsPath + "/" + TrainingWorker.probeName(runId)
        do { try probe.write(toFile: path, atomically: true, encoding: .utf8) } catch {
            throw SwiftRainError(
                path, "cannot write in the run directory: \(error.localizedDescription)",
                hint: "pass a writable --run directory")
        }
    }

    func removeProbe() {
        try? FileManager.default.removeItem(atPath: run.checkpointsPath + "/" + TrainingWorker.probeName(runId))
    }

    /// Live workers that joined after the state left the seed or the checkpoint get it: the holders
    /// write a checkpoint, the joiners load it with their next message.
    func syncJoiners() throws {
        let waiting = live.filter { !holders.contains($0) }
        guard !waiting.isEmpty else { return }
        // While checkpoints fail (a full disk) the joiners wait: the next checkpoint time tries again.
        guard checkpointFailures == 0 else { return }
        guard live.contains(where: holders.contains) else {
            throw NotEnoughWorkers(reason: "no live worker holds the model state")
        }
        log("worker(s) \(waiting) joined: writing a checkpoint for them to load")
        guard let path = try checkpointOrRetryLater() else { return }
        for r in waiting where live.contains(r) {
            loadFor[r] = path
            holders.insert(r)
        }
    }

    /// The holders write their slices; the manifest goes to last.ckpt (and best.ckpt). A holder that
    /// dies meanwhile restarts the save among the others. Returns last.ckpt's path.
    @discardableResult
    func saveCheckpoint(best: Bool = false) throws -> String {
        let start = clock.now
        while true {
            let members = holding
            guard !members.isEmpty else { throw NotEnoughWorkers(reason: "no live worker holds the model state") }
            saveCounter += 1
            let directory = "slices/\(String(runId, radix: 16).prefix(8))-g\(state.globalStep)-\(saveCounter)"
            forgetRequests()
            defer { forgetRequests() }
            for (i, r) in members.enumerated() {
                var body = Body.Save(
                    directory: directory, part: i, parts: members.count, globalStep: state.globalStep,
                    commit: committedRound, load: loadFor[r])
                lastSeen[r] = clock.now
                let seq = nextRequest()
                body.seq = seq
                try sendRequest(
                    r, seq: seq, what: "checkpoint slice \(i) at global step \(state.globalStep)",
                    frames(.save, step: UInt64(state.globalStep), body: Body.encode(body)))
                loadFor[r] = nil
            }
            var saved: [Int: Body.Saved] = [:]
            var lost: String? = nil
            while lost == nil && saved.count < members.count {
                switch try pump(timeoutMs: 200) {
                case .saved(let r, let m)?:
                    guard let s = try? m.decodeBody(Body.Saved.self), let i = members.firstIndex(of: r), s.part == i,
                        m.header.step == UInt64(state.globalStep)
                    else { continue }
                    saved[i] = s
                case .abort(let r, let m)?:
                    remove(r)
                    deaths.append((r, "aborted"))
                    lost =
                        "worker \(r) failed to write its slice: \(String(decoding: m.body, as: UTF8.self).prefix(300))"
                case .replaced(let r)? where members.contains(r):
                    lost = "worker \(r) was replaced"
                default: break
                }
                if let r = declareSilent(members, since: start, owes: { saved[members.firstIndex(of: $0)!] == nil }) {
                    lost = "worker \(r) went silent"
                }
                if (clock.now - start) * 1000 > Double(stepTimeoutMs) {
                    throw SwiftRainError(
                        "checkpoint", "not written within \(stepTimeoutMs / 1000) s",
                        hint: "check the run directory's disk; the previous checkpoint stands")
                }
            }
            if let lost {
                log("checkpoint at step \(state.globalStep): \(lost); writing it again among \(live)")
                continue
            }
            let sums = Set(saved.values.map(\.paramsChecksum))
            guard sums.count == 1 else {
                throw SwiftRainError(
                    "workers", "the workers' parameters differ (\(sums.count) versions among \(members.count))",
                    hint: "a worker computes differently (another SwiftRain build?); resume from the last checkpoint")
            }
            // A slice that could not be written (full disk, quota, I/O error): the workers keep their state and
            // the half-written checkpoint goes, freeing what it took.
            if let failed = saved.sorted(by: { $0.key < $1.key }).first(where: { $0.value.error != nil }) {
                try? FileManager.default.removeItem(atPath: run.checkpointsPath + "/" + directory)
                throw CheckpointNotWritten(reason: "worker \(members[failed.key]): \(failed.value.error!)")
            }
            let slices = (0..<members.count).map {
                let s = saved[$0]!
                return CheckpointSlice(file: s.file, lower: s.lower, upper: s.upper, checksum: s.checksum)
            }
            do {
                try Checkpoint.commit(
                    path: run.lastCheckpoint, state: state, slices: slices, parameters: trainParamsCount)
            } catch let e as CheckpointWriteFailed {
                try? FileManager.default.removeItem(atPath: run.checkpointsPath + "/" + directory)
                throw CheckpointNotWritten(reason: "the coordinator: \(e.path): \(e.reason)")
            }
            lastGoodCheckpoint = (run.lastCheckpoint, state.globalStep)
            if best {
                do {
                    try Checkpoint.commit(
                        path: run.bestCheckpoint, state: state, slices: slices, parameters: trainParamsCount)
                } catch let e as CheckpointWriteFailed {
                    log("best.ckpt not updated at global step \(state.globalStep): \(e.reason); last.ckpt holds it")
                }
            }
            Checkpoint.removeUnreferencedSlices(
                checkpoints: run.checkpointsPath, keep: [run.lastCheckpoint, run.bestCheckpoint])
            lastCheckpointAt = clock.now
            return run.lastCheckpoint
        }
    }
}
