import Foundation
import RainConfig
import RainSupport

/// What `swiftrain suite` runs: a base configuration and a grid of settings, every cell a normal run
/// directory under `out`. Saved as `out/suite.json`, so that re-running the command (or `--report`,
/// or a SLURM array task) knows the cells; another grid into the same directory is refused.
public struct SuiteSpec: Codable, Equatable {
    /// One grid axis: a configuration key and its values (`sources=simsat,era`).
    public struct Axis: Codable, Equatable {
        public var key: String
        public var values: [String]
    }

    /// One cell: its directory name and the assignments it adds to the base configuration.
    public struct Cell: Codable, Equatable {
        public var name: String
        public var assignments: [String]
        /// The settings apart from the seed (cells differing only in seed are repeats of one setting).
        public var setting: [String]
        public var seed: Int?
    }

    /// Absolute path of the base YAML configuration.
    public var base: String
    public var axes: [Axis]
    /// Repeats of every setting with seeds base+0, base+1, …; 1 keeps the base seed.
    public var seeds: Int
    /// Workers per cell (local runs) or worker tasks per array task (SLURM).
    public var workers: Int
    /// Extra `swiftrain train` flags for every cell (`--blas-threads 1`).
    public var trainArguments: [String]

    /// Parses `--grid key=v1,v2` options; checks every key and value against the base configuration.
    public init(base: String, grid: [String], seeds: Int, workers: Int, trainArguments: [String]) throws {
        self.base = URL(fileURLWithPath: base).standardizedFileURL.path
        self.seeds = seeds
        self.workers = workers
        self.trainArguments = trainArguments
        guard seeds >= 1 else {
            throw SwiftRainError(
                "--seeds", "not a count", expected: "1 or more", found: "\(seeds)", hint: "e.g. --seeds 3")
        }
        axes = try grid.map { text in
            let parts = text.split(separator: "=", maxSplits: 1).map(String.init)
            let values = parts.count == 2 ? parts[1].split(separator: ",").map(String.init) : []
            guard parts.count == 2, !parts[0].isEmpty, !values.isEmpty else {
                throw SwiftRainError(
                    "--grid \(text)", "not a grid axis", expected: "key=value1,value2,…",
                    hint: "e.g. --grid sources=simsat,era --grid imerg=true,false")
            }
            return Axis(key: parts[0], values: values)
        }
        let keys = axes.map(\.key)
        if let dup = keys.first(where: { k in keys.filter { $0 == k }.count > 1 }) {
            throw SwiftRainError("--grid \(dup)", "the same key twice", hint: "list all its values in one --grid")
        }
        if seeds > 1 && keys.contains("seed") {
            throw SwiftRainError("--seeds", "both --seeds and --grid seed=…", hint: "use one of them")
        }
        // Every cell's configuration must resolve now, not hours into the suite.
        for cell in cells() { _ = try config(of: cell) }
    }

    /// The cells in order: the first axis varies slowest, then seeds.
    public func cells() -> [Cell] {
        var combos: [[String]] = [[]]
        for axis in axes { combos = combos.flatMap { c in axis.values.map { c + ["\(axis.key)=\($0)"] } } }
        let baseSeed = (try? Config.load(path: base).seed) ?? 0
        return combos.flatMap { setting -> [Cell] in
            (0..<seeds).map { k in
                let seed: Int? = seeds > 1 ? baseSeed + k : nil
                let all = setting + (seed.map { ["seed=\($0)"] } ?? [])
                return Cell(name: Self.directoryName(all), assignments: all, setting: setting, seed: seed)
            }
        }
    }

    /// `sources=simsat`, `lr=1e-4` → `sources-simsat_lr-1e-4` (characters a path may not hold become -).
    static func directoryName(_ assignments: [String]) -> String {
        if assignments.isEmpty { return "base" }
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.+-")
        return assignments.map { a in
            String(a.replacingOccurrences(of: "=", with: "-").map { allowed.contains($0) ? $0 : "-" })
        }.joined(separator: "_")
    }

    /// The base configuration with the cell's assignments.
    public func config(of cell: Cell) throws -> Config {
        var c = try Config.load(path: base)
        for a in cell.assignments {
            do { try c.apply(assignment: a) } catch let e as SwiftRainError {
                throw SwiftRainError(
                    "--grid (cell \(cell.name))", "a grid value the configuration refuses", found: e.description,
                    hint: "fix the --grid values")
            }
        }
        return c
    }

    // MARK: The suite directory

    public static func specURL(_ out: URL) -> URL { out.appendingPathComponent("suite.json") }

    /// Saves the spec in `out`, or checks it equals the one saved there by an earlier run.
    public func save(in out: URL) throws {
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        let url = Self.specURL(out)
        if let saved = try? Self.load(out), saved != self {
            throw SwiftRainError(
                url.path, "another suite is in this directory",
                expected: "the same --config, --grid, --seeds and --workers as before",
                found: "base \(saved.base), grid \(saved.axes.map { "\($0.key)=\($0.values.joined(separator: ","))" })",
                hint: "re-run that command to resume it, or choose another --out")
        }
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        try enc.encode(self).write(to: url, options: .atomic)
        // Each cell's resolved configuration, for `train --config` (local and SLURM alike).
        let configs = out.appendingPathComponent("configs")
        try FileManager.default.createDirectory(at: configs, withIntermediateDirectories: true)
        for cell in cells() {
            try config(of: cell).yaml().write(
                to: configs.appendingPathComponent("\(cell.name).yaml"), atomically: true, encoding: .utf8)
        }
    }

    public static func load(_ out: URL) throws -> SuiteSpec {
        let url = specURL(out)
        guard let data = try? Data(contentsOf: url) else {
            throw SwiftRainError(
                out.path, "not a suite directory", expected: "suite.json written by swiftrain suite --out",
                hint: "pass the --out directory of an earlier swiftrain suite")
        }
        do { return try JSONDecoder().decode(SuiteSpec.self, from: data) } catch {
            throw SwiftRainError(url.path, "unreadable suite description", hint: "run swiftrain suite again")
        }
    }
}
