import Foundation
import RainConfig
import RainModel
import RainProtocol
import RainSupport

/// A worker's copy of the model state: parameters (in the runner), Adam's moments, and the update the
/// last round's allreduced gradient makes, held until the coordinator confirms that every member of
/// the round reached it.
///
/// The optimizer is replicated, as in PyTorch DDP: every worker applies Adam to all parameters with the
/// same summed gradient (the ring gives every member the same bits), so the replicas stay bit-identical
/// and any survivor holds the whole state when a worker dies. ZeRO stage 1 would move the same bytes
/// (reduce-scatter + allgather either way) and save Adam's 2·P floats and ~2 % of a step per worker,
/// but a dead worker would take its moments with it.
public final class Replica {
    public let runner: ModelRunner
    public let m: FlatBuffer, v: FlatBuffer
    let config: Config
    /// The update waiting for its commit: round id, learning rate, Adam step t.
    private(set) var pending: (round: Int, lr: Double, t: Int)?

    /// Fresh state: the seeded initial parameters (the same on every worker), zero moments.
    public init(runner: ModelRunner, config: Config) {
        self.runner = runner
        self.config = config
        m = FlatBuffer(count: runner.layout.count)
        v = FlatBuffer(count: runner.layout.count)
        FlatBuffer.initialParameters(runner.layout, seed: UInt64(config.seed)).values.withUnsafeBufferPointer {
            runner.load(parameters: $0)
        }
    }

    /// Replaces the state with a checkpoint's (any number of slices); drops a pending update.
    public func load(checkpoint path: String) throws {
        let (_, p, m2, v2) = try Checkpoint.read(path: path, layout: runner.layout)
        runner.load(parameters: UnsafeBufferPointer(p.buffer))
        _ = m.buffer.update(from: m2.buffer)
        _ = v.buffer.update(from: v2.buffer)
        pending = nil
    }

    /// The coordinator's word on the last round: apply the pending update if it is round `commit`'s,
    /// drop it otherwise (its round was abandoned and will be recomputed).
    public func settle(commit: Int?) {
        defer { pending = nil }
        guard let p = pending, p.round == commit else { return }
        var adam = Adam(lr: p.lr, beta1: config.beta1, beta2: config.beta2, eps: config.eps)
        adam.step = p.t - 1
        adam.update(params: runner.params, grads: runner.grads, m: m, v: v)
    }

    /// After a round's allreduce: `runner.grads` holds the summed gradient; keep its update pending.
    public func hold(round: Int, lr: Double, t: Int) { pending = (round, lr, t) }

    /// Checksum of the parameters (replicas are compared at validation and at checkpoints).
    public var paramsChecksum: UInt32 {
        Checksum.of(parts: [UnsafeRawBufferPointer(runner.params.buffer)])
    }
}
