import Foundation
import RainData
import RainModel
import RainSupport
import RainTraining

/// `swiftrain export --run DIR --format pytorch`: the trained parameters as a safetensors file under
/// PyRain's `ConvLSTMForecaster` state_dict names, plus one test sample and SwiftRain's forecast for
/// it, so `tools/check_export.py` can load the weights into PyTorch and compare.
public enum Export {
    /// safetensors: u64 header length, a JSON header (name → dtype, shape, byte offsets), raw little-endian data.
    public static func safetensors(
        path: String, layout: ParameterLayout, params: FlatBuffer, metadata: [String: String]
    ) throws {
        var header: [String: Any] = ["__metadata__": metadata]
        for e in layout.entries {
            header[e.name] =
                ["dtype": "F32", "shape": e.shape, "data_offsets": [4 * e.offset, 4 * (e.offset + e.count)]]
                as [String: Any]
        }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        while json.count % 8 != 0 { json.append(0x20) }  // the format pads the header with spaces to 8 bytes
        var out = Data()
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(json)
        out.append(Data(buffer: UnsafeBufferPointer(start: params.pointer, count: layout.count)))
        try out.write(to: URL(fileURLWithPath: path), options: .atomic)
    }

    /// Writes DIR/export/{model.safetensors, check_input.f32, check_forecast.f32, manifest.json}; returns the
    /// directory.
    public static func run(runPath: String, out: String?, log: (String) -> Void) throws -> String {
        let run = try RunDirectory(path: runPath)
        let model = try run.trainedModel()
        let (layout, ckpt, state, params) = (model.layout, model.checkpoint, model.state, model.params)
        let dir = URL(fileURLWithPath: out ?? run.url.appendingPathComponent("export").path)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try safetensors(
            path: dir.appendingPathComponent("model.safetensors").path, layout: layout, params: params,
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
