import Foundation
import RainConfig
import RainSupport

extension BenchStep {
    /// Which models' rows to run: `quick` is the small model at B = 8 only.
    public enum Selection: String, CaseIterable, Sendable { case all, full, small, quick }

    /// Every row of `models` for each thread count and precision, in that order; each precision's rows are
    /// held to the machine's peak in that precision, and the peer (if any) runs the same precision beside.
    public static func run(
        steps: Int, threadCounts: [Int], models: Selection, conv: ConvAlgorithm = .standard,
        precisions: [Precision] = [.fp32], peer makePeer: PeerFactory? = nil, note: (String) -> Void
    ) throws -> Report {
        for p in precisions { try ConvLSTMForecaster.check(precision: p, algorithm: conv, subject: "--precision") }
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
        var peaks: [Int: Double] = [:], bf16Peaks: [Int: Double] = [:]
        for threads in threadCounts {
            BLAS.threads = threads
            let fp32Peak = MachinePeak.gflops(threads: threads)
            peaks[threads] = fp32Peak
            note("machine peak, \(threads) thread(s): \(String(format: "%.1f", fp32Peak)) GFLOP/s (\(MachinePeak.isa))")
            if precisions.contains(.bf16Mixed) {
                let b = MachinePeak.bf16GFlops(threads: threads)
                bf16Peaks[threads] = b
                note("machine bf16 peak, \(threads) thread(s): \(String(format: "%.1f", b)) GFLOP/s (VDPBF16PS)")
            }
            for precision in precisions {
                let peak = precision == .bf16Mixed ? bf16Peaks[threads]! : fp32Peak
                for (name, shape, batches) in configs {
                    for b in batches {
                        let peer = try makePeer?(shape, b, threads, precision)
                        peerLabel = peer?.label ?? peerLabel
                        let (ceiling, row) = try measure(
                            name, shape, batch: b, threads: threads, precision: precision, peak: peak, steps: steps,
                            conv: conv, peer: peer)
                        note(
                            """
                            \(name) B=\(b) \(threads)t \(precision.rawValue): \
                            \(String(format: "%.3f", row.secondsPerStep)) s/step (OpenBLAS threading \
                            \(String(format: "%.3f", row.openBLASSecondsPerStep)))\
                            \(row.peerSecondsPerStep.map { String(format: "; peer %.3f", $0) } ?? "")
                            """
                        )
                        ceilings.append(ceiling)
                        rows.append(row)
                    }
                }
            }
        }
        return Report(
            ceilings: ceilings, rows: rows, peakRSSBytes: ThisProcess.peakRSS(), peakGFlops: peaks,
            bf16PeakGFlops: bf16Peaks, conv: conv.rawValue,
            bf16Backend: precisions.contains(.bf16Mixed) ? BF16Dispatch.backendNote : nil, peer: peerLabel)
    }

    /// One row: the sgemm ceiling on the row's dominant GEMM (the 3×3 convolution, OpenBLAS threading
    /// itself), then the step with SwiftRain's threading and with OpenBLAS's, and the peer's, in turns.
    static func measure(
        _ name: String, _ shape: ModelShape, batch b: Int, threads: Int, precision: Precision, peak: Double,
        steps: Int, conv: ConvAlgorithm, peer: Peer?
    ) throws -> (Ceiling, Row) {
        let (m, k, n) = (4 * shape.hidden, (shape.cin + shape.hidden) * 9, b * shape.plane)
        BLAS.threading = .openBLAS
        let gf = sgemmGFlops(m: m, k: k, n: n)
        let ceiling = Ceiling(model: name, batch: b, threads: threads, shape: "\(m)×\(k)·\(k)×\(n)", gflops: gf)
        BLAS.threading = .pieces
        let (secs, bytes, phases, peerSec) = try timeStep(
            shape, batch: b, seqLen: 5, steps: steps, conv: conv, precision: precision, modes: [.pieces, .openBLAS],
            peer: peer)
        let (sec, openSec) = (secs[0], secs[1])
        var phaseSeconds = Dictionary(uniqueKeysWithValues: phases.map { ($0.key.name, $0.value) })
        phaseSeconds["other"] = max(0, sec - phases.values.reduce(0, +))
        let gflops = flopsPerSample(shape, steps: 5) * Double(b) / sec / 1e9
        let row = Row(
            model: name, batch: b, threads: threads, precision: precision, secondsPerStep: sec,
            samplesPerSecond: Double(b) / sec, gflops: gflops, ratioToCeiling: gflops / gf, ratioToPeak: gflops / peak,
            peakGFlops: peak, openBLASSecondsPerStep: openSec, speedupOverOpenBLAS: openSec / sec,
            workspaceBytes: bytes, peerSecondsPerStep: peerSec, speedupOverPeer: peerSec.map { $0 / sec },
            phaseSeconds: phaseSeconds)
        return (ceiling, row)
    }
}
