import Foundation

/// The linear scaling rule with gradual warm-up (Goyal et al. 2017, as users of DDP apply it): a global
/// batch `scale` times the configuration's `batch_size` takes `scale` times its learning rate, reached
/// linearly over the first `steps` steps from the configuration's own rate.
public struct LRWarmup: Codable, Equatable {
    /// Global batch over the configuration's `batch_size`.
    public var scale: Double
    public var steps: Int

    public init(scale: Double, steps: Int) {
        self.scale = scale
        self.steps = steps
    }

    /// The rate of global step `t` (0-based) when the scaled rate, after the scheduler, is `lr`.
    public func rate(_ lr: Double, step t: Int) -> Double {
        guard steps > 0, t < steps, scale != 1 else { return lr }
        let ramp = Double(t + 1) / Double(steps)
        return lr * (1 / scale + (1 - 1 / scale) * ramp)
    }
}
