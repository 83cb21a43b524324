import ArgumentParser
import Foundation
import RainConvert
import RainData
import RainSupport

struct ConvertCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convert",
        abstract:
            "Convert WeatherBench / IMERG / SimSat files, WeatherBench 2 or anemoi Zarr into RainBench's datasets.",
        subcommands: [ConvertERA5.self, ConvertIMERG.self, ConvertSimSat.self, ConvertAnemoi.self])
}

/// Options every converter takes.
struct ConvertOptions: ParsableArguments {
    @Option(help: "Directory of input files (and its subdirectories, as WeatherBench's zips unpack).")
    var from: String
    @Option(help: "Output directory; the dataset goes to OUT/<name> (era5625, era140625).") var out: String = "data"
    @Option(help: "Grid spacing in degrees: 5.625 or 1.40625 (default: 5.625; anemoi: the dataset's own).")
    var grid: Double?
    @Option(help: "Years, e.g. 2016 or 1979-2019 (default: every year with files).") var years: String?
    @Flag(help: "Add the given (later) years to an existing dataset; its metadata is rewritten at the end.")
    var append = false
    @Option(help: "Years converted at once, each in its own process (default: the machine's cores).")
    var jobs: Int = ProcessInfo.processInfo.activeProcessorCount
    @Option(help: .hidden) var onlyYear: Int?

    func yearRange() throws -> ClosedRange<Int>? {
        guard let years else { return nil }
        let p = years.split(whereSeparator: { $0 == "-" || $0 == "…" || $0 == ":" }).map { Int($0) }
        guard (1...2).contains(p.count), let a = p.first!, let b = p.last!, a <= b else {
            throw SwiftRainError(
                "--years", "not a year range", expected: "YYYY or YYYY-YYYY", found: years,
                hint: "e.g. --years 1979-2019")
        }
        return a...b
    }

    func run(_ plan: ConversionPlan) throws {
        var c = Converter(plan: plan, out: URL(fileURLWithPath: out), append: append, progress: { stderr($0) })
        if let onlyYear { return try c.runYear(onlyYear) }  // a child of the command below
        guard jobs >= 1 else {
            throw SwiftRainError(
                "--jobs", "not a process count", expected: "1 or more", found: "\(jobs)", hint: "e.g. --jobs 4")
        }
        c.jobs = jobs
        c.spawnYear = { year in
            let p = Process()
            p.executableURL = URL(fileURLWithPath: ThisProcess.executable)
            p.arguments = Array(CommandLine.arguments.dropFirst()) + ["--only-year", String(year)]
            try p.run()
            return p
        }
        let s = try c.run()
        if !s.yearsResumed.isEmpty {
            stderr("resumed: \(s.yearsResumed.map(String.init).joined(separator: ", ")) were already written")
        }
        print(s.directory.path)
    }
}

struct ConvertERA5: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "era5",
        abstract: "ERA5 from WeatherBench's NetCDF files or a Zarr store (WeatherBench 2, ARCO-ERA5) → era5625.",
        discussion: """
            Channels in RainBench's order: t2m, sp, tp, then for 300, 500 and 850 hPa ciwc, clwc, t, z, q, each \
            level under its own name (t_300hPa). Levels are selected by the level coordinate's values; times \
            come from the time coordinate's units (UTC); fill and missing values become NaN; descending \
            latitudes and longitudes from −180° are put in RainBench's order. Re-running an interrupted \
            conversion resumes it.

            --from STORE.zarr reads a local Zarr store (v2 or v3) in WeatherBench 2's naming (2m_temperature, \
            temperature on a level axis, …) at the store's own time step: a 6-hourly store gives a 6-hourly \
            dataset whose precipitation is tp6h (metres over the 6 h ending at the row's time; train on it \
            with era_target: tp6h). Dimensions are found by name, whatever their order.
            """)
    @OptionGroup var options: ConvertOptions
    @Option(help: "Variables, comma-separated: const, t2m, tp, t (three levels), t_850hPa, … (default: all).")
    var variables: String?

    func run() throws {
        try SwiftRain.run {
            let grid = try RainGrid(resolution: options.grid ?? 5.625)
            let names = variables.map { $0.split(separator: ",").map { String($0) } }
            let isZarr = [".zgroup", ".zmetadata", "zarr.json"].contains {
                FileManager.default.fileExists(atPath: options.from + "/" + $0)
            }
            let plan =
                isZarr
                ? try ConversionPlan.era5(zarr: options.from, grid: grid, variables: names, years: options.yearRange())
                : try ConversionPlan.era5(
                    directory: options.from, grid: grid, variables: names, years: options.yearRange())
            try options.run(plan)
        }
    }
}

struct ConvertIMERG: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "imerg",
        abstract: "IMERG precipitation → imerg5625: GPM's half-hourly HDF5 files or PyRain's daily NetCDF files.",
        discussion: """
            GPM files (3B-HHR…V06B.HDF5 or V07B, any directory depth) are averaged by area from 0.1° onto the \
            grid and the two half-hours of each hour into the row of the hour's start. PyRain's daily files \
            (imergYYYYMMDD.nc, 24 hourly rows) are placed by each file's time coordinate, or by the date in \
            its name. Missing half-hours, days and fill values become NaN.
            """)
    @OptionGroup var options: ConvertOptions
    @Option(help: "Which files: gpm (3B-HHR…HDF5), daily (imergYYYYMMDD.nc) or auto (whichever --from holds).")
    var kind: String = "auto"

    func run() throws {
        try SwiftRain.run {
            let grid = try RainGrid(resolution: options.grid ?? 5.625), years = try options.yearRange()
            let plan: ConversionPlan
            switch kind {
            case "gpm": plan = try ConversionPlan.imergHalfHourly(directory: options.from, grid: grid, years: years)
            case "daily": plan = try ConversionPlan.imergDaily(directory: options.from, grid: grid, years: years)
            case "auto":
                let gpm = try? ConversionPlan.imergHalfHourly(directory: options.from, grid: grid, years: years)
                let daily = try? ConversionPlan.imergDaily(directory: options.from, grid: grid, years: years)
                if gpm != nil && daily != nil {
                    throw SwiftRainError(
                        options.from, "both GPM half-hourly and daily IMERG files", expected: "one kind",
                        hint: "pass --kind gpm or --kind daily")
                }
                guard let found = gpm ?? daily else {
                    throw SwiftRainError(
                        options.from, "no IMERG files" + (options.years.map { " in \($0)" } ?? ""),
                        expected: "GPM's 3B-HHR…3IMERG.YYYYMMDD-ShhmmSS-….V06B.HDF5 or PyRain's imergYYYYMMDD.nc",
                        hint: "point --from at the directory holding them, or check --years")
                }
                plan = found
            default:
                throw SwiftRainError(
                    "--kind", "unknown kind", expected: "gpm, daily or auto", found: kind, hint: "pick one")
            }
            try options.run(plan)
        }
    }
}

struct ConvertSimSat: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "simsat",
        abstract: "SimSat's yearly files (satYYYY.nc: clbt, three brightness temperatures every 3 h) → simsat5625.",
        discussion: """
            Rows are placed by the time coordinate (or from the year's start, 1 April for 2016, without one); \
            the channel axis may have any name; fill values become NaN.
            """)
    @OptionGroup var options: ConvertOptions

    func run() throws {
        try SwiftRain.run {
            let plan = try ConversionPlan.simsat(
                directory: options.from, grid: try RainGrid(resolution: options.grid ?? 5.625),
                years: try options.yearRange())
            try options.run(plan)
        }
    }
}

struct ConvertAnemoi: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "anemoi",
        abstract: "An anemoi-datasets Zarr (ECMWF's anemoi training data) → era5625 and its normalisation JSON.",
        discussion: """
            The data array (dates, variables, ensembles, cells) becomes a dataset at the dataset's own step, on \
            the regular grid its cells form (5.625° or 1.40625°, found from latitudes/longitudes whatever the \
            cell order; --grid 5.625 area-averages a 1.40625° dataset). ERA5's variables take RainBench's names \
            and order (2t → t2m, t_850 → t_850hPa; tp over a 6-hourly step → tp6h), others keep theirs; lsm, \
            surface z (÷ g) and slt become the constants. Missing dates are NaN rows. The dataset's statistics \
            are written as OUT/<dataset>/normalisation.json, which train accepts (normalisation: …).
            """)
    @OptionGroup var options: ConvertOptions
    @Option(help: "Variables, comma-separated: RainBench's or the dataset's names, and const (default: all).")
    var variables: String?
    @Option(help: "The ensemble member to read.") var member: Int = 0

    func run() throws {
        try SwiftRain.run {
            let grid = try options.grid.map { try RainGrid(resolution: $0) }
            let plan = try ConversionPlan.anemoi(
                path: options.from, grid: grid, variables: variables.map { $0.split(separator: ",").map(String.init) },
                years: options.yearRange(), member: member)
            try options.run(plan)
            guard options.onlyYear == nil else { return }
            let stats = try plan.anemoiNormalisation()
            let url = URL(fileURLWithPath: options.out).appendingPathComponent(plan.dataset + "/normalisation.json")
            try Normalisation(stats: stats.mapValues { ChannelStats(mean: $0.mean, std: $0.std) }).write(path: url.path)
            stderr("\(plan.dataset): anemoi's statistics of \(stats.count) channels in \(url.path)")
        }
    }
}
