import Foundation
import RainSupport

/// `swiftrain bench step`: the machine's sgemm ceiling on the model's own GEMM shapes, and the
/// training step (forward + backward + Adam) measured against it, side by side in one run: once with
/// SwiftRain's fixed GEMM pieces (what training uses) and once with OpenBLAS's own threading.
public enum BenchStep {
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
        _ shape: ModelShape, batch: Int, seqLen: Int, steps: Int,
        modes: [BLAS.Threading]
    ) -> (seconds: [Double], bytes: Int) {
        let model = ConvLSTMForecaster(shape: shape, batch: batch, steps: seqLen)
        let l = model.layout
        let p = FlatBuffer.initialParameters(l, seed: 1), g = FlatBuffer(count: l.count)
        let m = FlatBuffer(count: l.count), v = FlatBuffer(count: l.count)
        let x = FlatBuffer(count: batch * seqLen * shape.cin * shape.plane), t = FlatBuffer(count: batch * shape.plane)
        var rng = SplitMix(7)
        for i in 0..<x.count { x.pointer[i] = Float(rng.uniform() * 2 - 1) }
        for i in 0..<t.count { t.pointer[i] = Float(rng.uniform()) }
        var adam = Adam()
        var times = [[Double]](repeating: [], count: modes.count)
        let before = BLAS.threading
        defer { BLAS.threading = before }
        for s in 0...steps {
            for (i, mode) in modes.enumerated() {
                BLAS.threading = mode
                let t0 = DispatchTime.now().uptimeNanoseconds
                g.zero()
                model.forward(params: p, input: x.pointer)
                model.loss(target: t.pointer)
                model.backward(params: p, grads: g, input: x.pointer)
                adam.update(params: p, grads: g, m: m, v: v)
                if s > 0 { times[i].append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9) }
            }
        }
        return (times.map(median), model.workspaceBytes + 4 * 4 * l.count)
    }

    public static func run(steps: Int, threadCounts: [Int], quick: Bool, note: (String) -> Void) -> Report {
        let full = ModelShape(cin: 16, hidden: 384, head: 32, height: 32, width: 64, relu: true)
        let small = ModelShape(cin: 16, hidden: 32, head: 16, height: 32, width: 64, relu: true)
        var ceilings: [Ceiling] = []  // one per row, same order
        var rows: [Row] = []
        let configs: [(String, ModelShape, [Int])] =
            quick
            ? [("small F=32", small, [8])]
            : [("full F=384", full, [1, 4]), ("small F=32", small, [8, 32])]
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
                    let (secs, bytes) = timeStep(shape, batch: b, seqLen: 5, steps: steps, modes: [.pieces, .openBLAS])
                    let (sec, openSec) = (secs[0], secs[1])
                    let flops = flopsPerSample(shape, steps: 5) * Double(b)
                    let row = Row(
                        model: name, batch: b, threads: threads, secondsPerStep: sec, samplesPerSecond: Double(b) / sec,
                        gflops: flops / sec / 1e9, ratioToCeiling: flops / sec / 1e9 / gf,
                        ratioToPeak: flops / sec / 1e9 / peak,
                        openBLASSecondsPerStep: openSec, speedupOverOpenBLAS: openSec / sec, workspaceBytes: bytes)
                    note(
                        """
                        \(name) B=\(b) \(threads)t: \(String(format: "%.3f", sec)) s/step (OpenBLAS threading \
                        \(String(format: "%.3f", openSec)))
                        """
                    )
                    rows.append(row)
                }
            }
        }
        return Report(ceilings: ceilings, rows: rows, peakRSSBytes: ThisProcess.peakRSS(), peakGFlops: peaks)
    }

    public static func table(_ r: Report) -> String {
        var out =
            "model        B  threads   s/step  samples/s  GFLOP/s   sgemm ceiling (shape)           of ceiling"
            + "   peak  of peak  OpenBLAS-threaded s/step  speed-up  memory\n"
        for (x, c) in zip(r.rows, r.ceilings) {
            out +=
                x.model.padding(toLength: 11, withPad: " ", startingAt: 0) + String(x.batch).leftPad(3)
                + String(x.threads).leftPad(9)
                + String(format: "%9.3f%11.2f%9.1f%9.1f ", x.secondsPerStep, x.samplesPerSecond, x.gflops, c.gflops)
                + "(\(c.shape))".padding(toLength: 22, withPad: " ", startingAt: 0)
                + String(
                    format: "%11.0f%%%7.0f%8.0f%%%26.3f%9.2f×", 100 * x.ratioToCeiling, r.peakGFlops[x.threads] ?? 0,
                    100 * x.ratioToPeak, x.openBLASSecondsPerStep,
                    x.speedupOverOpenBLAS)
                + bytesText(x.workspaceBytes).leftPad(11) + "\n"
        }
        out +=
            "\ns/step: SwiftRain's fixed GEMM pieces (same bits for any thread count, what training runs);"
            + " OpenBLAS-threaded: the same step with OpenBLAS splitting each call by thread count.\n"
        out +=
            "peak: the machine's measured FP32 peak (\(r.peakISA) chains on every thread), GFLOP/s;"
            + " of peak: the step's GFLOP/s over it.\n"
        out += "\npeak RSS of this run: \(bytesText(r.peakRSSBytes))\n"
        out += "\(r.blasKernelNote.isEmpty ? "OpenBLAS kernel \(r.blasKernel)" : r.blasKernelNote)\n"
        return out
    }
}
