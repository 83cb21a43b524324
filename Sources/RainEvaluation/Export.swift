import Foundation
import RainData
import RainModel
import RainSupport
import RainTraining

/// `swiftrain export --run DIR --format pytorch [--lightning]`: the trained parameters as a safetensors
/// file under PyRain's own `ConvLSTMForecaster` state_dict names (`rnn._conv.weight`, …,
/// `out_layer2.bias`), plus one test sample and SwiftRain's forecast for it, so `tools/check_export.py`
/// can load the weights into PyRain's class and compare.
public enum Export {
    /// Writes DIR/export/{model.safetensors, check_input.f32, check_forecast.f32, manifest.json}; returns the
    /// directory.
    /// With `lightning`, every name carries the `net.` of a PyRain Lightning checkpoint's state_dict.
    public static func run(runPath: String, out: String?, lightning: Bool = false, log: (String) -> Void) throws
        -> String
    {
        let run = try RunDirectory(path: runPath)
        let model = try run.trainedModel()
        let (layout, ckpt, state, params) = (model.layout, model.checkpoint, model.state, model.params)
        let dir = URL(fileURLWithPath: out ?? run.url.appendingPathComponent("export").path)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try Safetensors.write(
            path: dir.appendingPathComponent("model.safetensors").path, layout: layout, params: params,
            prefix: lightning ? ParameterTensor.lightningPrefix : "",
            metadata: ["format": "pt", "source": "swiftrain", "checkpoint": ckpt, "global_step": "\(state.globalStep)"])
        // One test sample (or valid, if the test partition is empty) and SwiftRain's forecast for it.
        let compute = try model.runner()
        let shape = compute.shape
        let phase: Partition.Name = compute.index.samples(.test).count > 0 ? .test : .valid
        let part = compute.index.samples(phase)
        guard part.count > 0 else {
            throw SwiftRainError(
                "config", "no test or valid samples to check the export with", hint: "`swiftrain inspect --config C`")
        }
        let i = part.count / 2, sample = part.sample(i)
        var input = [Float](repeating: 0, count: compute.assembler.inputCount),
            target = [Float](repeating: 0, count: compute.assembler.targetCount)
        try compute.assembler.assemble(sample, input: &input, target: &target)
        let physical = try compute.forecast(samples: [i], partition: phase).forecast
        let transformed = physical.map { Normalisation.forward($0, std: compute.assembler.targetStd) }
        try input.withUnsafeBufferPointer {
            try Data(buffer: $0).write(to: dir.appendingPathComponent("check_input.f32"))
        }
        try transformed.withUnsafeBufferPointer {
            try Data(buffer: $0).write(to: dir.appendingPathComponent("check_forecast.f32"))
        }
        let manifest: [String: Any] = [
            "cin": shape.cin, "hidden": shape.hidden, "head": shape.head, "height": shape.height, "width": shape.width,
            "steps": compute.assembler.steps, "relu": shape.relu, "phase": phase.rawValue, "t0": UTCTime.iso(sample.t0),
            "lead_hours": Int(sample.lead / 3600),
            "input_shape": [1, compute.assembler.steps, shape.cin, shape.height, shape.width],
            "forecast_shape": [1, 1, shape.height, shape.width], "forecast_space": "transformed: ln(1 + y/std)",
            "target_std": Double(compute.assembler.targetStd),
            "names": lightning
                ? "lightning (net.-prefixed PyRain state_dict)" : "pyrain (ConvLSTMForecaster state_dict)",
        ]
        try JSONSerialization.data(withJSONObject: manifest, options: [.prettyPrinted, .sortedKeys]).write(
            to: dir.appendingPathComponent("manifest.json"))
        log(
            """
            exported \(ckpt) (global step \(state.globalStep)) to \(dir.path); check it with: python3 \
            tools/check_export.py \(dir.path)
            """
        )
        return dir.path
    }
}
