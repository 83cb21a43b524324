import Foundation
import RainData
import RainModel
import RainSupport
import RainTraining

/// The truth-vs-forecast maps of one fixed validation sample for an epoch's checkpoint, for TensorBoard's
/// images tab. `swiftrain plot --epoch-maps CKPT` draws them in a child process of the coordinator, so the
/// model and the mapped data it needs never live in the coordinator (which holds no parameters).
public enum EpochMaps {
    /// Draws the maps as `plot` does for the parameters in `checkpoint` into RUN/figures/epoch-maps.png;
    /// returns its path.
    public static func render(runPath: String, checkpoint: String) throws -> String {
        let run = try RunDirectory(path: runPath)
        let model = try run.trainedModel(checkpoint: checkpoint)
        let (canvas, _) = try Plot.mapsFigure(model.runner(), date: nil, phase: .valid, log: { _ in })
        let dir = run.url.appendingPathComponent("figures")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let path = dir.appendingPathComponent("epoch-maps.png").path
        try canvas.writePNG(path: path)
        return path
    }

    /// The width and height a PNG's IHDR chunk declares; nil when `png` is not a PNG.
    public static func size(png: [UInt8]) -> (width: Int, height: Int)? {
        guard png.count >= 24, png[0..<8].elementsEqual([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]),
            png[12..<16].elementsEqual(Array("IHDR".utf8))
        else { return nil }
        let be = { (i: Int) in png[i..<i + 4].reduce(0) { $0 << 8 | Int($1) } }
        return (be(16), be(20))
    }
}
