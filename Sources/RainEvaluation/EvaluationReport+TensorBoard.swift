import Foundation
import RainTensorBoard

extension EvaluationReport {
    /// The scores as TensorBoard scalars, named as a Lightning `test_step` would log them: per lead time L
    /// the model's `<phase>_rmse_<L>h` (physical units) and its skill — `<phase>_csi_<T>_<L>h`,
    /// `<phase>_ets_<T>_<L>h` per threshold T, `<phase>_fss_<S>x<S>_<L>h` per scale, `<phase>_acc_<L>h`,
    /// `<phase>_bias_<L>h` — with `<phase>_loss` (the transformed-space loss).
    public var scalars: [(tag: String, value: Double)] {
        var out: [(String, Double)] = loss.map { [("\(phase)_loss", $0)] } ?? []
        func number(_ x: Double) -> String { x == x.rounded() ? String(Int(x)) : String(x) }
        for l in leads {
            let h = "\(l.hours)h"
            if let m = l.model { out.append(("\(phase)_rmse_\(h)", m)) }
            guard let s = l.skill?["model"] else { continue }
            for c in s.categorical {
                if let v = c.csi { out.append(("\(phase)_csi_\(number(c.threshold))_\(h)", v)) }
                if let v = c.ets { out.append(("\(phase)_ets_\(number(c.threshold))_\(h)", v)) }
            }
            for f in s.fss { if let v = f.fss { out.append(("\(phase)_fss_\(f.scale)x\(f.scale)_\(h)", v)) } }
            if let v = s.acc { out.append(("\(phase)_acc_\(h)", v)) }
            if let v = s.meanBias { out.append(("\(phase)_bias_\(h)", v)) }
        }
        return out.filter { $0.1.isFinite }
    }

    /// Writes the scalars into RUN/tensorboard as a new event file at the checkpoint's global step.
    public func writeTensorBoard(runDirectory: URL, step: Int) throws {
        let file = try EventFile(directory: runDirectory.appendingPathComponent("tensorboard").path)
        try file.scalars(scalars, step: step, wallTime: Date().timeIntervalSince1970)
    }
}
