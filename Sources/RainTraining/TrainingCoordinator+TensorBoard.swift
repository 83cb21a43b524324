import Foundation
import RainConfig
import RainSupport
import RainTensorBoard

/// What a PyTorch Lightning user sees in TensorBoard for PyRain, written from the coordinator's own records
/// (the same values as metrics.jsonl): per step `train_loss`, `lr-Adam`, `epoch`, `samples_per_s`, `comm_s`,
/// `live_workers`; per epoch `val_loss`, `val_rmse_<lead>h` and `hp_metric` (the best val_loss); the resolved
/// configuration in the HParams tab.
extension TrainingCoordinator {
    /// Opens a new event file (a resumed run adds one; TensorBoard merges them) and writes the hyperparameters.
    func openEvents() {
        guard !options.noTensorBoard else { return }
        let now = Date().timeIntervalSince1970
        do {
            let file = try EventFile(directory: run.url.appendingPathComponent("tensorboard").path, now: now)
            let hparams = config.keyValues.map { key, value -> (name: String, value: HParam) in
                if value == "true" || value == "false" { return (key, .flag(value == "true")) }
                if let d = Double(value), d.isFinite { return (key, .number(d)) }
                return (key, .text(value))
            }
            try file.hparams(hparams, metrics: ["hp_metric", "val_loss"], wallTime: now)
            events = file
        } catch { eventsFailed(error) }
    }

    /// Scalars at `step`; a failure to write turns TensorBoard off for the run, never the training.
    func logScalars(_ values: [(tag: String, value: Double)], step: Int) {
        guard let file = events else { return }
        do { try file.scalars(values, step: step, wallTime: Date().timeIntervalSince1970) } catch {
            eventsFailed(error)
        }
    }

    /// The maps of the epoch's checkpoint as an image at `step`; a failure to draw stops the maps, not the run.
    func logMaps(checkpoint: String, step: Int) {
        guard let file = events, let draw = epochImages, options.logMapsEvery > 0,
            state.epoch % options.logMapsEvery == 0
        else { return }
        do {
            let m = try draw(checkpoint)
            try file.image(
                tag: "maps/valid", png: m.png, width: m.width, height: m.height, step: step,
                wallTime: Date().timeIntervalSince1970)
        } catch {
            epochImages = nil
            log("warning: TensorBoard maps stopped (the scalars go on): \(error)")
        }
    }

    private func eventsFailed(_ error: Error) {
        events = nil
        log("warning: TensorBoard logging stopped (metrics.jsonl goes on): \(error)")
    }
}
