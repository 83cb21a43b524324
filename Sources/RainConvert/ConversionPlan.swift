import Foundation
import RainSupport

/// What one `swiftrain convert` writes: a RainBench dataset directory with one temporal file (T, C, H, W)
/// of `channels` every `step` over whole `years`, and optionally a constants file (C, H, W).
public struct ConversionPlan {
    /// One output channel and where it comes from.
    public struct Channel: Equatable, Codable {
        /// RainBench's variable name (`t2m`, `t_300hPa`, `clbt`).
        public var name: String
        /// The variable inside the input file (`t2m`, `t`, `clbt`).
        public var sourceVariable: String
        /// The pressure level (hPa) to select on the file's level axis, for level variables.
        public var pressure: Int?
        /// A channel index on the file's level axis (SimSat's 3 brightness temperatures), when not by pressure.
        public var levelIndex: Int?
        /// The channel count of the RainBench variable this channel belongs to (SimSat's clbt: 3), and
        /// its position in it.
        public var group: String
        public var indexInGroup: Int

        public init(
            name: String, sourceVariable: String, pressure: Int? = nil, levelIndex: Int? = nil,
            group: String? = nil, indexInGroup: Int = 0
        ) {
            self.name = name
            self.sourceVariable = sourceVariable
            self.pressure = pressure
            self.levelIndex = levelIndex
            self.group = group ?? name
            self.indexInGroup = indexInGroup
        }
    }

    /// RainBench's dataset name (`era5625`), also the output directory's name.
    public var dataset: String
    public var grid: RainGrid
    public var step: EpochSeconds
    /// Whole years, ascending (empty for a constants-only dataset).
    public var years: [Int]
    public var channels: [Channel]
    /// The input files of every channel in every year: inputs[year][channel index] (ERA5: one file a
    /// year; IMERG: one a day).
    public var inputs: [Int: [[String]]]
    /// For files without a time coordinate (PyRain's daily IMERG files): the time of their first row;
    /// rows follow every `step`.
    public var impliedStart: [String: EpochSeconds] = [:]
    /// The constants file and its variables in output order (ERA5: lat2d, lon2d, lsm, orography, slt).
    public var constants: (path: String, names: [String])?
    /// Rows are the mean of every source time inside [row time, row time + step) (GPM's half-hours
    /// into hourly rows), not one source time each.
    public var meanOverStep = false
    /// Every input is this Zarr store (`convert era5 --from STORE.zarr`): channels are its arrays.
    public var zarrStore: String?
    /// Constants made from a Zarr store's static arrays: output name → (array, factor) (orography =
    /// geopotential_at_surface / g); lat2d and lon2d come from the grid.
    public var zarrConstants: [String: (array: String, factor: Double)] = [:]
    /// The Zarr store is an anemoi dataset (`convert anemoi`): channels are variables of its data array, and
    /// this ensemble member is read.
    public var anemoiMember: Int?
    /// Optional bounds inside the years (SimSat ends 2020-03-31 21:00): rows outside are not written.
    public var first: EpochSeconds?, last: EpochSeconds?

    public init(
        dataset: String, grid: RainGrid, step: EpochSeconds, years: [Int], channels: [Channel],
        inputs: [Int: [[String]]], constants: (path: String, names: [String])? = nil
    ) {
        self.dataset = dataset
        self.grid = grid
        self.step = step
        self.years = years
        self.channels = channels
        self.inputs = inputs
        self.constants = constants
    }

    public var temporalFile: String { "\(dataset)__\(dataset).mmap" }
    public var constantFile: String { "\(dataset)__\(dataset)_const.mmap" }

    /// The first and last row times of `year` (clipped to the plan's bounds).
    func rows(of year: Int) -> (first: EpochSeconds, last: EpochSeconds) {
        var a = UTCTime.make(year, 1, 1), b = UTCTime.make(year + 1, 1, 1) - step
        if let f = first { a = max(a, f) }
        if let l = last { b = min(b, l) }
        return (a, b)
    }
}

/// Input files found under a directory (it and its subdirectories, as WeatherBench's archives unpack).
struct InputFiles {
    let byName: [String: String]

    init(directory: String) throws {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: directory, isDirectory: &isDir), isDir.boolValue else {
            throw SwiftRainError(
                directory, "no such directory", expected: "the directory holding the input NetCDF files",
                hint: "pass --from DIR (WeatherBench's zips unpack to one directory per variable; DIR may hold those)")
        }
        // Any depth (GPM's archives go YEAR/DAY-OF-YEAR/), the shallowest file of a name first.
        var found: [String: (depth: Int, path: String)] = [:]
        let root = URL(fileURLWithPath: directory)
        for relative in fm.enumerator(atPath: directory)?.compactMap({ $0 as? String }) ?? [] {
            let url = root.appendingPathComponent(relative)
            guard fm.fileExists(atPath: url.path, isDirectory: &isDir), !isDir.boolValue else { continue }
            let depth = relative.split(separator: "/").count
            if let old = found[url.lastPathComponent], old.depth <= depth { continue }
            found[url.lastPathComponent] = (depth, url.path)
        }
        byName = found.mapValues(\.path)
    }

    /// Years `y` for which `name(y)` exists.
    func years(_ name: (Int) -> String, in range: ClosedRange<Int> = 1900...2100) -> [Int] {
        range.filter { byName[name($0)] != nil }
    }
}
