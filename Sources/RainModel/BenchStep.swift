import Foundation
import RainConfig
import RainSupport

/// `swiftrain bench step`: the machine's sgemm ceiling on the model's own GEMM shapes, and the
/// training step (forward + backward + Adam) measured against it, side by side in one run: once with
/// SwiftRain's fixed GEMM pieces (what training uses) and once with OpenBLAS's own threading.
public enum BenchStep {
    /// Another implementation of the same training step, timed step by step beside SwiftRain's
    /// (`bench step --pytorch`: PyTorch in its own process, idle while SwiftRain runs and vice versa).
    public protocol Peer: AnyObject {
        /// What runs, e.g. "PyTorch 2.15.0 (2 threads, oneDNN)".
        var label: String { get }
        /// Runs one training step; returns its seconds.
        func step() throws -> Double
    }
    /// Starts a peer for one row's shape, batch, thread count and precision (warmed up).
    public typealias PeerFactory = (_ shape: ModelShape, _ batch: Int, _ threads: Int, _ precision: Precision) throws
        -> Peer

    public struct Ceiling: Encodable {
        public var model: String
        public var batch: Int
        public var threads: Int
        /// The 3×3 convolution's GEMM: M = 4F, K = (C_in + F)·9, N = B·H·W.
        public var shape: String
        public var gflops: Double
    }
    public struct Row: Encodable {
        public var model: String
        public var batch: Int
        public var threads: Int
        /// The precision of SwiftRain's step and of the peer's beside it.
        public var precision: Precision
        public var secondsPerStep: Double
        public var samplesPerSecond: Double
        public var gflops: Double
        /// Achieved GFLOP/s over the sgemm ceiling for the same thread count.
        public var ratioToCeiling: Double
        /// Achieved GFLOP/s over the machine's measured peak in the row's precision (`MachinePeak`: FP32 FMAs,
        /// or bf16 dot products) for the same thread count.
        public var ratioToPeak: Double
        public var peakGFlops: Double
        /// The same step with OpenBLAS threading its own calls (thread-count-dependent results).
        public var openBLASSecondsPerStep: Double
        /// openBLASSecondsPerStep / secondsPerStep: above 1, the fixed pieces are faster.
        public var speedupOverOpenBLAS: Double
        public var workspaceBytes: Int
        /// The peer's median seconds per step on the same shape and thread count, taken in turns with
        /// SwiftRain's, and its s/step over SwiftRain's (above 1, SwiftRain is faster); nil without a peer.
        public var peerSecondsPerStep: Double?
        public var speedupOverPeer: Double?
        /// Mean seconds per step in each phase (SwiftRain's threading), keyed by `StepPhases.Phase.name`;
        /// "other" is the rest of the step (head bookkeeping, loop overhead).
        public var phaseSeconds: [String: Double]
    }
    public struct Report: Encodable {
        public var ceilings: [Ceiling]
        public var rows: [Row]
        public var peakRSSBytes: Int
        /// The machine's FP32 peak per thread count (GFLOP/s), and the instruction set measured.
        public var peakGFlops: [Int: Double]
        /// The machine's bf16 dot-product peak per thread count, where bf16 rows ran.
        public var bf16PeakGFlops: [Int: Double] = [:]
        public var peakISA: String = MachinePeak.isa
        /// The OpenBLAS kernel that ran, and why (`BLASKernel.note`).
        public var blasKernel: String = BLAS.coreName
        public var blasKernelNote: String = BLASKernel.note
        /// The instruction set the gate kernels use.
        public var gatesISA: String = Gates.isa.name
        /// The 3×3 convolution's algorithm.
        public var conv: String
        /// Who computed the bf16 products (`BF16Dispatch.backendNote`), where bf16 rows ran.
        public var bf16Backend: String?
        /// The peer that ran beside, if any.
        public var peer: String?
    }

    /// FLOPs of one training step per sample: forward convolutions ×3 (backward is about twice the
    /// forward), as torch_convlstm.py counts them.
    public static func flopsPerSample(_ s: ModelShape, steps: Int) -> Double {
        let n = Double(s.plane)
        let conv = 2 * Double(4 * s.hidden) * Double((s.cin + s.hidden) * 9) * n * Double(steps)
        let head = 2 * Double(s.hidden * s.head) * n + 2 * Double(s.head) * n
        return 3 * (conv + head)
    }

    static func median(_ v: [Double]) -> Double { v.sorted()[v.count / 2] }

    /// sgemm GFLOP/s for C[M×N] = A[M×K]·B[K×N], median of `reps`, with the current `BLAS.threading`.
    public static func sgemmGFlops(m: Int, k: Int, n: Int, reps: Int = 3) -> Double {
        let a = FlatBuffer(count: m * k), b = FlatBuffer(count: k * n), c = FlatBuffer(count: m * n)
        for i in 0..<a.count { a.pointer[i] = Float(i % 7) * 0.1 }
        for i in 0..<b.count { b.pointer[i] = Float(i % 5) * 0.1 }
        BLAS.sgemm(.no, .no, m: m, n: n, k: k, a: a.pointer, b: b.pointer, c: c.pointer)
        let times = (0..<reps).map { _ -> Double in
            let t = DispatchTime.now().uptimeNanoseconds
            BLAS.sgemm(.no, .no, m: m, n: n, k: k, a: a.pointer, b: b.pointer, c: c.pointer)
            return Double(DispatchTime.now().uptimeNanoseconds - t) / 1e9
        }
        return 2 * Double(m) * Double(k) * Double(n) / median(times) / 1e9
    }

    /// Median seconds of `steps` training steps per threading mode after one warm-up each, the modes
    /// taking turns step by step on the same buffers (so drift in the machine's speed hits both alike).
    public static func timeStep(
        _ shape: ModelShape, batch: Int, seqLen: Int, steps: Int, conv: ConvAlgorithm = .standard,
        precision: Precision = .fp32, modes: [BLAS.Threading], peer: Peer? = nil
    ) throws -> (seconds: [Double], bytes: Int, phases: [StepPhases.Phase: Double], peer: Double?) {
        let model = ConvLSTMForecaster(shape: shape, batch: batch, steps: seqLen, algorithm: conv, precision: precision)
        let l = model.layout
        let p = FlatBuffer.initialParameters(l, seed: 1), g = FlatBuffer(count: l.count)
        let m = FlatBuffer(count: l.count), v = FlatBuffer(count: l.count)
        let x = FlatBuffer(count: batch * seqLen * shape.cin * shape.plane), t = FlatBuffer(count: batch * shape.plane)
        var rng = SplitMix(7)
        for i in 0..<x.count { x.pointer[i] = Float(rng.uniform() * 2 - 1) }
        for i in 0..<t.count { t.pointer[i] = Float(rng.uniform()) }
        var adam = Adam()
        var times = [[Double]](repeating: [], count: modes.count)
        var peerTimes: [Double] = []
        StepPhases.reset()
        let before = BLAS.threading
        defer { BLAS.threading = before }
        for s in 0...steps {
            for (i, mode) in modes.enumerated() {
                BLAS.threading = mode
                let t0 = DispatchTime.now().uptimeNanoseconds
                // Phases are timed for the first mode only (the training path).
                StepPhases.enabled = i == 0 && s > 0
                StepPhases.time(.reductions) { g.zero() }
                model.forward(params: p, input: x.pointer)
                model.loss(target: t.pointer)
                model.backward(params: p, grads: g, input: x.pointer)
                StepPhases.time(.adam) { adam.update(params: p, grads: g, m: m, v: v) }
                StepPhases.enabled = false
                if s > 0 { times[i].append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9) }
            }
            // The peer warmed up when it started, so every one of its steps counts.
            if let peer, s > 0 { peerTimes.append(try peer.step()) }
        }
        let phases = StepPhases.seconds.mapValues { $0 / Double(max(1, steps)) }
        return (
            times.map(median), model.workspaceBytes + 4 * 4 * l.count, phases,
            peerTimes.isEmpty ? nil : median(peerTimes)
        )
    }
}
