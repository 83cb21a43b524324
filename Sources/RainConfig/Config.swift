import Foundation
import RainSupport
import Yams

/// Input sources, as PyRain's `--sources` names them.
public enum Sources: String, CaseIterable, Codable {
    case simsat, era, simsat_era, era16_3
}

/// The arithmetic of the model's products, by PyTorch Lightning's names for `precision`.
///
/// `bf16-mixed`: the convolution's GEMM operands are bfloat16 (rounded to nearest even) and their
/// products accumulate in fp32; master weights, Adam's moments, the gates and cell state, the loss and
/// every sum over time, batch and workers stay fp32. It needs a CPU with bf16 dot-product instructions.
public enum Precision: String, CaseIterable, Codable, Sendable {
    case fp32 = "32"
    case bf16Mixed = "bf16-mixed"

    /// Lightning's spellings: 32, "32-true", bf16-mixed.
    public init?(name: String) {
        switch name.lowercased() {
        case "32", "32-true", "fp32": self = .fp32
        case "bf16-mixed": self = .bf16Mixed
        default: return nil
        }
    }
}

/// Every hyperparameter of a run, flat and named as PyRain's flags are. Defaults are PyRain's
/// (DATA-FORMAT §7). `Config.keys` documents each one; the YAML file, `--set key=value` and the
/// resolved `config.yaml` of a run all go through that table.
public struct Config: Equatable {
    // Data
    public var data: [String] = ["data/era5625", "data/imerg5625", "data/simsat5625"]
    public var sources: Sources = .simsat
    public var imerg: Bool = false
    /// ERA5's precipitation variable as the target (`tp` hourly; `tp6h` 6-hour totals).
    public var eraTarget = "tp"
    public var incTime: Bool = false
    public var sampleTimeWindow: Int = 12
    public var sampleFreq: Int = 3
    public var forecastTimeWindow: Int = 120
    public var forecastFreq: Int = 24
    public var normalisation: String = "data/normalisation.json"
    public var grid: Double = 5.625
    public var trainStart: EpochSeconds? = nil, trainEnd: EpochSeconds? = nil
    public var validStart: EpochSeconds? = nil, validEnd: EpochSeconds? = nil
    public var testStart: EpochSeconds? = nil, testEnd: EpochSeconds? = nil
    public var sampleStride: Int? = nil
    // Model
    public var hidden1: Int = 384
    public var hidden2: Int = 32
    public var noRelu: Bool = false
    // Optimisation
    public var lr: Double = 5e-5
    public var beta1: Double = 0.9
    public var beta2: Double = 0.999
    public var eps: Double = 1e-8
    public var batchSize: Int = 32
    public var epochs: Int = 100
    public var seed: Int = 2020
    public var lrFactor: Double = 0.5
    public var lrPatience: Int = 2
    public var lrThreshold: Double = 1e-4
    public var microBatch: Int = 4
    public var precision: Precision = .fp32
    public var gradWire: GradientWire = .fp32

    public init() {}

    /// Loads a YAML file of `key: value` lines (keys from `Config.keys`) over the defaults.
    public static func load(path: String) throws -> Config {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw SwiftRainError(
                path, "cannot read the configuration file",
                hint: "pass an existing YAML file with --config (see configs/ for examples)")
        }
        var c = Config()
        try c.apply(yaml: text, source: path)
        return c
    }

    /// Applies a YAML mapping of keys to values.
    public mutating func apply(yaml text: String, source: String) throws {
        let node: Node?
        do { node = try Yams.compose(yaml: text) } catch {
            throw SwiftRainError(
                source, "malformed YAML", found: "\(error)", hint: "fix the syntax; each line is `key: value`")
        }
        guard let node else { return }
        guard let mapping = node.mapping else {
            throw SwiftRainError(
                source, "the configuration must be a mapping of keys to values", found: "\(node)",
                hint: "write one `key: value` per line")
        }
        for (k, v) in mapping {
            guard let key = k.scalar?.string else { continue }
            let value: [String]
            if let seq = v.sequence {
                value = seq.compactMap { $0.scalar?.string }
            } else if let s = v.scalar?.string {
                value = [s]
            } else {
                throw SwiftRainError(
                    "\(source): \(key)", "value must be a scalar or a list", found: "\(v)", hint: "fix the value")
            }
            try set(key, value, source: source)
        }
    }

    /// Applies `key=value` (as given to `--set`); lists are comma-separated.
    public mutating func apply(assignment: String) throws {
        guard let eq = assignment.firstIndex(of: "=") else {
            throw SwiftRainError("--set \(assignment)", "expected key=value", hint: "e.g. --set lr=1e-4")
        }
        let key = String(assignment[..<eq]).trimmingCharacters(in: .whitespaces)
        let raw = String(assignment[assignment.index(after: eq)...])
        try set(key, raw.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }, source: "--set")
    }

    public mutating func set(_ key: String, _ value: [String], source: String) throws {
        guard let k = Config.keys.first(where: { $0.name == key }) else {
            throw SwiftRainError(
                "\(source): \(key)", "unknown configuration key",
                expected: "one of " + Config.keys.map(\.name).joined(separator: ", "),
                hint: "check the spelling; README.md lists every key with its meaning")
        }
        do { try k.write(&self, value) } catch let e as ConfigValueError {
            throw SwiftRainError(
                "\(source): \(key)", "invalid value", expected: e.expected,
                found: value.joined(separator: ","), hint: "fix the value of \(key)")
        }
    }

    /// Every key and its resolved value as `config.yaml` writes it (empty for null), in table order.
    public var keyValues: [(key: String, value: String)] { Config.keys.map { ($0.name, $0.read(self)) } }

    /// The resolved configuration as YAML, every key written, in table order.
    public func yaml() -> String {
        var out = "# SwiftRain resolved configuration: every key, defaults included.\n"
        var section = ""
        for k in Config.keys {
            if k.section != section {
                section = k.section
                out += "\n# \(section)\n"
            }
            let v = k.read(self)
            out += "\(k.name): \(v.isEmpty ? "null" : v)\n"
        }
        return out
    }
}

struct ConfigValueError: Error { var expected: String }

extension Config {
    /// Identifies the hyperparameters a checkpoint was trained with (`epochs` excluded, so a run may be extended).
    public var hash: String {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        // The default precision is left out, so runs from before the key existed keep their hash.
        for line in yaml().split(separator: "\n")
        where !line.hasPrefix("epochs:") && line != "precision: 32"
            && line != "grad_wire: fp32" && line != "era_target: tp"
        {
            for byte in line.utf8 { h = (h ^ UInt64(byte)) &* 0x100_0000_01B3 }
        }
        return String(h, radix: 16)
    }
}
