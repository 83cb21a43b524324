import RainConfig
import RainSupport

/// A named partition of sample times (DATA-FORMAT §4).
public struct Partition: Equatable, Codable {
    public enum Name: String, CaseIterable, Codable { case train, valid, test }
    public var name: Name
    public var start: EpochSeconds
    public var end: EpochSeconds
    /// Seconds between consecutive sample times t0.
    public var stride: EpochSeconds
}

/// What a sample is made of, derived from a `Config`: variables, time offsets, lead times, partitions.
public struct SampleSpec: Equatable {
    /// Temporal input variables in channel order (DATA-FORMAT §5.1).
    public var inputs: [String]
    /// Constant inputs in channel order (§5.3).
    public var constants: [String]
    public var target: String
    public var includeTime: Bool
    /// Input offsets relative to t0, seconds, oldest first (e.g. −12 h … 0).
    public var offsets: [EpochSeconds]
    /// Lead times, seconds (e.g. 24 h … 120 h).
    public var leads: [EpochSeconds]
    public var partitions: [Partition]

    /// ERA5 inputs of `era`/`era16_3`, in PyRain's channel order (DATA-FORMAT §5).
    public static let eraNames = [
        "sp", "t2m", "z_300hPa", "z_500hPa", "z_850hPa", "t_300hPa", "t_500hPa", "t_850hPa",
        "q_300hPa", "q_500hPa", "q_850hPa", "clwc_300hPa", "clwc_500hPa", "ciwc_500hPa",
        "clwc_850hPa", "ciwc_850hPa",
    ]
    public static let constantNames = ["lsm", "orography", "lat2d", "lon2d", "slt"]

    public var window: EpochSeconds { -(offsets.first ?? 0) }

    public init(_ c: Config) throws {
        func positive(_ v: Int, _ key: String) throws {
            if v <= 0 {
                throw SwiftRainError(
                    key, "must be positive", found: "\(v)", hint: "set \(key) to a positive number of hours")
            }
        }
        try positive(c.sampleFreq, "sample_freq")
        try positive(c.forecastFreq, "forecast_freq")
        try positive(c.forecastTimeWindow, "forecast_time_window")
        if c.sampleTimeWindow < 0 || c.sampleTimeWindow % c.sampleFreq != 0 {
            throw SwiftRainError(
                "sample_time_window", "must be a non-negative multiple of sample_freq",
                found: "window \(c.sampleTimeWindow) h, freq \(c.sampleFreq) h", hint: "e.g. 12 and 3")
        }
        if c.forecastTimeWindow % c.forecastFreq != 0 {
            throw SwiftRainError(
                "forecast_time_window", "must be a multiple of forecast_freq",
                found: "window \(c.forecastTimeWindow) h, freq \(c.forecastFreq) h", hint: "e.g. 120 and 24")
        }
        // Dataset names carry the grid: era5625 at 5.625°, era140625 at 1.40625°.
        let sfx = SyntheticDataset.suffix(grid: c.grid)
        let era = Self.eraNames.map { "era\(sfx)/\($0)" }, simsat = ["simsat\(sfx)/clbt"]
        switch c.sources {
        case .simsat: inputs = simsat
        case .era, .era16_3: inputs = era
        case .simsat_era: inputs = simsat + era
        }
        constants = Self.constantNames.map { "era\(sfx)/\($0)" }
        target = c.imerg ? "imerg\(sfx)/precipitationcal" : "era\(sfx)/\(c.eraTarget)"
        includeTime = c.incTime
        let h = UTCTime.hour
        offsets = stride(from: -c.sampleTimeWindow, through: 0, by: c.sampleFreq).map { EpochSeconds($0) * h }
        leads = stride(from: c.forecastFreq, through: c.forecastTimeWindow, by: c.forecastFreq).map {
            EpochSeconds($0) * h
        }

        // Default partitions (DATA-FORMAT §4).
        let hourly = c.sources == .era
        let trainStart: EpochSeconds =
            !hourly ? UTCTime.make(2016, 4, 1) : (c.imerg ? UTCTime.make(2000, 6, 1) : UTCTime.make(1979, 1, 1, 7))
        let stride = EpochSeconds(c.sampleStride ?? (hourly ? 1 : 3)) * h
        if stride <= 0 {
            throw SwiftRainError("sample_stride", "must be positive", found: "\(c.sampleStride ?? 0)", hint: "e.g. 3")
        }
        partitions = [
            Partition(
                name: .train, start: c.trainStart ?? trainStart, end: c.trainEnd ?? UTCTime.make(2017, 12, 31, 23),
                stride: stride),
            Partition(
                name: .valid, start: c.validStart ?? UTCTime.make(2018, 1, 6),
                end: c.validEnd ?? UTCTime.make(2018, 12, 31, 23), stride: stride),
            Partition(
                name: .test, start: c.testStart ?? UTCTime.make(2019, 1, 6),
                end: c.testEnd ?? UTCTime.make(2019, 12, 31, 23), stride: stride),
        ]
        for p in partitions where p.end < p.start {
            throw SwiftRainError(
                "\(p.name.rawValue)_start/\(p.name.rawValue)_end", "partition ends before it starts",
                found: "\(UTCTime.short(p.start)) … \(UTCTime.short(p.end))", hint: "swap or fix the dates")
        }
    }

    public func partition(_ name: Partition.Name) -> Partition { partitions.first { $0.name == name }! }

    /// Sample times t0(k) = start + window + k·stride for k < n (DATA-FORMAT §4).
    public func sampleCount(_ p: Partition, lead: EpochSeconds) -> Int {
        let span = p.end - p.start - (lead + window)
        return span < 0 ? 0 : Int(span / p.stride) + 1
    }
    public func firstSampleTime(_ p: Partition) -> EpochSeconds { p.start + window }

    /// Channel index of lead `lead` in the one-hot block.
    public func leadIndex(_ lead: EpochSeconds) -> Int? { leads.firstIndex(of: lead) }

    /// Scores' units (DATA-FORMAT §7): ERA5 tp is stored in metres and reported in mm; IMERG is mm/h;
    /// tp6h (WeatherBench 2's 6-hour totals) in mm over the 6 h ending at the valid time.
    public var targetUnits: (scale: Float, unit: String) {
        target.hasSuffix("/tp") ? (1000, "mm") : target.hasSuffix("/tp6h") ? (1000, "mm/6h") : (1, "mm/h")
    }
}
