import Foundation
import RainSupport
import RainZarr

/// An anemoi-datasets store (the Zarr that ECMWF's anemoi trains from): one `data` array
/// (dates, variables, ensembles, cells); the root attributes name the variables, the `frequency`, the
/// `start_date`/`end_date`, the `missing_dates` and the `field_shape`; 1-D `latitudes`/`longitudes` place
/// each cell; `mean`/`stdev` (…) are per-variable statistics. Read here as the regular latitude–longitude
/// grid its cells form, whatever their order.
final class AnemoiDataset {
    let store: ZarrStore
    let data: ZarrArray
    let variables: [String]
    /// The UTC time of each date index, and the dataset's step.
    let dates: [EpochSeconds]
    let step: EpochSeconds
    /// Date indices the dataset lists as missing (their rows read as NaN whatever they hold).
    let missing: Set<Int>
    /// The grid the cells form: RainBench's orientation, latitudes ascending from the south.
    let grid: RainGrid
    /// The plane index (row × width + column, RainBench's order) of each cell.
    let planeIndex: [Int]
    /// The ensemble member read (0 for a deterministic dataset).
    let member: Int
    /// Each variable's parameter and level, from `variables_metadata` (MARS keys) or the name (`t_850`).
    let parameters: [String: (param: String, level: Int?)]

    var path: String { store.url.path }

    init(store: ZarrStore, member: Int = 0) throws {
        self.store = store
        let path = store.url.path
        let attrs = store.attributes
        data = try store.require("data", for: "anemoi-datasets' data (dates, variables, ensembles, cells)")
        guard data.shape.count == 4 else {
            throw SwiftRainError(
                data.subject, "not anemoi-datasets' data array",
                expected: "4 dimensions (dates, variables, "
                    + "ensembles, cells)", found: "shape \(data.shape)",
                hint: "pass a dataset written by anemoi-datasets create (a gridded layout)")
        }
        guard let names = attrs["variables"]?.array?.compactMap(\.string), names.count == data.shape[1] else {
            throw SwiftRainError(
                "\(path)/.zattrs", "the variables attribute does not name the data array's variables",
                expected: "\(data.shape[1]) names",
                found: attrs["variables"].map { "\($0.text.prefix(200))" } ?? "none",
                hint: "the dataset is incomplete: finish it with anemoi-datasets finalise")
        }
        variables = names
        guard (0..<data.shape[2]).contains(member) else {
            throw SwiftRainError(
                "--member", "no such ensemble member", expected: "0…\(data.shape[2] - 1)", found: "\(member)",
                hint: "pick a member the dataset holds")
        }
        self.member = member
        let (dates, step) = try Self.dates(store, attrs, count: data.shape[0])
        (self.dates, self.step) = (dates, step)
        let index = Dictionary(dates.enumerated().map { ($1, $0) }, uniquingKeysWith: { a, _ in a })
        // anemoi keeps a recipe's missing dates even when they fall outside the dataset's own dates.
        missing = Set(
            try (attrs["missing_dates"]?.array ?? []).compactMap { j in
                guard let s = j.string, let t = UTCTime.parse(s) else {
                    throw SwiftRainError(
                        "\(path)/.zattrs: missing_dates", "not a date",
                        expected: "ISO dates such as "
                            + "\"2016-01-10T12:00:00\"", found: j.text, hint: "the dataset's metadata is damaged")
                }
                return index[t]
            })
        (grid, planeIndex) = try Self.grid(store, attrs, cells: data.shape[3])
        var parameters: [String: (String, Int?)] = [:]
        let meta = attrs["variables_metadata"]?.object ?? [:]
        for name in names {
            let mars = meta[name]?.object?["mars"]?.object
            if let param = mars?["param"]?.string {
                parameters[name] = (param, mars?["levelist"]?.int)
            } else if let cut = name.lastIndex(of: "_"), let level = Int(name[name.index(after: cut)...]) {
                parameters[name] = (String(name[..<cut]), level)
            } else {
                parameters[name] = (name, nil)
            }
        }
        self.parameters = parameters
    }

    /// The dates: the `dates` array (datetime64) when there is one, else `start_date` every `frequency`.
    private static func dates(_ store: ZarrStore, _ attrs: [String: ZarrJSON], count: Int) throws
        -> ([EpochSeconds], EpochSeconds)
    {
        let path = store.url.path
        guard let f = attrs["frequency"], let step = frequency(f), step > 0 else {
            throw SwiftRainError(
                "\(path)/.zattrs: frequency", "no usable frequency", expected: "a step such as \"6h\" or \"1h\"",
                found: attrs["frequency"]?.text ?? "none", hint: "the dataset's metadata is incomplete")
        }
        var dates: [EpochSeconds]
        if let a = store.arrayNames.contains("dates") ? try store.array("dates") : nil,
            let unit = a.dataType.datetimeUnit
        {
            let scale: [String: Double] = ["s": 1, "m": 60, "h": 3600, "D": 86_400, "ms": 1e-3, "us": 1e-6, "ns": 1e-9]
            dates = try a.readAll().map { EpochSeconds(($0 * scale[unit]!).rounded()) }
        } else {
            guard let s = attrs["start_date"]?.string, let t0 = UTCTime.parse(s) else {
                throw SwiftRainError(
                    "\(path)/.zattrs: start_date", "no dates", expected: "a dates array or a start_date",
                    hint: "the dataset's metadata is incomplete")
            }
            dates = (0..<count).map { t0 + EpochSeconds($0) * step }
        }
        guard dates.count == count, zip(dates.dropFirst(), dates).allSatisfy({ $0 - $1 == step }) else {
            throw SwiftRainError(
                "\(path)/dates", "dates that are not every \(step / 3600) h for the data's \(count) rows",
                found:
                    "\(dates.count) dates \(dates.first.map(UTCTime.iso) ?? "")…\(dates.last.map(UTCTime.iso) ?? "")",
                hint: "the dataset's metadata is inconsistent; rebuild it with anemoi-datasets")
        }
        guard 86_400 % step == 0, step % 3600 == 0 else {
            throw SwiftRainError(
                "\(path)/.zattrs: frequency", "a step RainBench's layout cannot hold",
                expected: "whole hours dividing a day", found: "\(step) s",
                hint: "subsample the dataset first (anemoi-datasets: frequency: 6h)")
        }
        return (dates, step)
    }

    /// anemoi's frequency: "6h", "1d", "30m", or a number of hours.
    static func frequency(_ j: ZarrJSON) -> EpochSeconds? {
        if let h = j.int { return EpochSeconds(h) * 3600 }
        guard let s = j.string, let unit = s.last, let n = Int(s.dropLast()) else { return nil }
        switch unit {
        case "h": return EpochSeconds(n) * 3600
        case "d": return EpochSeconds(n) * 86_400
        case "m": return EpochSeconds(n) * 60
        case "s": return EpochSeconds(n)
        default: return nil
        }
    }
}
