import Foundation
import RainSupport

extension ConversionPlan {
    /// ERA5's 18 temporal channels in RainBench's file order (DATA-FORMAT §2) with WeatherBench's file
    /// prefixes: t2m, sp, tp, then for 300, 500 and 850 hPa ciwc, clwc, t, z, q.
    static let era5Channels: [(channel: Channel, prefix: String)] = {
        var c: [(Channel, String)] = [
            (Channel(name: "t2m", sourceVariable: "t2m"), "2m_temperature"),
            (Channel(name: "sp", sourceVariable: "sp"), "surface_pressure"),
            (Channel(name: "tp", sourceVariable: "tp"), "total_precipitation"),
        ]
        for p in [300, 500, 850] {
            for (v, prefix) in [
                ("ciwc", "specific_cloud_ice_water_content"), ("clwc", "specific_cloud_liquid_water_content"),
                ("t", "temperature"), ("z", "geopotential"), ("q", "specific_humidity"),
            ] {
                c.append((Channel(name: "\(v)_\(p)hPa", sourceVariable: v, pressure: p), prefix))
            }
        }
        return c
    }()

    /// ERA5's constants, in PyRain's channel order.
    public static let era5Constants = ["lat2d", "lon2d", "lsm", "orography", "slt"]

    /// PyRain's index of each of ERA5's 13 pressure levels (its `levels` entries).
    static let pressureIndex = [
        50: 0, 100: 1, 150: 2, 200: 3, 250: 4, 300: 5, 400: 6, 500: 7, 600: 8, 700: 9, 850: 10, 925: 11, 1000: 12,
    ]

    /// The ERA5 conversion of WeatherBench-layout files under `directory`.
    ///
    /// `variables`: channel names (`t2m`, `t_300hPa`), bare level variables (`t`: its three levels) and
    /// `const`; nil means all 18 channels and the constants. `years`: nil means every year with files.
    /// Level variables come from `<prefix>_<year>_<res>deg.nc` (a `level` axis, selected by value) or
    /// `<prefix>_<year>_<p>_<res>deg.nc` (one level). Every missing file is reported at once.
    public static func era5(
        directory: String, grid: RainGrid, variables: [String]?, years: ClosedRange<Int>?
    ) throws -> ConversionPlan {
        let files = try InputFiles(directory: directory)
        let res = grid.label
        var wanted = era5Channels
        var withConstants = true
        if let variables {
            let known = Set(era5Channels.map(\.channel.name)).union(era5Channels.map(\.channel.sourceVariable))
            let unknown = variables.filter { !known.contains($0) && $0 != "const" }
            guard unknown.isEmpty else {
                throw SwiftRainError(
                    "--variables", "unknown ERA5 variable(s) \(unknown.joined(separator: ", "))",
                    expected: "const, " + era5Channels.map(\.channel.name).joined(separator: ", ")
                        + " or a level variable (ciwc, clwc, t, z, q) for its three levels",
                    hint: "use RainBench's names")
            }
            wanted = era5Channels.filter {
                variables.contains($0.channel.name) || variables.contains($0.channel.sourceVariable)
            }
            withConstants = variables.contains("const")
        }
        func candidates(_ c: Channel, _ prefix: String, _ y: Int) -> [String] {
            var names = ["\(prefix)_\(y)_\(res)deg.nc"]
            if let p = c.pressure { names.insert("\(prefix)_\(y)_\(p)_\(res)deg.nc", at: 0) }
            return names
        }
        var chosen: [Int] = []
        if let years {
            chosen = Array(years)
        } else {
            let found = wanted.flatMap { c, prefix in
                files.years({ y in candidates(c, prefix, y)[0] }) + files.years({ y in candidates(c, prefix, y).last! })
            }
            if let a = found.min(), let b = found.max() { chosen = Array(a...b) }
        }
        var inputs: [Int: [[String]]] = [:]
        var missing: [String] = []
        if !wanted.isEmpty {
            guard !chosen.isEmpty else {
                throw SwiftRainError(
                    directory, "no ERA5 files at \(res)°",
                    expected: "WeatherBench files such as 2m_temperature_2016_\(res)deg.nc",
                    found: "\(files.byName.count) files, none matching",
                    hint: "point --from at the unpacked WeatherBench directory, pass --grid, or --variables const")
            }
            for y in chosen {
                inputs[y] = wanted.map { c, prefix in
                    let names = candidates(c, prefix, y)
                    if let path = names.lazy.compactMap({ files.byName[$0] }).first { return [path] }
                    missing.append(names.last!)
                    return []
                }
            }
        }
        var constants: (String, [String])?
        if withConstants {
            if let path = files.byName["constants_\(res)deg.nc"] {
                constants = (path, era5Constants)
            } else {
                missing.insert("constants_\(res)deg.nc", at: 0)
            }
        }
        guard missing.isEmpty else {
            let shown = missing.prefix(12).joined(separator: ", ") + (missing.count > 12 ? ", …" : "")
            throw SwiftRainError(
                directory, "\(missing.count) input file(s) missing for \(chosen.first ?? 0)…\(chosen.last ?? 0)",
                expected: "every selected variable for every year", found: "missing: " + shown,
                hint: "download them from WeatherBench, or narrow --years / --variables")
        }
        let dataset = "era" + grid.suffix
        return ConversionPlan(
            dataset: dataset, grid: grid, step: UTCTime.hour, years: wanted.isEmpty ? [] : chosen,
            channels: wanted.map(\.channel), inputs: inputs, constants: constants)
    }
}
