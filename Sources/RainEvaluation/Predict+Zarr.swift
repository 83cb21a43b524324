import Foundation
import RainData
import RainNetCDF
import RainSupport
import RainZarr

/// `predict --format zarr`: the forecasts in WeatherBench 2's forecast layout, which xarray.open_zarr and
/// WeatherBench 2's evaluation read:
///
///     <variable>(time, prediction_timedelta, longitude, latitude)   float32, chunks of one init time
///     time                  int64 seconds since 1970-01-01 (the init time, UTC)
///     prediction_timedelta  int64 hours (decoded as timedelta64)
///     latitude ascending, longitude from 0° E
///
/// ERA5 targets carry WeatherBench 2's names and units (total_precipitation_6hr / total_precipitation, m);
/// IMERG's is `precipitation` in mm h-1. Written from the NetCDF forecast one init time at a time, so the
/// two hold the same forecasts and memory stays at one init time.
enum ForecastZarr {
    /// WeatherBench 2's name, units and the factor from the NetCDF's values.
    static func naming(target: String) -> (name: String, units: String, factor: Double) {
        if target.hasSuffix("/tp6h") { return ("total_precipitation_6hr", "m", 1e-3) }
        if target.hasSuffix("/tp") { return ("total_precipitation", "m", 1e-3) }
        return ("precipitation", "mm h-1", 1)
    }

    static func write(netcdf: String, zarr: String, target: String, about: [String: String]) throws {
        let file = try NetCDFFile.open(path: netcdf)
        defer { try? file.close() }
        func variable(_ name: String) throws -> Int32 {
            guard let v = file.variable(name) else {
                throw SwiftRainError(netcdf, "no variable \(name)", hint: "this is a bug; please report it")
            }
            return v
        }
        let inits = try file.readDoubles(try variable("init_time"))
        let leads = try file.readDoubles(try variable("lead_time"))
        let lats = try file.readDoubles(try variable("lat")), lons = try file.readDoubles(try variable("lon"))
        let (name, units, factor) = naming(target: target)
        var attributes: [String: ZarrJSON] = ["Conventions": .string("CF-1.8")]
        for (k, v) in about { attributes[k] = .string(v) }
        let w = try ZarrWriter(path: zarr, attributes: attributes)
        try w.writeArray(
            .init(
                name: "time", dtype: "<i8", shape: [inits.count], chunks: [], dimensions: ["time"],
                attributes: [
                    "units": .string("seconds since 1970-01-01"), "calendar": .string("proleptic_gregorian"),
                    "standard_name": .string("forecast_reference_time"), "long_name": .string("initialisation time"),
                ]), values: inits)
        try w.writeArray(
            .init(
                name: "prediction_timedelta", dtype: "<i8", shape: [leads.count], chunks: [],
                dimensions: ["prediction_timedelta"],
                attributes: [
                    "units": .string("hours"), "dtype": .string("timedelta64[ns]"),
                    "standard_name": .string("forecast_period"),
                ]), values: leads)
        try w.writeArray(
            .init(
                name: "latitude", dtype: "<f8", shape: [lats.count], chunks: [], dimensions: ["latitude"],
                attributes: ["units": .string("degrees_north"), "standard_name": .string("latitude")]), values: lats)
        try w.writeArray(
            .init(
                name: "longitude", dtype: "<f8", shape: [lons.count], chunks: [], dimensions: ["longitude"],
                attributes: ["units": .string("degrees_east"), "standard_name": .string("longitude")]), values: lons)
        let h = lats.count, wd = lons.count, l = leads.count
        var fields = [(name, try variable("precipitation"), "SwiftRain ConvLSTM forecast of \(target)")]
        if let truth = file.variable("truth") { fields.append(("truth", truth, "observed \(target)")) }
        for (out, v, longName) in fields {
            try w.addArray(
                .init(
                    name: out, dtype: "<f4", shape: [inits.count, l, wd, h], chunks: [1, l, wd, h],
                    dimensions: ["time", "prediction_timedelta", "longitude", "latitude"],
                    attributes: ["units": .string(units), "long_name": .string(longName)], fillValue: .number(.nan)))
            for k in inits.indices {
                let slab = try file.readFloats(v, start: [k, 0, 0, 0], count: [1, l, h, wd])
                // (lead, lat, lon) → (lead, lon, lat), in WeatherBench 2's units.
                var t = [Double](repeating: .nan, count: slab.count)
                for q in 0..<l {
                    for y in 0..<h {
                        for x in 0..<wd { t[(q * wd + x) * h + y] = Double(slab[(q * h + y) * wd + x]) * factor }
                    }
                }
                try w.writeChunk(out, [k, 0, 0, 0], bytes: ZarrWriter.encode(t, dtype: "<f4"))
            }
        }
        try w.finish()
    }
}
