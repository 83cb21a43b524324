import Foundation
import RainData
import RainModel
import RainSupport
import RainTraining

/// The truth-vs-forecast maps of one fixed validation sample after an epoch, for TensorBoard's images tab:
/// the run's data are mapped once, and each epoch's checkpoint loads its parameters into the same runner.
public final class EpochMaps {
    private let runPath: String
    private var runner: ModelRunner?

    public init(runPath: String) { self.runPath = runPath }

    /// The maps as `plot` draws them, for the parameters in `checkpoint`: PNG bytes and size (also written to
    /// RUN/figures/epoch-maps.png).
    public func render(checkpoint: String) throws -> (png: [UInt8], width: Int, height: Int) {
        let run = try RunDirectory(path: runPath)
        let model = try run.trainedModel(checkpoint: checkpoint)
        if let runner {
            runner.load(parameters: UnsafeBufferPointer(model.params.buffer))
        } else {
            runner = try model.runner()
        }
        let (canvas, _) = try Plot.mapsFigure(runner!, date: nil, phase: .valid, log: { _ in })
        let dir = run.url.appendingPathComponent("figures")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let path = dir.appendingPathComponent("epoch-maps.png")
        try canvas.writePNG(path: path.path)
        return (Array(try Data(contentsOf: path)), canvas.width, canvas.height)
    }
}
