import RainSupport

/// One documented configuration key.
public struct ConfigKey {
    public let name: String
    public let section: String
    public let doc: String
    let read: (Config) -> String
    let write: (inout Config, [String]) throws -> Void
}

extension Config {
    /// Every key, in the order the README and `config.yaml` list them.
    public static let keys: [ConfigKey] = [
        strings(
            "data", \.data, "Data",
            "dataset directories to join (each holds <name>.dill or <name>_info.json and its .mmap files)"),
        enumKey(
            "sources", \.sources, "Data",
            """
            input sources: simsat (SimSat clbt), era (16 ERA5 fields, hourly), simsat_era (both), era16_3 (ERA5, \
            3-hourly)
            """
        ),
        bool("imerg", \.imerg, "Data", "predict IMERG precipitationcal (mm/h); false predicts ERA5 tp (m/h)"),
        ConfigKey(
            name: "era_target", section: "Data",
            doc: """
                the ERA5 precipitation predicted when imerg is false: tp (hourly amount, m) or tp6h (amount over \
                the 6 h ending at t, m: WeatherBench 2's total_precipitation_6hr, after `convert era5 --from X.zarr`)
                """,
            read: { $0.eraTarget },
            write: { c, v in
                let t = try scalar(v, "ERA5 target")
                guard ["tp", "tp6h"].contains(t) else { throw ConfigValueError(expected: "tp | tp6h") }
                c.eraTarget = t
            }),
        bool("inc_time", \.incTime, "Data", "add hour/24, day/31, month/12 of local solar time as input channels"),
        int(
            "sample_time_window", \.sampleTimeWindow, "Data",
            "history window in hours (inputs at t0 − window … t0)"),
        int("sample_freq", \.sampleFreq, "Data", "hours between input time steps"),
        int("forecast_time_window", \.forecastTimeWindow, "Data", "longest lead time in hours"),
        int("forecast_freq", \.forecastFreq, "Data", "hours between lead times (leads = freq, 2·freq, … window)"),
        string(
            "normalisation", \.normalisation, "Data",
            "normalisation statistics (PyRain's JSON; `swiftrain normalize` writes one)"),
        double(
            "grid", \.grid, "Data",
            "grid spacing in degrees (5.625 → 32×64, 1.40625 → 128×256); checked against the data"),
        time(
            "train_start", \.trainStart, "Data",
            "first time of the train partition; default from DATA-FORMAT §4 for the sources and target"),
        time("train_end", \.trainEnd, end: true, "Data", "last time of the train partition"),
        time("valid_start", \.validStart, "Data", "first time of the valid partition"),
        time("valid_end", \.validEnd, end: true, "Data", "last time of the valid partition"),
        time("test_start", \.testStart, "Data", "first time of the test partition"),
        time("test_end", \.testEnd, end: true, "Data", "last time of the test partition"),
        optInt(
            "sample_stride", \.sampleStride, "Data",
            "hours between sample times t0; default 3 for simsat/simsat_era/era16_3, 1 for era"),
        int("hidden_1", \.hidden1, "Model", "ConvLSTM hidden channels F"),
        int("hidden_2", \.hidden2, "Model", "channels F2 of the first 1×1 head"),
        bool("no_relu", \.noRelu, "Model", "omit the final ReLU (PyRain recommends it for IMERG)"),
        double("lr", \.lr, "Optimisation", "Adam learning rate"),
        double("beta1", \.beta1, "Optimisation", "Adam β1"),
        double("beta2", \.beta2, "Optimisation", "Adam β2"),
        double("eps", \.eps, "Optimisation", "Adam ε (added after the square root, as torch)"),
        int(
            "batch_size", \.batchSize, "Optimisation",
            "global batch: samples per optimiser step, whatever the number of workers"),
        int("epochs", \.epochs, "Optimisation", "training epochs"),
        int("seed", \.seed, "Optimisation", "seed of initialisation and sample order"),
        double("lr_factor", \.lrFactor, "Optimisation", "ReduceLROnPlateau factor"),
        int(
            "lr_patience", \.lrPatience, "Optimisation",
            "ReduceLROnPlateau patience (epochs without relative improvement)"),
        double("lr_threshold", \.lrThreshold, "Optimisation", "ReduceLROnPlateau relative threshold (mode min)"),
        int(
            "micro_batch", \.microBatch, "Optimisation",
            """
            samples a worker runs through the model at once (memory vs speed; results differ only by summation \
            order)
            """),
        ConfigKey(
            name: "precision", section: "Optimisation",
            doc: """
                32, or bf16-mixed (Lightning's name): bfloat16 GEMM operands, fp32 sums and state; needs a CPU \
                with AVX512_BF16
                """,
            read: { $0.precision.rawValue },
            write: { c, v in
                guard let p = Precision(name: try scalar(v, "precision")) else {
                    throw ConfigValueError(expected: Precision.allCases.map(\.rawValue).joined(separator: " | "))
                }
                c.precision = p
            }),
        ConfigKey(
            name: "grad_wire", section: "Optimisation",
            doc: """
                fp32, or bf16: gradient pieces travel between workers as bfloat16 (half the bytes; each hop adds \
                in fp32, as DDP's bf16_compress_hook)
                """,
            read: { $0.gradWire.rawValue },
            write: { c, v in
                guard let w = GradientWire(rawValue: try scalar(v, "wire format").lowercased()) else {
                    throw ConfigValueError(expected: GradientWire.allCases.map(\.rawValue).joined(separator: " | "))
                }
                c.gradWire = w
            }),
    ]

    private static func scalar(_ v: [String], _ expected: String) throws -> String {
        guard v.count == 1 else { throw ConfigValueError(expected: "one \(expected)") }
        return v[0]
    }
    static func int(_ n: String, _ kp: WritableKeyPath<Config, Int>, _ s: String, _ d: String) -> ConfigKey {
        ConfigKey(
            name: n, section: s, doc: d, read: { "\($0[keyPath: kp])" },
            write: { c, v in
                guard let x = Int(try scalar(v, "integer")) else { throw ConfigValueError(expected: "an integer") }
                c[keyPath: kp] = x
            })
    }
    static func optInt(_ n: String, _ kp: WritableKeyPath<Config, Int?>, _ s: String, _ d: String) -> ConfigKey {
        ConfigKey(
            name: n, section: s, doc: d, read: { $0[keyPath: kp].map { "\($0)" } ?? "" },
            write: { c, v in
                let t = try scalar(v, "integer")
                if t == "null" || t.isEmpty {
                    c[keyPath: kp] = nil
                    return
                }
                guard let x = Int(t) else { throw ConfigValueError(expected: "an integer or null") }
                c[keyPath: kp] = x
            })
    }
    static func double(_ n: String, _ kp: WritableKeyPath<Config, Double>, _ s: String, _ d: String) -> ConfigKey {
        ConfigKey(
            name: n, section: s, doc: d, read: { "\($0[keyPath: kp])" },
            write: { c, v in
                guard let x = Double(try scalar(v, "number")), x.isFinite else {
                    throw ConfigValueError(expected: "a finite number")
                }
                c[keyPath: kp] = x
            })
    }
    static func bool(_ n: String, _ kp: WritableKeyPath<Config, Bool>, _ s: String, _ d: String) -> ConfigKey {
        ConfigKey(
            name: n, section: s, doc: d, read: { "\($0[keyPath: kp])" },
            write: { c, v in
                switch try scalar(v, "boolean").lowercased() {
                case "true", "yes", "1", "on": c[keyPath: kp] = true
                case "false", "no", "0", "off": c[keyPath: kp] = false
                default: throw ConfigValueError(expected: "true or false")
                }
            })
    }
    static func string(_ n: String, _ kp: WritableKeyPath<Config, String>, _ s: String, _ d: String) -> ConfigKey {
        ConfigKey(
            name: n, section: s, doc: d, read: { $0[keyPath: kp] },
            write: { c, v in c[keyPath: kp] = try scalar(v, "string") })
    }
    static func strings(_ n: String, _ kp: WritableKeyPath<Config, [String]>, _ s: String, _ d: String) -> ConfigKey {
        ConfigKey(
            name: n, section: s, doc: d, read: { "[" + $0[keyPath: kp].joined(separator: ", ") + "]" },
            write: { c, v in
                guard !v.isEmpty else { throw ConfigValueError(expected: "a non-empty list") }
                c[keyPath: kp] = v
            })
    }
    static func time(
        _ n: String, _ kp: WritableKeyPath<Config, EpochSeconds?>, end: Bool = false, _ s: String, _ d: String
    ) -> ConfigKey {
        ConfigKey(
            name: n, section: s, doc: d, read: { $0[keyPath: kp].map { "\"\(UTCTime.short($0))\"" } ?? "" },
            write: { c, v in
                let t = try scalar(v, "date")
                if t == "null" || t.isEmpty {
                    c[keyPath: kp] = nil
                    return
                }
                guard let x = UTCTime.parse(t, endOfDay: end) else {
                    throw ConfigValueError(expected: "a UTC date, YYYY-MM-DD[ HH:MM]")
                }
                c[keyPath: kp] = x
            })
    }
    static func enumKey(_ n: String, _ kp: WritableKeyPath<Config, Sources>, _ s: String, _ d: String) -> ConfigKey {
        ConfigKey(
            name: n, section: s, doc: d, read: { $0[keyPath: kp].rawValue },
            write: { c, v in
                guard let x = Sources(rawValue: try scalar(v, "source")) else {
                    throw ConfigValueError(expected: Sources.allCases.map(\.rawValue).joined(separator: " | "))
                }
                c[keyPath: kp] = x
            })
    }
}
