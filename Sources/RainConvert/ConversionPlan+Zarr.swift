import Foundation
import RainSupport
import RainZarr

extension ConversionPlan {
    /// Standard gravity (m s⁻²): WeatherBench 1's orography is ERA5's surface geopotential divided by it.
    static let gravity = 9.806_65

    /// The ERA5 conversion of a Zarr store in WeatherBench 2's / ARCO-ERA5's naming (`2m_temperature`,
    /// `temperature` with a `level` axis by value, `total_precipitation[_6hr]`), at the store's own time step.
    ///
    /// An hourly store's `total_precipitation` becomes `tp`; a coarser store's `total_precipitation_6hr`
    /// becomes `tp6h` (metres over the 6 h ending at the row's time). Constants come from
    /// `land_sea_mask`, `geopotential_at_surface` (÷ g) and `soil_type`; lat2d and lon2d from the grid.
    public static func era5(
        zarr path: String, grid: RainGrid, variables: [String]?, years: ClosedRange<Int>?
    ) throws -> ConversionPlan {
        let store = try ZarrStore(path: path)
        let time = try ZarrVariable(store: store, name: "time")
        guard let units = try time.text("units", of: nil) else {
            throw SwiftRainError(
                "\(path)/time", "the time coordinate has no units",
                expected: "CF units such as 'hours since 1959-01-01'",
                hint: "write the store with xarray, which encodes time with units")
        }
        let cf = try CFTime(units: units, calendar: try time.text("calendar", of: nil), subject: "\(path)/time")
        let times = try cf.times(time.array.readAll(), subject: "\(path)/time", units: units)
        guard let first = times.first, let last = times.last else {
            throw SwiftRainError("\(path)/time", "no times", hint: "the store is empty")
        }
        let step = zip(times.dropFirst(), times).map { $0 - $1 }.min() ?? 3600
        guard step > 0, 86_400 % step == 0, step % 3600 == 0 else {
            throw SwiftRainError(
                "\(path)/time", "a time step RainBench's layout cannot hold", expected: "whole hours dividing a day",
                found: "\(step) s between \(UTCTime.iso(times[0])) and the next time",
                hint: "select a regular time axis first (xarray: ds.sel(time=…))")
        }
        let hourly = step == 3600
        var table: [(channel: Channel, array: String)] = era5Channels.map { c, prefix in (c, prefix) }
        if !hourly {
            table[2] = (Channel(name: "tp6h", sourceVariable: "total_precipitation_6hr"), "total_precipitation_6hr")
        }
        for i in table.indices { table[i].channel.sourceVariable = table[i].array }
        var wanted = table
        var withConstants = true
        if let variables {
            let known = Set(
                table.map(\.channel.name) + table.compactMap { $0.channel.pressure == nil ? nil : levelName($0) })
            let unknown = variables.filter { !known.contains($0) && $0 != "const" }
            guard unknown.isEmpty else {
                let precip = hourly ? "tp (this store is hourly)" : "tp6h (this store is \(step / 3600)-hourly)"
                throw SwiftRainError(
                    "--variables", "unknown variable(s) for this store: \(unknown.joined(separator: ", "))",
                    expected: "const, t2m, sp, \(precip), or level variables ciwc, clwc, t, z, q and their _300hPa, "
                        + "_500hPa, _850hPa channels", hint: "use RainBench's names")
            }
            wanted = table.filter { variables.contains($0.channel.name) || variables.contains(levelName($0)) }
            withConstants = variables.contains("const")
        }
        let constantArrays = [
            "lsm": ("land_sea_mask", 1.0), "orography": ("geopotential_at_surface", 1 / gravity),
            "slt": ("soil_type", 1.0),
        ]
        let needed = Set(wanted.map(\.array)).union(withConstants ? constantArrays.values.map(\.0) : [])
        let missing = needed.filter { (try? store.array($0)) == nil }.sorted()
        guard missing.isEmpty else {
            throw SwiftRainError(
                path, "\(missing.count) array(s) missing: \(missing.joined(separator: ", "))",
                expected: "WeatherBench 2 / ARCO-ERA5 names for every selected variable",
                found: store.arrayNames.prefix(30).joined(separator: ", "),
                hint: "narrow --variables (e.g. drop const), or use a store that has them")
        }
        let allYears = UTCTime.fields(first).year...UTCTime.fields(last).year
        let chosen = Array(years ?? allYears)
        let dataset = "era" + grid.suffix
        var plan = ConversionPlan(
            dataset: dataset, grid: grid, step: step, years: wanted.isEmpty ? [] : chosen,
            channels: wanted.map(\.channel),
            inputs: Dictionary(uniqueKeysWithValues: chosen.map { ($0, wanted.map { _ in [path] }) }),
            constants: withConstants ? (path, era5Constants) : nil)
        plan.zarrStore = path
        plan.zarrConstants = constantArrays.mapValues { (array: $0.0, factor: $0.1) }
        return plan
    }

    /// A level channel's bare variable name (`t` for `t_300hPa`).
    private static func levelName(_ entry: (channel: Channel, array: String)) -> String {
        entry.channel.pressure == nil ? entry.channel.name : String(entry.channel.name.split(separator: "_")[0])
    }
}
