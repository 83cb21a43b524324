import RainConfig
import RainSupport

/// What the model sees per time step (DATA-FORMAT §5): the input channels in order, and the grid.
///
///     channels  temporal inputs (one per level) | local solar time (3, optional) | constants | lead one-hot
///     names     `simsat5625/clbt:0` … (a multi-level variable, `key:i`), `era5625/sp`, `time/hour`,
///               `era5625/lsm`, `lead/24h`
///
/// Derived in one place from the configuration: the coordinator needs C_in before any data is seen (to
/// size the parameters), so the level counts are RainBench's; a worker derives it again from its data
/// (`init(spec:catalog:)`) and the two must agree. The assembler, the model's shape, `inspect`, `eval`
/// and `export` all read it.
public struct InputLayout: Equatable, Codable {
    public var channelNames: [String]
    public var height: Int, width: Int
    /// Time steps per sample (S): the input offsets.
    public var steps: Int
    public var channels: Int { channelNames.count }
    /// Floats per sample: [S, C_in, H, W].
    public var inputCount: Int { steps * channels * height * width }

    /// Levels per variable in RainBench's release: SimSat's `clbt` has three channels, every other
    /// input one.
    public static func releaseLevels(_ key: String) -> Int { key.hasSuffix("/clbt") ? 3 : 1 }

    /// From the configuration alone, with RainBench's level counts and the grid `grid` gives.
    public init(config: Config) throws {
        let spec = try SampleSpec(config)
        self.init(
            spec: spec, levels: Self.releaseLevels,
            height: Int((180 / config.grid).rounded()), width: Int((360 / config.grid).rounded()))
    }

    /// From the data: each variable's channels as `catalog` holds them, the grid of the target's file.
    /// Throws when a variable is missing, or when the data's channels differ from the configuration's
    /// (e.g. a SimSat file with another number of levels), naming both. (A grid that differs from
    /// `grid` shows as a parameter count the coordinator refuses, with its own message.)
    public init(spec: SampleSpec, catalog: DataCatalog, config: Config? = nil) throws {
        let target = try catalog.channels(of: spec.target)[0].file
        let counts = try Dictionary(
            uniqueKeysWithValues: (spec.inputs + spec.constants).map { ($0, try catalog.channels(of: $0).count) })
        self.init(spec: spec, levels: { counts[$0] ?? 1 }, height: target.height, width: target.width)
        guard let config else { return }
        let expected = try InputLayout(config: config)
        if expected.channelNames != channelNames {
            throw SwiftRainError(
                "input channels", "the data do not match the configuration",
                expected: "\(expected.channels): \(expected.channelNames.joined(separator: ", "))",
                found: "\(channels): \(channelNames.joined(separator: ", "))",
                hint: "use RainBench's datasets as released (SimSat clbt has 3 levels, every other input 1)")
        }
    }

    init(spec: SampleSpec, levels: (String) -> Int, height: Int, width: Int) {
        func names(_ key: String) -> [String] {
            let n = levels(key)
            return n > 1 ? (0..<n).map { "\(key):\($0)" } : [key]
        }
        var all = spec.inputs.flatMap(names)
        if spec.includeTime { all += ["time/hour", "time/day", "time/month"] }
        all += spec.constants.flatMap(names)
        all += spec.leads.map { "lead/\($0 / UTCTime.hour)h" }
        channelNames = all
        self.height = height
        self.width = width
        steps = spec.offsets.count
    }
}
