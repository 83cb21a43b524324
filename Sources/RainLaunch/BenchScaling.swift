import Foundation
import RainModel
import RainSupport

/// `swiftrain bench scaling`: training samples/s of N = 1, 2, 4 workers at the same global batch (and of
/// 1 worker × 2 threads), the share of a step spent waiting on communication and the bytes through the
/// coordinator per step, from real `swiftrain train` runs (their metrics.jsonl). On a 2-core machine
/// the 4-worker row shares 2 cores among 4 processes: it shows the protocol's cost, not a speed-up.
public enum BenchScaling {
    public struct Row: Encodable {
        public var workers: Int, threads: Int
        public var samplesPerSecond: Double
        public var secondsPerStep: Double
        public var waitSecondsPerStep: Double
        /// Control messages only: independent of the model's size.
        public var coordinatorBytesPerStep: Double
    }
    public struct Report: Encodable {
        public var rows: [Row]
        /// samples/s of 2 × 1 over 1 × 2 (target ≥ 0.95).
        public var efficiency: Double
    }

    public static func run(configPath: String, steps: Int, binary: String, scratch: String, log: (String) -> Void)
        throws -> Report
    {
        var rows: [Row] = []
        for (workers, threads) in [(1, 2), (1, 1), (2, 1), (4, 1)] {
            let run = scratch + "/scaling-\(workers)x\(threads)"
            try? FileManager.default.removeItem(atPath: run)
            let p = Process()
            p.executableURL = URL(fileURLWithPath: binary)
            p.arguments = [
                "train", "--config", configPath, "--run", run, "--workers", "\(workers)", "--blas-threads",
                "\(threads)", "--max-steps", "\(steps + 2)", "--progress-every", "1000",
            ]
            p.standardError = FileHandle.nullDevice
            try p.run()
            p.waitUntilExit()
            guard p.terminationStatus == 0,
                let text = try? String(contentsOfFile: run + "/metrics.jsonl", encoding: .utf8)
            else {
                throw SwiftRainError(
                    run, "training run failed", hint: "run the same `swiftrain train` by hand to see why")
            }
            // The first two steps warm up (index build, page cache, BLAS threads).
            let stepsData = text.split(separator: "\n").compactMap {
                try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
            }
            .filter { $0["kind"] as? String == "step" }.dropFirst(2)
            let secs = stepsData.compactMap { $0["seconds"] as? Double },
                waits = stepsData.compactMap { $0["wait_seconds"] as? Double },
                bytes = stepsData.compactMap { $0["coordinator_bytes"] as? Int }
            let samples = stepsData.compactMap { $0["samples"] as? Int }.reduce(0, +)
            let total = secs.reduce(0, +)
            rows.append(
                Row(
                    workers: workers, threads: threads, samplesPerSecond: Double(samples) / total,
                    secondsPerStep: total / Double(secs.count),
                    waitSecondsPerStep: waits.reduce(0, +) / Double(waits.count),
                    coordinatorBytesPerStep: Double(bytes.reduce(0, +)) / Double(max(1, bytes.count))))
            log(
                """
                \(workers) worker(s) × \(threads) thread(s): \
                \(String(format: "%.2f", Double(samples) / total)) samples/s
                """
            )
        }
        return Report(rows: rows, efficiency: rows[2].samplesPerSecond / rows[0].samplesPerSecond)
    }

    public static func table(_ r: Report) -> String {
        var out = "workers × threads  samples/s   s/step   waiting s/step   coordinator bytes/step\n"
        for x in r.rows {
            out +=
                "\(x.workers) × \(x.threads)".padding(toLength: 17, withPad: " ", startingAt: 0)
                + String(
                    format: "%11.2f%9.3f%17.3f%25.0f\n", x.samplesPerSecond, x.secondsPerStep, x.waitSecondsPerStep,
                    x.coordinatorBytesPerStep)
        }
        return out + String(format: "2 × 1 over 1 × 2: %.2f (target ≥ 0.95)\n", r.efficiency)
    }
}
