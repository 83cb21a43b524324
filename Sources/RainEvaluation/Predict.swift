import Foundation
import RainConfig
import RainData
import RainModel
import RainNetCDF
import RainSupport
import RainTraining

/// `swiftrain predict --run DIR (--time T | --from D --to D [--every H]) [--out FILE.nc] [--truth]`:
/// the run's forecasts for every lead time as CF-conventions NetCDF-4, the layout WeatherBench-style
/// tools exchange and xarray opens:
///
///     precipitation(init_time, lead_time, lat, lon)   float32, mm h-1 (IMERG) or mm (ERA5 tp)
///     truth(init_time, lead_time, lat, lon)           with --truth: the observed field, NaN where missing
///     init_time(init_time)   int64 seconds since 1970-01-01 (UTC)    lead_time(lead_time)  int32 hours
///     valid_time(init_time, lead_time)  int64 seconds                lat(lat), lon(lon)    degrees
///
/// Init times whose inputs are missing (or hold NaN) are skipped and listed, never a crash. The file
/// grows one init time at a time (init_time is unlimited), so memory stays at one batch of forecasts.
public enum Predict {
    public struct Result: Encodable {
        public var path: String
        public var written: [String]
        /// "time: reason" for each init time left out.
        public var skipped: [String]
    }

    /// The init times from `from` to `to` (inclusive) every `every` seconds.
    public static func initTimes(from: EpochSeconds, to: EpochSeconds, every: EpochSeconds) throws -> [EpochSeconds] {
        guard every > 0, from <= to else {
            throw SwiftRainError(
                every > 0 ? "--from/--to" : "--every", every > 0 ? "an empty range" : "must be positive",
                found: every > 0 ? "\(UTCTime.short(from)) … \(UTCTime.short(to))" : "\(every / 3600) h",
                hint: "give --from before --to, and --every in hours (e.g. 24)")
        }
        guard (to - from) / every < 100_000 else {
            throw SwiftRainError(
                "--from/--to", "too many init times", expected: "at most 100000", found: "\((to - from) / every + 1)",
                hint: "raise --every or split the range")
        }
        return Array(stride(from: from, through: to, by: Int(every)).map { EpochSeconds($0) })
    }

    /// NetCDF (the layout above) or Zarr (WeatherBench 2's forecast layout, Predict+Zarr).
    public enum Format: String, CaseIterable { case netcdf, zarr }

    public static func run(
        runPath: String, times: [EpochSeconds], out: String?, truth: Bool, checkpoint: String? = nil,
        precision: Precision? = nil, format: Format = .netcdf, log: (String) -> Void
    ) throws -> Result {
        let run = try RunDirectory(path: runPath)
        let model = try run.trainedModel(checkpoint: checkpoint)
        let runner = try model.runner(precision: precision)
        let spec = runner.index.spec, shape = runner.shape, plane = shape.plane
        let (scale, unit) = spec.targetUnits
        let target = try runner.catalog.channels(of: spec.target)[0]
        let ext = format == .zarr ? "zarr" : "nc"
        let finalPath =
            out
            ?? run.url.appendingPathComponent(
                "predict/\(UTCTime.iso(times.first ?? 0).prefix(13))_\(UTCTime.iso(times.last ?? 0).prefix(13)).\(ext)"
            ).path
        // Zarr is written from a NetCDF forecast beside it, removed afterwards.
        let path = format == .zarr ? finalPath + ".nc" : finalPath
        try FileManager.default.createDirectory(
            at: URL(fileURLWithPath: path).deletingLastPathComponent(), withIntermediateDirectories: true)
        let partial = path + ".partial"  // renamed into place once complete: a reader never sees half a file
        let file = try NetCDFFile.create(path: partial)
        let vars = try define(
            file, spec: spec, shape: shape, unit: unit, truth: truth,
            about: [
                "checkpoint": model.checkpoint, "checkpoint_global_step": "\(model.state.globalStep)",
                "config_hash": model.config.hash, "target": spec.target,
            ])
        let leads = spec.leads
        try file.write(vars.lead, leads.map { Int32($0 / 3600) }, start: [0], count: [leads.count])
        try file.write(
            vars.lat, (0..<shape.height).map { -90 + 180 / Double(shape.height) * (Double($0) + 0.5) },
            start: [0], count: [shape.height])
        try file.write(
            vars.lon, (0..<shape.width).map { 360 / Double(shape.width) * Double($0) },
            start: [0], count: [shape.width])

        let ic = runner.assembler.inputCount
        var input = [Float](repeating: 0, count: leads.count * ic)
        var written: [String] = [], skipped: [String] = []
        for t0 in times {
            // Every lead's inputs for this init time (they differ only in the lead channel).
            let missing: String? = input.withUnsafeMutableBufferPointer { b in
                do {
                    for (l, lead) in leads.enumerated() {
                        try runner.assembler.assembleInput(Sample(t0: t0, lead: lead), input: b.baseAddress! + l * ic)
                    }
                } catch let e as SwiftRainError { return "\(e.subject): \(e.problem)" } catch { return "\(error)" }
                return b.contains { $0.isNaN } ? "an input holds NaN" : nil
            }
            if let missing {
                skipped.append("\(UTCTime.iso(t0)): \(missing)")
                continue
            }
            let k = written.count
            let f = input.withUnsafeBufferPointer { runner.forecast(inputs: $0.baseAddress!, count: leads.count) }
            try file.write(
                vars.forecast, f.map { $0 * scale }, start: [k, 0, 0, 0],
                count: [1, leads.count, shape.height, shape.width])
            try file.write(vars.initTime, [Int64(t0)], start: [k], count: [1])
            try file.write(vars.validTime, leads.map { Int64(t0 + $0) }, start: [k, 0], count: [1, leads.count])
            if let truthVar = vars.truth {
                var observed = [Float](repeating: .nan, count: leads.count * plane)
                for (l, lead) in leads.enumerated() {
                    if let y = try target.plane(at: t0 + lead) {
                        for q in 0..<plane { observed[l * plane + q] = y[q] * scale }
                    }
                }
                try file.write(
                    truthVar, observed, start: [k, 0, 0, 0],
                    count: [1, leads.count, shape.height, shape.width])
            }
            written.append(UTCTime.iso(t0))
        }
        try file.setAttribute(
            "skipped_init_times", .text(skipped.isEmpty ? "none" : skipped.joined(separator: "; ")))
        try file.close()
        _ = try? FileManager.default.removeItem(atPath: path)
        try FileManager.default.moveItem(atPath: partial, toPath: path)
        if format == .zarr {
            try ForecastZarr.write(
                netcdf: path, zarr: finalPath, target: spec.target,
                about: [
                    "checkpoint": model.checkpoint, "config_hash": model.config.hash,
                    "skipped_init_times": skipped.isEmpty ? "none" : skipped.joined(separator: "; "),
                ])
            try FileManager.default.removeItem(atPath: path)
        }
        log("wrote \(written.count) init time(s) × \(leads.count) lead(s) to \(finalPath)")
        for s in skipped { log("skipped \(s)") }
        return Result(path: finalPath, written: written, skipped: skipped)
    }

    struct Variables {
        var initTime: Int32, lead: Int32, lat: Int32, lon: Int32, validTime: Int32, forecast: Int32, truth: Int32?
    }

    /// Dimensions, coordinates with CF units and standard names, the data variables, global attributes.
    static func define(
        _ file: NetCDFFile, spec: SampleSpec, shape: ModelShape, unit: String, truth: Bool, about: [String: String]
    ) throws -> Variables {
        let dInit = try file.defineDimension("init_time", length: nil)
        let dLead = try file.defineDimension("lead_time", length: spec.leads.count)
        let dLat = try file.defineDimension("lat", length: shape.height)
        let dLon = try file.defineDimension("lon", length: shape.width)
        func coordinate(_ name: String, _ type: NetCDFType, _ dims: [Int32], _ attrs: [(String, String)]) throws
            -> Int32
        {
            let v = try file.defineVariable(name, type, dimensions: dims)
            for (k, value) in attrs { try file.setAttribute(k, .text(value), variable: v) }
            return v
        }
        let epoch = "seconds since 1970-01-01 00:00:00"
        let initTime = try coordinate(
            "init_time", .int64, [dInit],
            [
                ("units", epoch), ("calendar", "proleptic_gregorian"), ("standard_name", "forecast_reference_time"),
                ("long_name", "initialisation time: the last input frame (UTC)"),
            ])
        let lead = try coordinate(
            "lead_time", .int, [dLead],
            [
                ("units", "hours"), ("standard_name", "forecast_period"),
                ("long_name", "lead time"),
                // What xarray itself writes on a timedelta, and now needs to decode one.
                ("dtype", "timedelta64[ns]"),
            ])
        let lat = try coordinate(
            "lat", .double, [dLat], [("units", "degrees_north"), ("standard_name", "latitude"), ("axis", "Y")])
        let lon = try coordinate(
            "lon", .double, [dLon], [("units", "degrees_east"), ("standard_name", "longitude"), ("axis", "X")])
        let valid = try coordinate(
            "valid_time", .int64, [dInit, dLead],
            [
                ("units", epoch), ("calendar", "proleptic_gregorian"), ("standard_name", "time"),
                ("long_name", "time the forecast is for (UTC)"),
            ])
        // CF names by unit: a rate for IMERG (mm/h), an hourly amount for ERA5 tp (mm).
        let (cfUnit, standard) =
            unit == "mm/h" ? ("mm h-1", "lwe_precipitation_rate") : ("mm", "lwe_thickness_of_precipitation_amount")
        func field(_ name: String, _ longName: String) throws -> Int32 {
            let v = try file.defineVariable(
                name, .float, dimensions: [dInit, dLead, dLat, dLon], deflate: 4, fill: .nan)
            for (k, value) in [
                ("units", cfUnit), ("standard_name", standard), ("long_name", longName),
                ("coordinates", "valid_time"),
            ] { try file.setAttribute(k, .text(value), variable: v) }
            return v
        }
        let forecast = try field("precipitation", "SwiftRain ConvLSTM forecast of \(spec.target)")
        let truthVar = truth ? try field("truth", "observed \(spec.target)") : nil
        let global: [(String, String)] =
            [
                ("Conventions", "CF-1.8"), ("title", "RainBench precipitation forecasts"),
                ("source", "SwiftRain \(SwiftRainVersion.string)"), ("swiftrain_version", SwiftRainVersion.string),
                ("model", "ConvLSTMForecaster (PyRain's architecture)"),
                ("history", "\(UTCTime.iso(EpochSeconds(Date().timeIntervalSince1970))) swiftrain predict"),
            ] + about.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        for (k, value) in global { try file.setAttribute(k, .text(value)) }
        try file.endDefinitions()
        return Variables(
            initTime: initTime, lead: lead, lat: lat, lon: lon, validTime: valid, forecast: forecast, truth: truthVar)
    }
}
