import ArgumentParser
import RainConfig
import RainData

/// `--config`, `--set` and the PyRain-named flags, resolved into one `Config` (file < flags < --set).
struct ConfigOptions: ParsableArguments {
    @Option(help: "YAML configuration file (keys in README.md).") var config: String?
    @Option(
        name: .customLong("set"),
        help: ArgumentHelp("Override a configuration key, e.g. --set lr=1e-4.", valueName: "key=value"))
    var assignments: [String] = []
    @Option(name: .customLong("data"), help: "Dataset directory (repeatable); replaces `data` of the configuration.")
    var data: [String] = []
    @Option(name: .customLong("sources"), help: "simsat | era | simsat_era | era16_3") var sources: String?
    @Flag(name: .customLong("imerg"), help: "Predict IMERG precipitation (else ERA5 tp).") var imerg = false
    @Flag(name: .customLong("inc_time"), help: "Add local solar time channels.") var incTime = false
    @Flag(name: .customLong("no_relu"), help: "Omit the final ReLU.") var noRelu = false
    @Option(name: .customLong("hidden_1")) var hidden1: Int?
    @Option(name: .customLong("hidden_2")) var hidden2: Int?
    @Option(name: .customLong("lr")) var lr: Double?
    @Option(name: .customLong("batch_size")) var batchSize: Int?
    @Option(name: .customLong("epochs")) var epochs: Int?
    @Option(name: .customLong("seed")) var seed: Int?
    @Option(name: .customLong("sample_time_window")) var sampleTimeWindow: Int?
    @Option(name: .customLong("sample_freq")) var sampleFreq: Int?
    @Option(name: .customLong("forecast_time_window")) var forecastTimeWindow: Int?
    @Option(name: .customLong("forecast_freq")) var forecastFreq: Int?
    @Option(name: .customLong("grid")) var grid: Double?
    @Option(name: .customLong("normalisation"), help: "Normalisation JSON file.") var normalisation: String?
    @Option(help: "32, or bf16-mixed (bf16 GEMM operands, fp32 sums and state; needs AVX512_BF16).")
    var precision: String?
    @Option(
        name: .customLong("grad-wire"),
        help: "fp32, or bf16: gradients travel between workers as bfloat16 (half the bytes, fp32 sums).")
    var gradWire: String?

    /// Whether the user said anything about sources or target (if not, `inspect` infers them).
    var saysWhatToPredict: Bool {
        config != nil || sources != nil || imerg
            || assignments.contains { $0.hasPrefix("sources=") || $0.hasPrefix("imerg=") }
    }

    func resolve() throws -> Config {
        var c = try config.map { try Config.load(path: $0) } ?? Config()
        var flags: [(String, String?)] = [
            ("sources", sources), ("hidden_1", hidden1.map { "\($0)" }), ("hidden_2", hidden2.map { "\($0)" }),
            ("lr", lr.map { "\($0)" }), ("batch_size", batchSize.map { "\($0)" }), ("epochs", epochs.map { "\($0)" }),
            ("seed", seed.map { "\($0)" }), ("sample_time_window", sampleTimeWindow.map { "\($0)" }),
            ("sample_freq", sampleFreq.map { "\($0)" }), ("forecast_time_window", forecastTimeWindow.map { "\($0)" }),
            ("forecast_freq", forecastFreq.map { "\($0)" }), ("grid", grid.map { "\($0)" }),
            ("normalisation", normalisation), ("precision", precision), ("grad_wire", gradWire),
        ]
        if imerg { flags.append(("imerg", "true")) }
        if incTime { flags.append(("inc_time", "true")) }
        if noRelu { flags.append(("no_relu", "true")) }
        for case let (k, v?) in flags { try c.set(k, [v], source: "--\(k)") }
        if !data.isEmpty { c.data = data }
        for a in assignments { try c.apply(assignment: a) }
        return c
    }
}
