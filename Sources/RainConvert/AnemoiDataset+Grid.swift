import Foundation
import RainSupport
import RainZarr

extension AnemoiDataset {
    /// The regular grid the cells form, found from their coordinates (not from their order): every cell
    /// must sit on a cell centre of RainBench's 5.625° or 1.40625° grid, each centre held by one cell.
    static func grid(_ store: ZarrStore, _ attrs: [String: ZarrJSON], cells: Int) throws -> (RainGrid, [Int]) {
        let path = store.url.path
        let lats = try store.require("latitudes", for: "the cells' latitudes").readAll()
        let lons = try store.require("longitudes", for: "the cells' longitudes").readAll()
        let shape = attrs["field_shape"]?.array?.compactMap(\.int) ?? []
        let distinctLats = Set(lats.map { ($0 * 1e4).rounded() }).count
        let distinctLons = Set(lons.map { (($0 + 360).truncatingRemainder(dividingBy: 360) * 1e4).rounded() }).count
        let found =
            "field_shape \(shape), \(cells) cells on \(distinctLats) latitudes "
            + "\(lats.min() ?? .nan)…\(lats.max() ?? .nan) and \(distinctLons) longitudes"
        func refuse(_ what: String) -> SwiftRainError {
            SwiftRainError(
                path, what,
                expected: "a regular 5.625° (32 × 64) or 1.40625° (128 × 256) grid of cell centres, latitudes "
                    + "±87.1875 or ±89.296875, as WeatherBench's",
                found: found,
                hint: "create the dataset on WeatherBench's grid (e.g. anemoi-datasets from WeatherBench 2's "
                    + "64×32 Zarr or WeatherBench's NetCDF), or regrid it conservatively to 5.625° first")
        }
        guard lats.count == cells, lons.count == cells else {
            throw refuse("latitudes/longitudes do not hold one value per cell of the data (\(cells))")
        }
        guard shape.count == 2 || shape.isEmpty else { throw refuse("not a regular latitude–longitude grid") }
        let height = shape.first ?? distinctLats
        guard let res = RainGrid.supported.first(where: { Int((180 / $0).rounded()) == height }),
            let grid = try? RainGrid(resolution: res), grid.plane == cells
        else { throw refuse("not one of RainBench's grids") }
        var index = [Int](repeating: -1, count: cells)
        var taken = [Int](repeating: -1, count: cells)
        for c in 0..<cells {
            let y = (lats[c] - grid.latitude(0)) / res
            let x = (lons[c] + 360).truncatingRemainder(dividingBy: 360) / res
            let row = Int(y.rounded()), column = Int(x.rounded()) % grid.width
            guard abs(y - y.rounded()) < 1e-4, abs(x - x.rounded()) < 1e-4, (0..<grid.height).contains(row) else {
                throw refuse(
                    "cell \(c) at (\(lats[c]), \(lons[c])) is not on a cell centre of the \(grid.label)° grid")
            }
            let p = row * grid.width + column
            guard taken[p] < 0 else {
                throw refuse("cells \(taken[p]) and \(c) are both at (\(lats[c]), \(lons[c]))")
            }
            taken[p] = c
            index[c] = p
        }
        return (grid, index)
    }

    /// Raw values of variable `v` for dates `range` as `range.count` planes in RainBench's order; the
    /// dataset's missing dates are NaN.
    func planes(variable v: Int, _ range: Range<Int>) throws -> [Double] {
        let cells = data.shape[3], plane = grid.plane
        let raw = try data.read(start: [range.lowerBound, v, member, 0], count: [range.count, 1, 1, cells])
        var out = [Double](repeating: .nan, count: range.count * plane)
        for (k, d) in range.enumerated() where !missing.contains(d) {
            for c in 0..<cells { out[k * plane + planeIndex[c]] = raw[k * cells + c] }
        }
        return out
    }

    /// `mean` and `stdev` of every variable (anemoi's statistics over its statistics period and grid).
    func statistics() throws -> [String: (mean: Double, std: Double)] {
        let mean = try store.require("mean", for: "the variables' statistics").readAll()
        let std = try store.require("stdev", for: "the variables' statistics").readAll()
        guard mean.count == variables.count, std.count == variables.count else {
            throw SwiftRainError(
                "\(path)/mean", "statistics that do not match the variables",
                expected: "\(variables.count) values each", found: "mean \(mean.count), stdev \(std.count)",
                hint: "recompute them: anemoi-datasets finalise (or compute the normalisation: swiftrain normalize)")
        }
        return Dictionary(uniqueKeysWithValues: variables.indices.map { (variables[$0], (mean[$0], std[$0])) })
    }
}

/// One variable of an anemoi dataset as a GriddedVariable: (time, latitude, longitude) on the grid its cells
/// form, times from its dates; with `constant`, (latitude, longitude) at its first date that is not missing.
struct AnemoiVariable: GriddedVariable {
    let dataset: AnemoiDataset
    let name: String
    let index: Int
    let constant: Bool

    init(dataset: AnemoiDataset, name: String, constant: Bool = false) throws {
        guard let i = dataset.variables.firstIndex(of: name) else {
            throw SwiftRainError(
                dataset.path, "no variable '\(name)'", expected: "one of \(dataset.variables.joined(separator: ", "))",
                hint: "pick variables the dataset holds (anemoi-datasets inspect lists them)")
        }
        self.dataset = dataset
        self.name = name
        index = i
        self.constant = constant
    }

    var path: String { dataset.path }

    var dimensions: [(name: String, length: Int)] {
        let g = dataset.grid
        return (constant ? [] : [("time", dataset.dates.count)]) + [("latitude", g.height), ("longitude", g.width)]
    }

    func coordinate(_ dim: String) throws -> [Double]? {
        let g = dataset.grid
        switch dim {
        case "time": return dataset.dates.map(Double.init)
        case "latitude": return (0..<g.height).map(g.latitude)
        case "longitude": return (0..<g.width).map { Double($0) * g.resolution }
        default: return nil
        }
    }

    func text(_ key: String, of variable: String?) throws -> String? {
        variable == "time" && key == "units" ? "seconds since 1970-01-01 00:00:00" : nil
    }

    func numbers(_ key: String, of variable: String?) throws -> [Double]? { nil }

    func fills() throws -> [Double] { [] }

    func read(start: [Int], count: [Int]) throws -> [Double] {
        guard constant else { return try dataset.planes(variable: index, start[0]..<start[0] + count[0]) }
        guard let d = dataset.dates.indices.first(where: { !dataset.missing.contains($0) }) else {
            throw SwiftRainError(dataset.path, "every date is missing", hint: "the dataset holds no data")
        }
        return try dataset.planes(variable: index, d..<d + 1)
    }
}
