import RainConfig

extension CheckGradients {
    /// Tolerances relative to each tensor's largest magnitude, per precision.
    public struct Tolerances {
        public var forward, gradient, update: Double
        /// Adam updates are compared only where |reference gradient| ≥ this × its largest (nil: everywhere).
        public var resolvableGradient: Double?

        /// fp32: the fixture is float64 from float32 values; we compute in float32 (PyTorch's own float32 run
        /// deviates by ~1e-6 relative). Adam updates (parameter after − before) are ~lr = 5e-5 while the
        /// parameters are ~0.1, so float32 rounding of the parameter alone (ulp ≈ 7e-9) is ~1.5e-4 of an
        /// update: updates are compared at 2e-3.
        ///
        /// bf16-mixed: each GEMM operand is rounded to 8 significant bits, a relative error of at most
        /// u = 2⁻⁸ ≈ 3.9e-3 (the unit roundoff), so each product a·b carries at most 2u; its fp32 sum adds
        /// only K·2⁻²⁴ (< 1e-5 here). A sum of K such products with errors of random sign has a relative
        /// error near 2u/√K of Σ|a·b|, far less than 2u; the bound 2u ≈ 7.8e-3 relative to the largest value
        /// is what the forward output and loss are held to. Gradients pass through two rounded operands per product
        /// (dz and V, or dz and U) at every one of S steps back through time, and Winograd's transforms
        /// mix 4 (input) to 9 (weights) values before rounding: 4 · 2u ≈ 3.1e-2. Adam's first updates
        /// are lr·m̂/√v̂ ≈ lr·sign(g): a weight whose gradient is within the gradient tolerance of zero
        /// (relative to the tensor's largest) may move either way in any precision but exact arithmetic,
        /// so updates are compared where |g| is above that, and there they keep the gradient's relative
        /// error: 4 · 2u.
        public init(_ precision: Precision) {
            switch precision {
            case .fp32: (forward, gradient, update) = (1e-5, 1e-4, 2e-3)
            case .bf16Mixed:
                let u = 1.0 / 256
                (forward, gradient, update) = (2 * u, 8 * u, 8 * u)
                resolvableGradient = 8 * u
            }
        }
    }

    /// The fp32 tolerances (kept for callers that name them).
    public static let forwardTolerance = Tolerances(.fp32).forward
    public static let gradientTolerance = Tolerances(.fp32).gradient
    public static let updateTolerance = Tolerances(.fp32).update
}
