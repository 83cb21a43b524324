import Foundation
import RainConfig
import RainModel
import RainSupport
import RainTraining

/// `swiftrain import --safetensors FILE --config C --run DIR`: PyRain-named weights (a
/// `ConvLSTMForecaster` state_dict, or a Lightning checkpoint's `net.`-prefixed one) become a SwiftRain
/// run at step 0: DIR/config.yaml and DIR/checkpoints/last.ckpt, which `eval`, `predict`, `plot`,
/// `export` and `train --resume` (fine-tuning from these weights, Adam's moments at zero) accept.
public enum Import {
    /// Returns the checkpoint written.
    public static func run(safetensors: String, config: Config, runPath: String, log: (String) -> Void) throws
        -> String
    {
        let existing = URL(fileURLWithPath: runPath).appendingPathComponent("checkpoints/last.ckpt").path
        guard !FileManager.default.fileExists(atPath: existing) else {
            throw SwiftRainError(
                existing, "the run already has a checkpoint", expected: "a new run directory",
                hint: "choose another --run (importing would replace that run's training)")
        }
        let layout = ParameterLayout(try ModelShape(config: config))
        let params = try Safetensors.read(path: safetensors, layout: layout)
        let run = try RunDirectory(path: runPath)  // made only once the weights are known to fit
        try ("# imported from \(safetensors)\n" + config.yaml()).write(
            toFile: run.configPath, atomically: true, encoding: .utf8)
        let zeros = FlatBuffer(count: layout.count)
        try Checkpoint.write(
            path: run.lastCheckpoint, state: .start(layout: layout, config: config), params: params, m: zeros,
            v: zeros)
        log("imported \(layout.count) parameters from \(safetensors) into \(run.lastCheckpoint)")
        return run.lastCheckpoint
    }
}
