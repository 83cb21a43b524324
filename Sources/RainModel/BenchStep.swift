import Foundation
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
    /// Starts a peer for one row's shape, batch and thread count (warmed up).
    public typealias PeerFactory = (_ shape: ModelShape, _ batch: Int, _ threads: Int) throws -> Peer

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
        public var secondsPerStep: Double
        public var samplesPerSecond: Double
        public var gflops: Double
        /// Achieved GFLOP/s over the sgemm ceiling for the same thread count.
        public var ratioToCeiling: Double
        /// Achieved GFLOP/s over the machine's measured FP32 peak (`MachinePeak`) for the same thread count.
        public var ratioToPeak: Double
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
        public var peakISA: String = MachinePeak.isa
        /// The OpenBLAS kernel that ran, and why (`BLASKernel.note`).
        public var blasKernel: String = BLAS.coreName
        public var blasKernelNote: String = BLASKernel.note
        /// The instruction set the gate kernels use.
        public var gatesISA: String = Gates.isa.name
        /// The 3×3 convolution's algorithm.
        public var conv: String
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
        modes: [BLAS.Threading], peer: Peer? = nil
    ) throws -> (seconds: [Double], bytes: Int, phases: [StepPhases.Phase: Double], peer: Double?) {
        let model = ConvLSTMForecaster(shape: shape, batch: batch, steps: seqLen, algorithm: conv)
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

    /// Which models' rows to run: `quick` is the small model at B = 8 only.
    public enum Selection: String, CaseIterable, Sendable { case all, full, small, quick }

    public static func run(
        steps: Int, threadCounts: [Int], models: Selection, conv: ConvAlgorithm = .standard,
        peer makePeer: PeerFactory? = nil, note: (String) -> Void
    ) throws -> Report {
        var peerLabel: String?
        let full = ModelShape(cin: 16, hidden: 384, head: 32, height: 32, width: 64, relu: true)
        let small = ModelShape(cin: 16, hidden: 32, head: 16, height: 32, width: 64, relu: true)
        var ceilings: [Ceiling] = []  // one per row, same order
        var rows: [Row] = []
        let configs: [(String, ModelShape, [Int])] =
            switch models {
            case .quick: [("small F=32", small, [8])]
            case .small: [("small F=32", small, [8, 32])]
            case .full: [("full F=384", full, [1, 4])]
            case .all: [("full F=384", full, [1, 4]), ("small F=32", small, [8, 32])]
            }
        var peaks: [Int: Double] = [:]
        for threads in threadCounts {
            BLAS.threads = threads
            let peak = MachinePeak.gflops(threads: threads)
            peaks[threads] = peak
            note("machine peak, \(threads) thread(s): \(String(format: "%.1f", peak)) GFLOP/s (\(MachinePeak.isa))")
            for (name, shape, batches) in configs {
                for b in batches {
                    // The ceiling: OpenBLAS, threading itself, on this configuration's dominant GEMM (the 3×3
                    // convolution); steps with OpenBLAS's threading alternate with steps with ours.
                    let (m, k, n) = (4 * shape.hidden, (shape.cin + shape.hidden) * 9, b * shape.plane)
                    BLAS.threading = .openBLAS
                    let gf = sgemmGFlops(m: m, k: k, n: n)
                    ceilings.append(
                        Ceiling(model: name, batch: b, threads: threads, shape: "\(m)×\(k)·\(k)×\(n)", gflops: gf))
                    BLAS.threading = .pieces
                    let peer = try makePeer?(shape, b, threads)
                    peerLabel = peer?.label ?? peerLabel
                    let (secs, bytes, phases, peerSec) = try timeStep(
                        shape, batch: b, seqLen: 5, steps: steps, conv: conv, modes: [.pieces, .openBLAS], peer: peer)
                    let (sec, openSec) = (secs[0], secs[1])
                    var phaseSeconds = Dictionary(uniqueKeysWithValues: phases.map { ($0.key.name, $0.value) })
                    phaseSeconds["other"] = max(0, sec - phases.values.reduce(0, +))
                    let flops = flopsPerSample(shape, steps: 5) * Double(b)
                    let row = Row(
                        model: name, batch: b, threads: threads, secondsPerStep: sec, samplesPerSecond: Double(b) / sec,
                        gflops: flops / sec / 1e9, ratioToCeiling: flops / sec / 1e9 / gf,
                        ratioToPeak: flops / sec / 1e9 / peak,
                        openBLASSecondsPerStep: openSec, speedupOverOpenBLAS: openSec / sec, workspaceBytes: bytes,
                        peerSecondsPerStep: peerSec, speedupOverPeer: peerSec.map { $0 / sec },
                        phaseSeconds: phaseSeconds)
                    note(
                        """
                        \(name) B=\(b) \(threads)t: \(String(format: "%.3f", sec)) s/step (OpenBLAS threading \
                        \(String(format: "%.3f", openSec)))\(peerSec.map { String(format: "; peer %.3f", $0) } ?? "")
                        """
                    )
                    rows.append(row)
                }
            }
        }
        return Report(
            ceilings: ceilings, rows: rows, peakRSSBytes: ThisProcess.peakRSS(), peakGFlops: peaks, conv: conv.rawValue,
            peer: peerLabel)
    }
}
