import Foundation
import RainSupport

#if canImport(Glibc)
import Glibc
#endif

/// A checkpoint the workers or the coordinator could not write this time (a full disk, a quota, an I/O error).
/// Nothing is lost: the previous checkpoint is intact and the state is in the workers' memory.
struct CheckpointNotWritten: Error {
    let reason: String
}

/// A full disk does not end the run: a checkpoint that cannot be written is warned about once, with its cause and
/// the space it needs, training goes on, and the next checkpoint time tries again; only `--checkpoint-failures`
/// failures in a row (and a final attempt) stop the run, naming the last good checkpoint.
extension TrainingCoordinator {
    /// A checkpoint at a checkpoint time (every N steps, every M minutes, an epoch's end, for joiners).
    /// Returns last.ckpt's path, or nil when it could not be written and training goes on.
    @discardableResult
    func checkpointOrRetryLater(best: Bool = false) throws -> String? {
        do {
            let path = try saveCheckpoint(best: best)
            if checkpointFailures > 0 {
                log(
                    """
                    checkpoint written at global step \(state.globalStep) after \(checkpointFailures) failed \
                    attempt(s): \(path)
                    """)
                run.appendMetrics([
                    "kind": "checkpoint_recovered", "global_step": state.globalStep,
                    "failed_attempts": checkpointFailures,
                ])
            }
            checkpointFailures = 0
            return path
        } catch let e as CheckpointNotWritten {
            checkpointFailures += 1
            lastCheckpointAt = clock.now  // the next checkpoint time, not the next step, tries again
            run.appendMetrics([
                "kind": "checkpoint_failed", "global_step": state.globalStep, "error": e.reason,
                "consecutive": checkpointFailures,
            ])
            let limit = max(1, options.checkpointFailures)
            if checkpointFailures == 1 {
                let free = freeSpace.map { "; \(megabytes($0)) MB are free on the run directory's file system" } ?? ""
                log(
                    """
                    warning: checkpoint at global step \(state.globalStep) not written: \(e.reason). It needs about \
                    \(megabytes(checkpointBytes)) MB\(free). Training goes on with the state in the workers' memory \
                    and the next checkpoint time tries again; \(limit) failure(s) in a row stop the run \
                    (--checkpoint-failures). \(lastGoodText)
                    """)
            } else {
                log(
                    "checkpoint at global step \(state.globalStep) not written again "
                        + "(\(checkpointFailures) of \(limit))"
                )
            }
            guard checkpointFailures >= limit else { return nil }
            // A final attempt: space may have come back since.
            if let path = try? saveCheckpoint(best: best) {
                log("checkpoint written at global step \(state.globalStep) on the final attempt: \(path)")
                checkpointFailures = 0
                return path
            }
            shutdown()
            throw SwiftRainError(
                "checkpoint", "\(checkpointFailures) checkpoints in a row could not be written: \(e.reason)",
                found: lastGoodText,
                hint:
                    """
                    free about \(megabytes(checkpointBytes)) MB on the run directory's file system (or raise \
                    --checkpoint-failures) and resume with: swiftrain train --resume \(run.url.path)
                    """)
        }
    }

    /// A checkpoint that must be written now (a stop, --max-steps): no later time to try again.
    func finalCheckpoint() throws {
        do { try saveCheckpoint() } catch let e as CheckpointNotWritten {
            shutdown()
            throw SwiftRainError(
                "checkpoint", "the checkpoint before stopping could not be written: \(e.reason)", found: lastGoodText,
                hint:
                    """
                    free about \(megabytes(checkpointBytes)) MB on the run directory's file system and resume with: \
                    swiftrain train --resume \(run.url.path)
                    """)
        }
    }

    /// Parameters, Adam's m and v, 4 bytes each, and the previous checkpoint stays until the new one commits.
    var checkpointBytes: Int { 3 * 4 * trainParamsCount }

    var freeSpace: Int? {
        var s = statvfs()
        guard statvfs(run.checkpointsPath, &s) == 0 else { return nil }
        return Int(s.f_bavail) * Int(s.f_frsize)
    }

    var lastGoodText: String {
        lastGoodCheckpoint.map { "The last good checkpoint is \($0.path) at global step \($0.globalStep)." }
            ?? "No checkpoint of this run was written yet."
    }

    private func megabytes(_ bytes: Int) -> String { String(format: "%.1f", Double(bytes) / 1_048_576) }
}
