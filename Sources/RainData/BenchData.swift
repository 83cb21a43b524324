import Foundation
import RainConfig
import RainSupport

/// `swiftrain bench data`: sample assembly throughput from mapped files on one core.
public enum BenchData {
    public struct Row: Encodable {
        public var sources: String
        public var inputChannels: Int
        public var bytesPerSample: Int
        public var medianSamplesPerSecond: Double
        public var runs: [Double]
        public var peakRSSBytes: Int
    }

    /// Times `samples` random train samples, `repeats` times, for each of `sources`; sources whose data
    /// are missing are reported through `note` and skipped.
    public static func run(
        config: Config, sources: [Sources], samples: Int = 2000, repeats: Int = 5,
        note: (String) -> Void
    ) throws -> [Row] {
        let catalog = try DataCatalog(paths: config.data)
        var rows: [Row] = []
        for s in sources {
            var c = config
            c.sources = s
            let spec = try SampleSpec(c)
            let index: SampleIndex
            do { index = try SampleIndex(spec: spec, catalog: catalog) } catch {
                note("skipping \(s.rawValue): \(error)")
                continue
            }
            let train = index.samples(.train)
            guard train.count > 0 else {
                note("skipping \(s.rawValue): no train samples in these data")
                continue
            }
            let norm =
                try (try? Normalisation.load(path: c.normalisation))
                ?? Normalisation.compute(spec: spec, catalog: catalog)
            let asm = try SampleAssembler(spec: spec, catalog: catalog, normalisation: norm)
            var rng = SplitMix(UInt64(c.seed))
            let picks = (0..<samples).map { _ in train.sample(Int(rng.next() % UInt64(train.count))) }
            var input = [Float](repeating: 0, count: asm.inputCount),
                target = [Float](repeating: 0, count: asm.targetCount)
            func pass(_ list: ArraySlice<Sample>) throws -> Double {
                let start = DispatchTime.now().uptimeNanoseconds
                try input.withUnsafeMutableBufferPointer { i in
                    try target.withUnsafeMutableBufferPointer { t in
                        for p in list { try asm.assemble(p, input: i.baseAddress!, target: t.baseAddress!) }
                    }
                }
                return Double(list.count) / (Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
            }
            _ = try pass(picks.prefix(200))  // warm the page cache and the code
            var runs: [Double] = []
            for _ in 0..<repeats { runs.append(try pass(picks[...])) }
            rows.append(
                Row(
                    sources: s.rawValue, inputChannels: asm.channels,
                    bytesPerSample: 4 * (asm.inputCount + asm.targetCount),
                    medianSamplesPerSecond: runs.sorted()[runs.count / 2], runs: runs,
                    peakRSSBytes: ThisProcess.peakRSS()))
        }
        return rows
    }

    public static func table(_ rows: [Row]) -> String {
        var out = "sample assembly, 1 core (median of runs)\n"
        out += "sources      C_in  MiB/sample  samples/s   target ≥ 2000 (simsat)  peak RSS\n"
        for r in rows {
            let target = r.sources == "simsat" ? (r.medianSamplesPerSecond >= 2000 ? "met" : "MISSED") : "—"
            out +=
                r.sources.padding(toLength: 12, withPad: " ", startingAt: 0)
                + String(r.inputChannels).leftPad(5)
                + String(format: "%12.2f", Double(r.bytesPerSample) / 1_048_576)
                + String(format: "%11.0f", r.medianSamplesPerSecond)
                + target.leftPad(24) + bytesText(r.peakRSSBytes).leftPad(12) + "\n"
        }
        return out
    }
}
