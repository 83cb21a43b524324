import Foundation

/// Adam exactly as `torch.optim.Adam` (no weight decay, no amsgrad):
///
///     m ← β1·m + (1−β1)·g;  v ← β2·v + (1−β2)·g²
///     p ← p − (lr / (1−β1ᵗ)) · m / (√v / √(1−β2ᵗ) + ε)     (ε added after the square root)
public struct Adam: Codable, Equatable {
    public var lr: Double, beta1: Double, beta2: Double, eps: Double
    /// Steps taken so far (t of the bias correction).
    public var step: Int = 0

    public init(lr: Double = 5e-5, beta1: Double = 0.9, beta2: Double = 0.999, eps: Double = 1e-8) {
        self.lr = lr
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps
    }

    public mutating func update(params: FlatBuffer, grads: FlatBuffer, m: FlatBuffer, v: FlatBuffer) {
        step += 1
        let b1 = Float(beta1), b2 = Float(beta2), eps = Float(self.eps)
        let stepSize = Float(lr / (1 - pow(beta1, Double(step))))
        let bc2Sqrt = Float((1 - pow(beta2, Double(step))).squareRoot())
        let p = params.pointer, g = grads.pointer, mp = m.pointer, vp = v.pointer
        Parallel.forEach(params.count, minimumPerThread: 1 << 16) { range in
            for j in range {
                let gj = g[j]
                let mj = b1 * mp[j] + (1 - b1) * gj
                let vj = b2 * vp[j] + (1 - b2) * gj * gj
                mp[j] = mj
                vp[j] = vj
                p[j] -= stepSize * mj / (vj.squareRoot() / bc2Sqrt + eps)
            }
        }
    }
}

/// `torch.optim.lr_scheduler.ReduceLROnPlateau` in mode "min" with a relative threshold:
/// a value improves if it is below best·(1 − threshold); after more than `patience` epochs without
/// improvement the learning rate is multiplied by `factor` (not below `minLR`, and only if it changes
/// by more than `eps`), then `cooldown` epochs pass before counting again.
public struct PlateauScheduler: Codable, Equatable {
    public var factor: Double, patience: Int, threshold: Double, cooldown: Int, minLR: Double, eps: Double
    public var best: Double = .infinity
    public var badEpochs = 0
    public var cooldownCounter = 0

    public init(
        factor: Double = 0.5, patience: Int = 2, threshold: Double = 1e-4, cooldown: Int = 0, minLR: Double = 0,
        eps: Double = 1e-8
    ) {
        self.factor = factor
        self.patience = patience
        self.threshold = threshold
        self.cooldown = cooldown
        self.minLR = minLR
        self.eps = eps
    }

    /// Takes one epoch's validation loss; returns the learning rate to use from now on.
    public mutating func step(_ value: Double, lr: Double) -> Double {
        if value < best * (1 - threshold) {
            best = value
            badEpochs = 0
        } else {
            badEpochs += 1
        }
        if cooldownCounter > 0 {
            cooldownCounter -= 1
            badEpochs = 0
        }
        guard badEpochs > patience else { return lr }
        cooldownCounter = cooldown
        badEpochs = 0
        let reduced = max(lr * factor, minLR)
        return lr - reduced > eps ? reduced : lr
    }
}
