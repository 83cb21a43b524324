import Foundation
import RainNetCDF
import RainSupport

/// RainBench's regular grid: `height` latitudes ascending from −90° + res/2 (row 0 southernmost), `width`
/// longitudes from 0° E eastwards (DATA-FORMAT §2).
public struct RainGrid: Equatable {
    public var resolution: Double
    public var height: Int { Int((180 / resolution).rounded()) }
    public var width: Int { Int((360 / resolution).rounded()) }
    public var plane: Int { height * width }
    /// "5.625" or "1.40625", as in WeatherBench's file names.
    public var label: String { resolution == 5.625 ? "5.625" : "1.40625" }
    /// "5625" or "140625", as in RainBench's dataset names (era5625).
    public var suffix: String { label.replacingOccurrences(of: ".", with: "") }

    public static let supported: [Double] = [5.625, 1.40625]

    public init(resolution: Double) throws {
        guard Self.supported.contains(resolution) else {
            throw SwiftRainError(
                "--grid", "unsupported grid", expected: "5.625 or 1.40625 (RainBench's grids)",
                found: "\(resolution)", hint: "pick one of the two")
        }
        self.resolution = resolution
    }

    public func latitude(_ row: Int) -> Double { -90 + resolution / 2 + Double(row) * resolution }
}

/// One variable of a NetCDF file or Zarr store, read as RainBench planes: Float, rows south to north, columns
/// from 0° E, `_FillValue`/`missing_value`/unwritten cells as NaN, `scale_factor`/`add_offset` applied.
/// Dimensions may come in any order (time, [level], lat, lon or IMERG's time, lon, lat).
final class SourceField {
    let variable: GriddedVariable
    private let dims: [(name: String, length: Int)]
    private let axis: (time: Int?, level: Int?, lat: Int, lon: Int)
    /// UTC time of each time index (empty without a time axis).
    let times: [EpochSeconds]
    /// Level coordinate values (hPa) when the variable has a level axis.
    let levels: [Double]?
    private let flipLat: Bool
    private let lonShift: Int  // output column of source column 0
    private let fills: [Double]
    private let scale: Double, offset: Double
    private let grid: RainGrid
    /// Set when the file's grid is finer than RainBench's.
    private let regridder: ConservativeRegridder?
    /// Source cells per time index and level (what one plane costs to read).
    var sourcePlane: Int { regridder.map { $0.sourceRows * $0.sourceColumns } ?? grid.plane }
    /// "file: variable", for errors.
    var subject: String { "\(variable.path): \(variable.name)" }
    var name: String { variable.name }

    static let timeNames: Set<String> = ["time", "valid_time"]
    static let levelNames: Set<String> = ["level", "plev", "isobaricInhPa", "pressure_level", "lev"]
    static let latNames: Set<String> = ["lat", "latitude"]
    static let lonNames: Set<String> = ["lon", "longitude"]

    /// A NetCDF variable (`name` may be a path into groups and list alternatives separated by |).
    convenience init(
        file: NetCDFFile, variable name: String, grid: RainGrid, impliedTimes: (EpochSeconds, EpochSeconds)? = nil,
        channelAxis: Bool = false
    ) throws {
        try self.init(
            try NetCDFVariable(file: file, name: name), grid: grid, impliedTimes: impliedTimes, channelAxis: channelAxis
        )
    }

    /// `impliedTimes`: (first row's time, step) for files whose time axis has no coordinate.
    init(
        _ variable: GriddedVariable, grid: RainGrid, impliedTimes: (EpochSeconds, EpochSeconds)? = nil,
        channelAxis: Bool = false
    ) throws {
        self.variable = variable
        self.grid = grid
        let leaf = variable.name
        let subject = "\(variable.path): \(leaf)"
        let dims = variable.dimensions
        self.dims = dims
        func find(_ names: Set<String>) -> Int? { dims.firstIndex { names.contains($0.name) } }
        guard let lat = find(Self.latNames), let lon = find(Self.lonNames) else {
            throw SwiftRainError(
                subject, "no latitude/longitude dimensions",
                expected: "dimensions named lat/latitude and lon/longitude",
                found: dims.map(\.name).joined(separator: ", "), hint: "rename the dimensions (e.g. with ncrename)")
        }
        let time = find(Self.timeNames)
        // A channel axis of any name (SimSat's brightness temperatures): the one other long dimension.
        let level =
            find(Self.levelNames)
            ?? (channelAxis ? dims.indices.first { ![time, lat, lon].contains($0) && dims[$0].length > 1 } : nil)
        for (i, d) in dims.enumerated() where ![time, level, lat, lon].contains(i) && d.length != 1 {
            throw SwiftRainError(
                subject, "an extra dimension '\(d.name)' of length \(d.length)",
                expected: "time, [level,] lat, lon (other dimensions of length 1)",
                hint: "select one \(d.name) first (e.g. CDS files' expver: ncks -d expver,0)")
        }
        axis = (time, level, lat, lon)
        let path = variable.path

        // The grid: RainBench's latitudes (either order) and longitudes (starting anywhere on the circle).
        let lats = try Self.coordinate(variable, dims[lat].name, subject)
        let lons = try Self.coordinate(variable, dims[lon].name, subject)
        func gridError(_ what: String, _ found: String) -> SwiftRainError {
            SwiftRainError(
                subject, "\(what) is not RainBench's \(grid.label)° grid",
                expected: "\(grid.height) latitudes \(grid.latitude(0))…\(grid.latitude(grid.height - 1)), "
                    + "\(grid.width) longitudes every \(grid.label)°",
                found: found, hint: "regrid to \(grid.label)° first (WeatherBench's regrid.py), or pass --grid")
        }
        let latSummary = "\(lats.count) latitudes \(lats.first ?? .nan)…\(lats.last ?? .nan)"
        let lonSummary = "\(lons.count) longitudes \(lons.first ?? .nan)…\(lons.last ?? .nan)"
        // A finer grid (GPM IMERG's 0.1°) is averaged onto RainBench's by area; a coarser one is refused.
        if lats.count > grid.height && lons.count > grid.width {
            regridder = try ConservativeRegridder(lats: lats, lons: lons, grid: grid, subject: subject)
            flipLat = false
            lonShift = 0
        } else {
            regridder = nil
            guard lats.count == grid.height else { throw gridError("latitude", latSummary) }
            let ascending = (0..<grid.height).allSatisfy { abs(lats[$0] - grid.latitude($0)) < 1e-3 }
            let descending = (0..<grid.height).allSatisfy { abs(lats[grid.height - 1 - $0] - grid.latitude($0)) < 1e-3 }
            guard ascending || descending else { throw gridError("latitude", latSummary) }
            flipLat = descending && !ascending
            guard lons.count == grid.width else { throw gridError("longitude", lonSummary) }
            let first = (lons[0].truncatingRemainder(dividingBy: 360) + 360).truncatingRemainder(dividingBy: 360)
            let k = Int((first / grid.resolution).rounded())
            let onGrid = lons.enumerated().allSatisfy { j, x in
                let d = (x - Double(k + j) * grid.resolution).truncatingRemainder(dividingBy: 360)
                return min(abs(d), abs(abs(d) - 360)) < 1e-3
            }
            guard onGrid else { throw gridError("longitude", lonSummary) }
            lonShift = k % grid.width
        }

        // Time and levels.
        if let time, let (t0, step) = impliedTimes, try variable.coordinate(dims[time].name) == nil {
            times = (0..<dims[time].length).map { t0 + EpochSeconds($0) * step }
        } else if let time {
            let tname = dims[time].name
            guard let values = try variable.coordinate(tname), let units = try variable.text("units", of: tname)
            else {
                throw SwiftRainError(
                    subject, "the time coordinate has no units", expected: "a '\(tname)' variable with CF units",
                    hint: "add units (e.g. 'hours since 1900-01-01 00:00:00')")
            }
            let calendar = try variable.text("calendar", of: tname)
            let cf = try CFTime(units: units, calendar: calendar, subject: "\(path): \(tname)")
            times = try cf.times(values, subject: "\(path): \(tname)", units: units)
        } else {
            times = []
        }
        levels = try level.map { l in
            if channelAxis, try variable.coordinate(dims[l].name) == nil {
                return (0..<dims[l].length).map(Double.init)
            }
            return try Self.coordinate(variable, dims[l].name, subject)
        }

        // Packing and missing values (CF): fills compare against the packed values.
        fills = try variable.fills()
        scale = try variable.numbers("scale_factor", of: nil)?.first ?? 1
        offset = try variable.numbers("add_offset", of: nil)?.first ?? 0
    }

    private static func coordinate(_ variable: GriddedVariable, _ name: String, _ subject: String) throws -> [Double] {
        guard let c = try variable.coordinate(name) else {
            throw SwiftRainError(
                subject, "dimension '\(name)' has no coordinate variable", expected: "a '\(name)' variable",
                hint: "add the coordinate values")
        }
        return c
    }

    /// The index of pressure level `hPa` on the level axis.
    func levelIndex(_ hPa: Double) throws -> Int? {
        guard let levels else { return nil }
        guard let i = levels.firstIndex(where: { abs($0 - hPa) < 1e-6 }) else {
            throw SwiftRainError(
                subject, "no \(Int(hPa)) hPa level",
                expected: "\(Int(hPa)) among the level coordinate's values",
                found: levels.map { String(Int($0)) }.joined(separator: ", "),
                hint: "download the variable at \(Int(hPa)) hPa")
        }
        return i
    }

    /// Time indices `range` (all of a constant field: pass 0..<1) at level index `level`, as
    /// `range.count` planes of H×W in RainBench's order.
    func read(_ range: Range<Int>, level: Int?) throws -> [Float] {
        var start = dims.map { _ in 0 }, count = dims.map { _ in 1 }
        count[axis.lat] = dims[axis.lat].length
        count[axis.lon] = dims[axis.lon].length
        if let t = axis.time {
            start[t] = range.lowerBound
            count[t] = range.count
        }
        if let l = axis.level { start[l] = level ?? 0 }
        let raw = try variable.read(start: start, count: count)
        // Row-major strides of the hyperslab read.
        var strides = [Int](repeating: 1, count: dims.count)
        for i in stride(from: dims.count - 2, through: 0, by: -1) { strides[i] = strides[i + 1] * count[i + 1] }
        let h = grid.height, w = grid.width, n = axis.time == nil ? 1 : range.count
        let st = axis.time.map { strides[$0] } ?? 0, sy = strides[axis.lat], sx = strides[axis.lon]
        let packed = scale != 1 || offset != 0  // unpacked values pass untouched (−0 stays −0)
        if let regridder {
            return (0..<n).flatMap { t in
                regridder.apply { i, j in
                    let r = raw[t * st + i * sy + j * sx]
                    if r.isNaN || fills.contains(r) { return nil }
                    return packed ? r * scale + offset : r
                }
            }
        }
        var out = [Float](repeating: .nan, count: n * h * w)
        for t in 0..<n {
            for y in 0..<h {
                let sourceRow = flipLat ? h - 1 - y : y
                for j in 0..<w {
                    let x = (j + lonShift) % w
                    let r = raw[t * st + sourceRow * sy + j * sx]
                    if r.isNaN || fills.contains(r) { continue }
                    out[(t * h + y) * w + x] = Float(packed ? r * scale + offset : r)
                }
            }
        }
        return out
    }
}
