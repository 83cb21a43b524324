import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Training progress: on a terminal a live line redrawn in place (epoch, step/steps, samples/s,
/// loss, ETA); otherwise (SLURM logs, pipes) a plain line every `plainEverySeconds`.
public final class Progress {
    let isTerminal: Bool
    let plainEverySeconds: Double
    let write: (String) -> Void
    private var lastPrint = Date.distantPast
    private let started = Date()
    private var samples = 0, steps = 0

    public init(
        plainEverySeconds: Double, isTerminal: Bool = isatty(STDERR_FILENO) != 0, write: @escaping (String) -> Void
    ) {
        self.plainEverySeconds = plainEverySeconds
        self.isTerminal = isTerminal
        self.write = write
    }

    /// Records one finished step; `remainingSteps` counts the steps left in this run.
    public func step(
        epoch: Int, epochs: Int, step: Int, stepsPerEpoch: Int, loss: Double, samples n: Int, remainingSteps: Int
    ) {
        samples += n
        steps += 1
        let elapsed = Date().timeIntervalSince(started)
        let rate = Double(samples) / max(elapsed, 1e-9)
        let eta = elapsed / Double(steps) * Double(remainingSteps)
        let line =
            "epoch \(epoch + 1)/\(epochs) step \(step)/\(stepsPerEpoch) loss \(String(format: "%.5f", loss)) "
            + "\(String(format: "%.1f", rate)) samples/s ETA \(Self.duration(eta))"
        if isTerminal {
            guard Date().timeIntervalSince(lastPrint) > 0.2 || remainingSteps == 0 else { return }
            write("\r\u{1B}[K" + line)
        } else {
            guard
                Date().timeIntervalSince(lastPrint) >= plainEverySeconds || remainingSteps == 0 || step == stepsPerEpoch
            else { return }
            write(line + "\n")
        }
        lastPrint = Date()
    }

    /// Erases the live line (on a terminal, once one is drawn) so a log line can take its place; the
    /// next step redraws it below.
    public func clearLine() {
        guard isTerminal && lastPrint != .distantPast else { return }
        write("\r\u{1B}[K")
        lastPrint = .distantPast
    }

    static func duration(_ s: Double) -> String {
        guard s.isFinite else { return "?" }
        let t = Int(s.rounded())
        return t >= 3600
            ? "\(t / 3600)h\(String(format: "%02d", t % 3600 / 60))m"
            : t >= 60 ? "\(t / 60)m\(String(format: "%02d", t % 60))s" : "\(t)s"
    }
}
