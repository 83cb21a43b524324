import Foundation
import RainConfig
import RainSupport

#if canImport(Glibc)
import Glibc
#endif

/// The data-layer commands, callable from the `swiftrain` executable and from tests.
public enum DataCommands {
    /// A configuration for inspecting `catalog` without a config file: the target is IMERG when an
    /// IMERG dataset is present, the sources whatever inputs are present.
    public static func inferredConfig(for catalog: DataCatalog, base: Config) -> Config {
        var c = base
        let names = Set(catalog.datasets.flatMap { $0.info.variables.keys.map { String($0.split(separator: "/")[0]) } })
        let hasSimsat = names.contains { $0.hasPrefix("simsat") }
        let hasEraTemporal = catalog.datasets.contains {
            $0.name.hasPrefix("era") && $0.files.values.contains(where: \.isTemporal)
        }  // present, not merely described: a SimSat → IMERG release has only ERA5's constants
        c.imerg = names.contains { $0.hasPrefix("imerg") }
        c.sources = hasSimsat ? (hasEraTemporal ? .simsat_era : .simsat) : .era16_3
        return c
    }

    /// `swiftrain inspect`: returns the report; throws for unreadable data or configuration.
    public static func inspect(config: Config, inferred: Bool) throws -> (report: InspectReport, indexError: Error?) {
        let catalog = try DataCatalog(paths: config.data)
        let c = inferred ? inferredConfig(for: catalog, base: config) : config
        do {
            let spec = try SampleSpec(c)
            let index = try SampleIndex(spec: spec, catalog: catalog)
            let layout = try InputLayout(spec: spec, catalog: catalog)
            let report = InspectReport(
                catalog: catalog, config: c, spec: spec, index: index, channelNames: layout.channelNames)
            return (report, nil)
        } catch {
            let spec = try? SampleSpec(c)  // the files table, when the configuration itself is sound
            return (InspectReport(catalog: catalog, config: nil, spec: spec, index: nil, channelNames: []), error)
        }
    }

    /// `swiftrain normalize`: statistics over the train partition, written in PyRain's format.
    public static func normalize(config: Config, out: String, progress: @escaping (String) -> Void) throws
        -> Normalisation
    {
        let catalog = try DataCatalog(paths: config.data)
        for w in catalog.warnings { progress("warning: \(w)") }
        let spec = try SampleSpec(config)
        let n = try Normalisation.compute(spec: spec, catalog: catalog, progress: progress)
        try n.write(path: out)
        return n
    }

    /// `swiftrain sample`: writes one assembled sample (input.f32, target.f32, manifest.json) to `dir`.
    public static func writeSample(
        config: Config, partition: Partition.Name, leadHours: Int, time: EpochSeconds, dir: String
    ) throws -> String {
        let catalog = try DataCatalog(paths: config.data)
        let spec = try SampleSpec(config)
        let lead = EpochSeconds(leadHours) * UTCTime.hour
        guard spec.leadIndex(lead) != nil else {
            throw SwiftRainError(
                "--lead", "not a configured lead time", expected: "\(spec.leads.map { $0 / 3600 }) (hours)",
                found: "\(leadHours)", hint: "choose one of the lead times")
        }
        let index = try SampleIndex(spec: spec, catalog: catalog)
        let part = index.samples(partition)
        guard let ls = part.leads.first(where: { $0.leadHours == leadHours }), ls.times.contains(time) else {
            let p = part.partition
            let onGrid =
                time >= spec.firstSampleTime(p) && (time - spec.firstSampleTime(p)) % p.stride == 0
                && time + lead <= p.end
            throw SwiftRainError(
                "--time \(UTCTime.iso(time))",
                "not a kept sample of the \(partition.rawValue) partition at lead \(leadHours) h",
                expected:
                    "t0 = \(UTCTime.short(spec.firstSampleTime(p))) + k·\(p.stride / 3600) h"
                    + " with every read available",
                found: onGrid
                    ? "a sample time the index dropped (see `swiftrain inspect`)"
                    : "a time off the partition's sample grid",
                hint: "pick a time listed as kept; `swiftrain inspect --config C` shows why samples are dropped")
        }
        let norm = try Normalisation.load(path: config.normalisation)
        let asm = try SampleAssembler(spec: spec, catalog: catalog, normalisation: norm)
        var input = [Float](repeating: 0, count: asm.inputCount), target = [Float](repeating: 0, count: asm.targetCount)
        let sample = Sample(t0: time, lead: lead)
        try input.withUnsafeMutableBufferPointer { i in
            try target.withUnsafeMutableBufferPointer { t in
                try asm.assemble(sample, input: i.baseAddress!, target: t.baseAddress!)
            }
        }
        let url = URL(fileURLWithPath: dir)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        try input.withUnsafeBytes { try Data($0).write(to: url.appendingPathComponent("input.f32")) }
        try target.withUnsafeBytes { try Data($0).write(to: url.appendingPathComponent("target.f32")) }
        var reads: [[String: String]] = []
        for o in spec.offsets {
            for v in spec.inputs {
                for c in try catalog.channels(of: v) {
                    reads.append([
                        "channel": c.normKey, "file": c.file.name, "time": UTCTime.iso(time + o),
                        "row": "\(c.row(at: time + o)!)",
                    ])
                }
            }
        }
        let tgt = try catalog.channels(of: spec.target)[0]
        reads.append([
            "channel": spec.target, "file": tgt.file.name, "time": UTCTime.iso(time + lead),
            "row": "\(tgt.row(at: time + lead)!)",
        ])
        let manifest: [String: Any] = [
            "description": "one assembled SwiftRain sample; raw little-endian float32, C order, no header",
            "t0": UTCTime.iso(time), "lead_h": leadHours, "partition": partition.rawValue,
            "input": [
                "file": "input.f32", "shape": [asm.steps, asm.channels, asm.height, asm.width],
                "channels": asm.channelNames,
                "offsets_h": spec.offsets.map { $0 / 3600 },
            ],
            "target": [
                "file": "target.f32", "shape": [1, asm.height, asm.width], "variable": spec.target,
                "transform": "ln(1 + y / std)", "std": Double(asm.targetStd),
            ],
            "normalisation": config.normalisation, "reads": reads,
        ]
        let json = try JSONSerialization.data(withJSONObject: manifest, options: [.prettyPrinted, .sortedKeys])
        try json.write(to: url.appendingPathComponent("manifest.json"))
        return url.path
    }
}
