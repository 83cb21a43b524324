import RainConfig
import RainSupport

/// Assembles samples from mapped files into caller-provided buffers (DATA-FORMAT §5–§6):
///
///     input  [S, C_in, H, W]  per step: temporal inputs (normalised) | local solar time (3, optional)
///                             | constants (normalised) | lead one-hot
///     target [1, H, W]        y′ = ln(1 + y/std)
///
/// Everything that does not depend on the sample (normalised constants, per-column longitude
/// offsets, statistics) is prepared once; the hot path only copies and scales planes.
public final class SampleAssembler {
    public let spec: SampleSpec
    /// The input channels and grid (the data's own; checked against the configuration's when given).
    public let layout: InputLayout
    public var height: Int { layout.height }
    public var width: Int { layout.width }
    public var channelNames: [String] { layout.channelNames }
    public var channels: Int { layout.channels }
    public var steps: Int { layout.steps }
    public var inputCount: Int { layout.inputCount }
    public var targetCount: Int { height * width }
    /// The plain std of the target (for the transform back to physical units).
    public let targetStd: Float

    private struct Temporal {
        let src: ChannelSource
        let mean: Float
        let invStd: Float
    }
    private let temporal: [Temporal]
    private let constantPlanes: [Float]
    private let constantCount: Int
    /// Local solar time offset per column, seconds: longitude (wrapped to [−180°, 180°)) / 15 h.
    private let columnOffsets: [EpochSeconds]
    private let target: ChannelSource
    /// Files read per sample, and an upper bound of the bytes mapped since their pages were last released.
    private let files: [MappedFile]
    private var touchedBytes = 0
    /// Bytes a sample can map: whole rows of each file, because the kernel's fault-around maps up
    /// to 64 KiB of cached pages around each plane read.
    private let bytesPerSample: Int
    /// Release mapped pages after this many bytes: bounds the resident set whatever the data size.
    /// Small on purpose: recent kernels map whole large folios of the page cache per fault, so the
    /// resident set runs several times the bytes counted (measured with simsat_era on ext4, Linux
    /// 6.18, two years of data: 4 MiB → 142 MB peak RSS, 1 MiB → 63 MB at 3 % fewer samples/s).
    public var releaseEveryBytes = 1 << 20

    public init(spec: SampleSpec, catalog: DataCatalog, normalisation: Normalisation, config: Config? = nil) throws {
        self.spec = spec
        let inputs = try spec.inputs.flatMap { try catalog.channels(of: $0) }
        let consts = try spec.constants.flatMap { try catalog.channels(of: $0) }
        target = try catalog.channels(of: spec.target)[0]
        let all = inputs + consts + [target]
        let height = all[0].file.height, width = all[0].file.width
        for c in all where c.file.height != height || c.file.width != width {
            throw SwiftRainError(
                c.variable, "grid differs from the other variables",
                expected: "\(height)×\(width) (as \(all[0].variable))", found: "\(c.file.height)×\(c.file.width)",
                hint: "use datasets of one resolution together (all 5.625° or all 1.40625°)")
        }
        temporal = try inputs.map { c in
            let s = try normalisation.require(c.normKey)
            return Temporal(src: c, mean: Float(s.mean), invStd: Float(1 / s.std))
        }
        let plane = height * width
        var planes = [Float](repeating: 0, count: consts.count * plane)
        for (i, c) in consts.enumerated() {
            let s = try normalisation.require(c.normKey)
            let p = try c.file.mapped.floats(at: c.file.elementIndex(row: 0, channel: c.channel))
            for j in 0..<plane { planes[i * plane + j] = Float((Double(p[j]) - s.mean) / s.std) }
        }
        constantPlanes = planes
        constantCount = consts.count
        targetStd = Float(try normalisation.require(spec.target).std)
        let w = width
        columnOffsets = (0..<w).map { x in
            var lon = Double(x) * 360 / Double(w)
            if lon >= 180 { lon -= 360 }
            return EpochSeconds((lon * 240).rounded(.down))  // 1° = 4 min = 240 s
        }
        var seen = Set<ObjectIdentifier>()
        let inputFiles = inputs.map(\.file).filter { seen.insert(ObjectIdentifier($0)).inserted }
        files = inputFiles.map(\.mapped) + (seen.contains(ObjectIdentifier(target.file)) ? [] : [target.file.mapped])
        let rowBytes = { (f: DataFile) in 4 * f.channels * f.height * f.width }
        bytesPerSample = spec.offsets.count * inputFiles.map(rowBytes).reduce(0, +) + rowBytes(target.file)
        layout = try InputLayout(spec: spec, catalog: catalog, config: config)
    }

    /// Fills `input` (inputCount floats) and `target` (targetCount floats) for `sample`.
    /// Throws, never traps, if a read is unavailable (the sample index rules that out up front).
    public func assemble(_ sample: Sample, input: UnsafeMutablePointer<Float>, target out: UnsafeMutablePointer<Float>)
        throws
    {
        try assembleInput(sample, input: input)
        let plane = height * width
        let tt = sample.t0 + sample.lead
        guard let y = try target.plane(at: tt) else { throw unavailable(target.variable, tt) }
        let std = targetStd
        for j in 0..<plane { out[j] = Normalisation.forward(y[j], std: std) }
    }

    /// Fills `input` alone: a forecast's inputs, whose target may not exist yet.
    public func assembleInput(_ sample: Sample, input: UnsafeMutablePointer<Float>) throws {
        let plane = height * width
        guard let leadChannel = spec.leadIndex(sample.lead) else {
            throw SwiftRainError(
                "lead", "lead time not in the configuration", expected: "\(spec.leads.map { $0 / 3600 }) h",
                found: "\(sample.lead / 3600) h", hint: "use a configured lead time")
        }
        var dst = input
        for offset in spec.offsets {
            let t = sample.t0 + offset
            for c in temporal {
                guard let src = try c.src.plane(at: t) else { throw unavailable(c.src.variable, t) }
                let m = c.mean, k = c.invStd
                for j in 0..<plane { dst[j] = (src[j] - m) * k }
                dst += plane
            }
            if spec.includeTime {
                for x in 0..<width {
                    let f = UTCTime.fields(t + columnOffsets[x])
                    let hour = Float(f.hour) / 24, day = Float(f.day) / 31, month = Float(f.month) / 12
                    for y in 0..<height {
                        dst[y * width + x] = hour
                        dst[plane + y * width + x] = day
                        dst[2 * plane + y * width + x] = month
                    }
                }
                dst += 3 * plane
            }
            constantPlanes.withUnsafeBufferPointer { dst.update(from: $0.baseAddress!, count: $0.count) }
            dst += constantCount * plane
            for l in 0..<spec.leads.count {
                dst.update(repeating: l == leadChannel ? 1 : 0, count: plane)
                dst += plane
            }
        }
        touchedBytes += bytesPerSample
        if touchedBytes >= releaseEveryBytes {
            touchedBytes = 0
            for f in files { f.releaseResidentPages() }
        }
    }

    private func unavailable(_ v: String, _ t: EpochSeconds) -> SwiftRainError {
        SwiftRainError(
            v, "no data at \(UTCTime.short(t))",
            hint: "build samples from the validated SampleIndex, which drops such samples up front")
    }
}
