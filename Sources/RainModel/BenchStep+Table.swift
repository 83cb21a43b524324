import Foundation
import RainConfig
import RainSupport

extension BenchStep {
    /// The report as the terminal shows it.
    public static func table(_ r: Report) -> String {
        var out =
            "model        B  threads  precision   s/step  samples/s  GFLOP/s   sgemm ceiling (shape)      "
            + "     of ceiling"
            + "   peak  of peak  OpenBLAS-threaded s/step  speed-up  memory\n"
        for (x, c) in zip(r.rows, r.ceilings) {
            out +=
                x.model.padding(toLength: 11, withPad: " ", startingAt: 0) + String(x.batch).leftPad(3)
                + String(x.threads).leftPad(9) + x.precision.rawValue.leftPad(11)
                + String(format: "%9.3f%11.2f%9.1f%9.1f ", x.secondsPerStep, x.samplesPerSecond, x.gflops, c.gflops)
                + "(\(c.shape))".padding(toLength: 22, withPad: " ", startingAt: 0)
                + String(
                    format: "%11.0f%%%7.0f%8.0f%%%26.3f%9.2f×", 100 * x.ratioToCeiling, x.peakGFlops,
                    100 * x.ratioToPeak, x.openBLASSecondsPerStep,
                    x.speedupOverOpenBLAS)
                + bytesText(x.workspaceBytes).leftPad(11) + "\n"
        }
        out +=
            "\ns/step: SwiftRain's fixed GEMM pieces (same bits for any thread count, what training runs);"
            + " OpenBLAS-threaded: the same step with OpenBLAS splitting each call by thread count.\n"
        out +=
            "peak: the machine's measured peak in the row's precision (32: \(r.peakISA) chains; bf16-mixed:"
            + " VDPBF16PS chains) on every thread, GFLOP/s; of peak: the step's GFLOP/s over it.\n"
        out +=
            "GFLOP/s counts the direct convolution's FLOPs (conv: \(r.conv)); Winograd does 2.25× fewer in the"
            + " convolution, so its rows can pass the sgemm ceiling.\n"
        if let peer = r.peer {
            out += "\nSide by side with \(peer), steps taken in turns on the same shapes:\n"
            out +=
                "model        B  threads  precision  SwiftRain s/step  peer s/step  SwiftRain samples/s"
                + "  peer samples/s  ratio\n"
            for x in r.rows {
                guard let p = x.peerSecondsPerStep else { continue }
                out +=
                    x.model.padding(toLength: 11, withPad: " ", startingAt: 0) + String(x.batch).leftPad(3)
                    + String(x.threads).leftPad(9) + x.precision.rawValue.leftPad(11)
                    + String(
                        format: "%18.3f%13.3f%21.2f%16.2f%6.2f×\n", x.secondsPerStep, p, x.samplesPerSecond,
                        Double(x.batch) / p, p / x.secondsPerStep)
            }
            out +=
                "ratio: SwiftRain's samples/s over the peer's (above 1, SwiftRain is faster); the peer runs the row's"
                + " precision (bf16-mixed: torch.autocast to bfloat16, Lightning's precision=\"bf16-mixed\").\n"
        }
        out += "\nWhere a step goes (s/step, SwiftRain's threading; gates \(r.gatesISA)):\n"
        let names = StepPhases.Phase.allCases.map(\.name) + ["other"]
        out += "model        B  threads  precision" + names.map { $0.leftPad(15) }.joined() + "\n"
        for x in r.rows {
            out +=
                x.model.padding(toLength: 11, withPad: " ", startingAt: 0) + String(x.batch).leftPad(3)
                + String(x.threads).leftPad(9) + x.precision.rawValue.leftPad(11)
                + names.map { n -> String in
                    let v = x.phaseSeconds[n] ?? 0
                    return String(format: "%8.3f (%3.0f%%)", v, 100 * v / x.secondsPerStep)
                }.joined() + "\n"
        }
        out += "\npeak RSS of this run: \(bytesText(r.peakRSSBytes))\n"
        out += "\(r.blasKernelNote.isEmpty ? "OpenBLAS kernel \(r.blasKernel)" : r.blasKernelNote)\n"
        if let b = r.bf16Backend { out += b + "\n" }
        return out
    }
}
