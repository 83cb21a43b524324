import RainSupport

/// One training/evaluation example: input window ending at `t0`, target at `t0 + lead`.
public struct Sample: Equatable, Hashable, Codable {
    public var t0: EpochSeconds
    public var lead: EpochSeconds
    public init(t0: EpochSeconds, lead: EpochSeconds) {
        self.t0 = t0
        self.lead = lead
    }
}

/// How many candidate samples one variable removed, and why.
public struct DropCount: Equatable, Codable {
    public var variable: String
    public var reason: String
    public var count: Int
    public init(variable: String, reason: String, count: Int) {
        self.variable = variable
        self.reason = reason
        self.count = count
    }
}

/// The samples of one partition at one lead time.
public struct LeadSamples: Encodable {
    public var leadHours: Int
    /// Sample times the partition's dates allow (DATA-FORMAT §4's n).
    public var candidates: Int
    public var kept: Int { times.count }
    public var dropped: Int { candidates - times.count }
    /// Per variable and reason; one sample may be counted under several variables.
    public var reasons: [DropCount]
    /// Kept t0s, ascending.
    public var times: [EpochSeconds]

    enum CodingKeys: String, CodingKey { case leadHours = "lead_h", candidates, kept, dropped, reasons }
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(leadHours, forKey: .leadHours)
        try c.encode(candidates, forKey: .candidates)
        try c.encode(kept, forKey: .kept)
        try c.encode(dropped, forKey: .dropped)
        try c.encode(reasons, forKey: .reasons)
    }
}

/// The validated samples of one partition: every lead time's kept sample times.
public struct PartitionSamples: Encodable {
    public var partition: Partition
    public var leads: [LeadSamples]
    public var count: Int { leads.reduce(0) { $0 + $1.kept } }

    /// Sample `i` of the partition, leads concatenated in order (the index the coordinator shards).
    public func sample(_ i: Int) -> Sample {
        var i = i
        for l in leads {
            if i < l.times.count { return Sample(t0: l.times[i], lead: EpochSeconds(l.leadHours) * UTCTime.hour) }
            i -= l.times.count
        }
        preconditionFailure("sample index out of range")
    }
}

/// Validated sample index (DATA-FORMAT §4): only samples whose every read is available and whose
/// target is not NaN are kept; everything else is counted per variable and reason, up front, so no
/// read can fail mid-epoch.
public struct SampleIndex {
    public let spec: SampleSpec
    public let partitions: [PartitionSamples]

    public init(spec: SampleSpec, catalog: DataCatalog) throws {
        self.spec = spec
        // Resolve every variable first: an unknown one, or one whose file is absent, is a configuration
        // error (all reported together), not a dropped sample.
        try catalog.requireReads(for: spec)
        let inputs = try spec.inputs.map { try catalog.channels(of: $0)[0] }
        _ = try spec.constants.map { try catalog.channels(of: $0) }
        let target = try catalog.channels(of: spec.target)[0]
        var nanCache = NaNCache(source: target)
        partitions = try spec.partitions.map { p in
            PartitionSamples(
                partition: p,
                leads: try spec.leads.map { lead in
                    try SampleIndex.index(
                        p, lead: lead, spec: spec, inputs: inputs, target: target, nanCache: &nanCache)
                })
        }
    }

    public func samples(_ name: Partition.Name) -> PartitionSamples { partitions.first { $0.partition.name == name }! }

    /// The partition's samples, or an error explaining why there are none.
    public func requireSamples(_ name: Partition.Name) throws -> PartitionSamples {
        let s = samples(name)
        if s.count > 0 { return s }
        let p = s.partition
        let why = s.leads.flatMap(\.reasons).reduce(into: [String: Int]()) {
            $0["\($1.variable): \($1.reason)", default: 0] += $1.count
        }
        .sorted { $0.key < $1.key }.map { "\($0.key) (\($0.value) samples)" }
        let candidates = s.leads.reduce(0) { $0 + $1.candidates }
        throw SwiftRainError(
            "\(name.rawValue) partition", "has no usable samples",
            expected: "samples between \(UTCTime.short(p.start)) and \(UTCTime.short(p.end))",
            found: candidates == 0
                ? "the partition is shorter than the history window plus the longest lead"
                : "all \(candidates) candidates dropped: " + why.joined(separator: "; "),
            hint:
                """
                choose \(name.rawValue)_start/\(name.rawValue)_end inside the data's date ranges (`swiftrain \
                inspect` shows them), or add the missing data
                """
        )
    }

    private static func index(
        _ p: Partition, lead: EpochSeconds, spec: SampleSpec, inputs: [ChannelSource],
        target: ChannelSource, nanCache: inout NaNCache
    ) throws -> LeadSamples {
        let n = spec.sampleCount(p, lead: lead)
        let t00 = spec.firstSampleTime(p)
        var lo = 0, hi = n - 1  // kept k range, narrowed by each variable's availability
        var reasons: [DropCount] = []
        // A variable read at offsets o ∈ [minO, maxO] around t is available for all of them iff
        // first ≤ t + minO and t + maxO ≤ last: each variable keeps one contiguous range of k.
        func narrow(_ src: ChannelSource, minO: EpochSeconds, maxO: EpochSeconds) {
            guard let span = src.available, n > 0 else { return }
            let kFirst = ceilDiv(span.first - minO - t00, p.stride)
            let kLast = floorDiv(span.last - maxO - t00, p.stride)
            let before = min(n, max(0, Int(clamping: kFirst)))
            let after = min(n, max(0, n - 1 - Int(clamping: kLast)))
            if span.isEmpty || kFirst > kLast {
                reasons.append(
                    DropCount(
                        variable: src.variable,
                        reason: span.isEmpty
                            ? "no data at all"
                            : "unavailable (data covers \(UTCTime.short(span.first)) … \(UTCTime.short(span.last)))",
                        count: n))
                lo = n
                return
            }
            if before > 0 {
                reasons.append(
                    DropCount(
                        variable: src.variable, reason: "before first available time \(UTCTime.short(span.first))",
                        count: before))
            }
            if after > 0 {
                reasons.append(
                    DropCount(
                        variable: src.variable, reason: "after last available time \(UTCTime.short(span.last))",
                        count: after))
            }
            lo = max(lo, Int(kFirst))
            hi = min(hi, Int(kLast))
        }
        var seen = Set<String>()
        for src in inputs where seen.insert(src.variable).inserted {
            narrow(src, minO: spec.offsets.first ?? 0, maxO: spec.offsets.last ?? 0)
        }
        narrow(target, minO: lead, maxO: lead)

        var times: [EpochSeconds] = []
        var nan = 0
        // Rows the metadata lists as missing inside the spans (a converted dataset's missing dates): a sample
        // reading one is dropped here, not met as a NaN gradient mid-epoch.
        let holes = inputs.filter { !$0.missing.isEmpty }
        var missed: [String: Int] = [:]
        if lo <= hi {
            times.reserveCapacity(hi - lo + 1)
            for k in lo...hi {
                let t0 = t00 + EpochSeconds(k) * p.stride
                if let hit = holes.first(where: { s in spec.offsets.contains { s.missing.contains(t0 + $0) } }) {
                    missed[hit.variable, default: 0] += 1
                } else if target.missing.contains(t0 + lead) {
                    missed[target.variable, default: 0] += 1
                } else if try nanCache.isNaN(at: t0 + lead) {
                    nan += 1
                } else {
                    times.append(t0)
                }
            }
        }
        for (variable, count) in missed.sorted(by: { $0.key < $1.key }) {
            reasons.append(DropCount(variable: variable, reason: "missing time (missing_ts: a NaN row)", count: count))
        }
        if nan > 0 { reasons.append(DropCount(variable: target.variable, reason: "target contains NaN", count: nan)) }
        return LeadSamples(leadHours: Int(lead / UTCTime.hour), candidates: n, reasons: reasons, times: times)
    }
}

/// Remembers, per target row, whether its plane holds a NaN. Reads with pread so that scanning a
/// long partition does not grow the resident set.
struct NaNCache {
    let source: ChannelSource
    private var state: [UInt8]  // 0 unknown, 1 clean, 2 NaN
    private var buffer: [Float]

    init(source: ChannelSource) {
        self.source = source
        state = [UInt8](repeating: 0, count: source.file.rows)
        buffer = [Float](repeating: 0, count: source.file.height * source.file.width)
    }

    mutating func isNaN(at t: EpochSeconds) throws -> Bool {
        guard let r = source.row(at: t) else { return true }
        if state[r] == 0 {
            let f = source.file
            let count = buffer.count
            try buffer.withUnsafeMutableBufferPointer { b in
                try f.mapped.read(
                    into: b.baseAddress!, at: f.elementIndex(row: r, channel: source.channel), count: count)
            }
            state[r] = buffer.contains(where: { $0.isNaN }) ? 2 : 1
        }
        return state[r] == 2
    }
}

@inlinable
public func ceilDiv(_ a: Int64, _ b: Int64) -> Int64 { -floorDiv(-a, b) }
