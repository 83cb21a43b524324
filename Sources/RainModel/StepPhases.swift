import Dispatch

/// Where a training step's time goes, for `bench step`'s per-phase breakdown.
///
/// Off unless `enabled` (training never pays for it). Phases are timed on the calling thread around
/// whole parallel sections, so the parts add up to the step's wall time minus `other`.
public enum StepPhases {
    public enum Phase: Int, CaseIterable, Codable, Sendable {
        /// Every sgemm (the 3×3 convolution's three products, the heads).
        case gemm
        /// The convolution's data movement: Winograd's transforms, or im2col and col2im (--conv direct).
        case columns
        /// The LSTM gates, forward and backward.
        case gates
        /// Bias fills and sums, the loss, zeroing buffers.
        case reductions
        case adam

        public var name: String { ["GEMM", "transforms", "gates", "reductions", "Adam"][rawValue] }
    }

    nonisolated(unsafe) public static var enabled = false
    nonisolated(unsafe) private static var nanos = [UInt64](repeating: 0, count: Phase.allCases.count)

    /// Seconds spent in each phase since the last `reset`.
    public static var seconds: [Phase: Double] {
        Dictionary(uniqueKeysWithValues: Phase.allCases.map { ($0, Double(nanos[$0.rawValue]) / 1e9) })
    }

    public static func reset() { nanos = nanos.map { _ in 0 } }

    /// Runs `body`, adding its wall time to `phase` when enabled. Not nested: an inner phase's time
    /// would be counted twice.
    @inline(__always)
    public static func time<T>(_ phase: Phase, _ body: () throws -> T) rethrows -> T {
        guard enabled else { return try body() }
        let t0 = DispatchTime.now().uptimeNanoseconds
        defer { nanos[phase.rawValue] &+= DispatchTime.now().uptimeNanoseconds &- t0 }
        return try body()
    }
}
