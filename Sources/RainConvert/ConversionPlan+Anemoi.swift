import Foundation
import RainData
import RainSupport
import RainZarr

extension ConversionPlan {
    /// RainBench's name of an anemoi variable: ERA5's parameters under PyRain's names (`2t` → `t2m`, `t_850`
    /// → `t_850hPa`, WeatherBench 2's long names too); precipitation over the dataset's step (`tp` → `tp6h`
    /// in a 6-hourly dataset, anemoi's accumulations being over the step); anything else keeps its name.
    static func rainBenchName(param: String, level: Int?, step: EpochSeconds) -> String {
        let long: [String: String] = [
            "temperature": "t", "geopotential": "z", "specific_humidity": "q",
            "specific_cloud_ice_water_content": "ciwc", "specific_cloud_liquid_water_content": "clwc",
            "2m_temperature": "t2m", "2t": "t2m", "surface_pressure": "sp", "total_precipitation": "tp",
        ]
        let p = long[param] ?? param
        if let level { return "\(p)_\(level)hPa" }
        if p == "tp" && step != 3600 { return "tp\(step / 3600)h" }
        if param == "total_precipitation_6hr" { return "tp6h" }
        return p
    }

    /// anemoi's static fields that become RainBench's constants: output name → (parameters, factor).
    static let anemoiConstants: [(name: String, params: Set<String>, factor: Double)] = [
        ("lsm", ["lsm", "land_sea_mask"], 1), ("orography", ["z", "geopotential_at_surface"], 1 / gravity),
        ("slt", ["slt", "soil_type"], 1),
    ]

    /// The conversion of an anemoi-datasets store: its variables, at its step, on the grid its cells form
    /// (or area-averaged onto a coarser `grid`), in RainBench's channel order where RainBench knows them
    /// and the dataset's order after; `lsm`, surface `z` (÷ g) and `slt` become the constants file.
    /// `variables`: output or dataset names and `const` (nil: all).
    public static func anemoi(
        path: String, grid requested: RainGrid?, variables: [String]?, years: ClosedRange<Int>?, member: Int
    ) throws -> ConversionPlan {
        let dataset = try AnemoiDataset(store: ZarrStore(path: path), member: member)
        let grid = requested ?? dataset.grid
        guard grid.resolution >= dataset.grid.resolution else {
            throw SwiftRainError(
                "--grid", "finer than the dataset", expected: "\(dataset.grid.label)° or coarser",
                found: "\(grid.label)°", hint: "omit --grid to keep the dataset's \(dataset.grid.label)°")
        }
        var temporal: [Channel] = [], constants: [String: (array: String, factor: Double)] = [:]
        for name in dataset.variables {
            let (param, level) = dataset.parameters[name]!
            if level == nil, let c = anemoiConstants.first(where: { $0.params.contains(param) }) {
                constants[c.name] = (name, c.factor)
                continue
            }
            temporal.append(
                Channel(
                    name: rainBenchName(param: param, level: level, step: dataset.step), sourceVariable: name,
                    pressure: level))
        }
        // RainBench's order first (t2m, sp, tp, then levels), then the rest as the dataset has them.
        let order = era5Channels.map(\.channel.name).flatMap { $0 == "tp" ? ["tp", "tp6h"] : [$0] }
        temporal = temporal.enumerated().sorted {
            (order.firstIndex(of: $0.element.name) ?? order.count + $0.offset)
                < (order.firstIndex(of: $1.element.name) ?? order.count + $1.offset)
        }.map(\.element)
        let duplicates = Dictionary(grouping: temporal, by: \.name).filter { $0.value.count > 1 }
        if let (name, sources) = duplicates.first {
            throw SwiftRainError(
                path, "two variables would both be \(name)",
                found: sources.map(\.sourceVariable).joined(separator: ", "),
                hint: "choose one with --variables")
        }
        var withConstants = !constants.isEmpty
        if let variables {
            let known = Set(temporal.flatMap { [$0.name, $0.sourceVariable] }).union(["const"])
            let unknown = variables.filter { !known.contains($0) }
            guard unknown.isEmpty else {
                throw SwiftRainError(
                    "--variables", "not in \(path): \(unknown.joined(separator: ", "))",
                    expected: "const or among " + temporal.map(\.name).joined(separator: ", "),
                    hint: "use RainBench's names or the dataset's")
            }
            temporal = temporal.filter { variables.contains($0.name) || variables.contains($0.sourceVariable) }
            withConstants = variables.contains("const") && !constants.isEmpty
        }
        guard let first = dataset.dates.first, let last = dataset.dates.last else {
            throw SwiftRainError(path, "no dates", hint: "the dataset is empty")
        }
        let chosen = Array(years ?? UTCTime.fields(first).year...UTCTime.fields(last).year)
        let names = ["lat2d", "lon2d"] + anemoiConstants.map(\.name).filter { constants[$0] != nil }
        var plan = ConversionPlan(
            dataset: "era" + grid.suffix, grid: grid, step: dataset.step, years: temporal.isEmpty ? [] : chosen,
            channels: temporal,
            inputs: Dictionary(uniqueKeysWithValues: chosen.map { ($0, temporal.map { _ in [path] }) }),
            constants: withConstants ? (path, names) : nil)
        plan.zarrStore = path
        plan.zarrConstants = constants
        plan.anemoiMember = member
        return plan
    }

    /// The variable `name` of the plan's Zarr store: an array of it (WeatherBench 2, ARCO-ERA5) or, for an
    /// anemoi dataset, a variable of its data array (`constant`: one plane, its first date not missing).
    func zarrVariable(_ store: ZarrStore, _ name: String, constant: Bool = false) throws -> GriddedVariable {
        guard let member = anemoiMember else { return try ZarrVariable(store: store, name: name) }
        return try AnemoiVariable(dataset: AnemoiDataset(store: store, member: member), name: name, constant: constant)
    }

    /// anemoi's statistics as a normalisation JSON for the plan's channels and constants (orography's
    /// scaled as the field is; lat2d and lon2d computed from the grid).
    public func anemoiNormalisation() throws -> [String: (mean: Double, std: Double)] {
        guard let path = zarrStore, let member = anemoiMember else { return [:] }
        let stats = try AnemoiDataset(store: ZarrStore(path: path), member: member).statistics()
        var out: [String: (mean: Double, std: Double)] = [:]
        for c in channels { out["\(dataset)/\(c.name)"] = stats[c.sourceVariable] }
        guard let names = constants?.names else { return out }
        // As `swiftrain normalize` computes a constant's statistics: RunningStats over the Float plane written.
        func moments(_ v: [Float]) -> (mean: Double, std: Double) {
            var r = RunningStats()
            v.withUnsafeBufferPointer { r.add($0) }
            return (r.stats.mean, r.stats.std)
        }
        let g = grid
        for name in names {
            switch name {
            case "lat2d": out["\(dataset)/lat2d"] = moments((0..<g.plane).map { Float(g.latitude($0 / g.width)) })
            case "lon2d":
                out["\(dataset)/lon2d"] = moments((0..<g.plane).map { Float(Double($0 % g.width) * g.resolution) })
            default:
                guard let (array, factor) = zarrConstants[name], let s = stats[array] else { continue }
                out["\(dataset)/\(name)"] = (s.mean * factor, s.std * abs(factor))
            }
        }
        return out
    }
}
