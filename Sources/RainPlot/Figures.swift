import Foundation

/// The figures of `swiftrain plot`: truth vs forecast maps per lead time, and training curves.
public enum Figures {
    static let ink: Canvas.RGB = (30, 30, 30), grid: Canvas.RGB = (150, 150, 150), coast: Canvas.RGB = (60, 60, 60)

    /// Rows of (truth, forecast) maps, one row per lead time, north up, with coastlines (the 0.5 contour of
    /// `land`, the land–sea mask, when given), latitude/longitude ticks and one colour bar in `unit`.
    /// Planes are H×W, row 0 the southernmost (RainBench's order), column 0 at 0° E.
    public static func maps(
        title: String, unit: String, leads: [Int], truth: [[Float]?], forecast: [[Float]?], land: [Float]? = nil,
        height h: Int, width w: Int
    ) -> Canvas {
        let cell = Double(max(2, 320 / w))  // pixels per grid cell
        let pw = Double(w) * cell, ph = Double(h) * cell
        let left = 62.0, top = 70.0, gapX = 40.0, gapY = 52.0, barW = 18.0
        let cw = Int(left + 2 * pw + gapX + 36 + barW + 70)
        let chh = Int(top + Double(leads.count) * (ph + gapY) + 12)
        let c = Canvas(width: cw, height: chh)
        c.text(title, x: Double(cw) / 2, y: 14, size: 17, anchor: 0.5, bold: true, ink)
        // One colour scale for every panel: 0 to the 99.5th percentile of the truth.
        let values = truth.compactMap { $0 }.flatMap { $0 }.filter { $0.isFinite }.sorted()
        let vmax = Double(
            max(values.isEmpty ? 1 : values[min(values.count - 1, Int(Double(values.count) * 0.995))], 1e-3))
        let coastline = land.map { Contour.segments($0, height: h, width: w, level: 0.5) } ?? []
        for (row, lead) in leads.enumerated() {
            let y0 = top + Double(row) * (ph + gapY)
            for (col, panel) in [truth[row], forecast[row]].enumerated() {
                let x0 = left + Double(col) * (pw + gapX)
                c.text(
                    (col == 0 ? "truth" : "forecast") + " +\(lead) h", x: x0 + pw / 2, y: y0 - 22, size: 14,
                    anchor: 0.5, ink)
                if let panel {
                    for gy in 0..<h {
                        for gx in 0..<w {
                            c.fill(
                                x: x0 + Double(gx) * cell, y: y0 + Double(h - 1 - gy) * cell, w: cell, h: cell,
                                Canvas.rainColour(Double(panel[gy * w + gx]) / vmax), crisp: true)
                        }
                    }
                } else {
                    c.text("no sample", x: x0 + pw / 2, y: y0 + ph / 2 - 8, size: 14, anchor: 0.5, grid)
                }
                // Coastlines: grid coordinates to pixels (cell centres), drawn again one globe to the left so
                // the squares across the date line reach the panel's left edge too.
                c.clipped(x: x0, y: y0, w: pw, h: ph) {
                    for shift in [0.0, -Double(w)] {
                        c.segments(
                            coastline.map { a, b in
                                (
                                    (x0 + (a.x + shift + 0.5) * cell, y0 + ph - (a.y + 0.5) * cell),
                                    (x0 + (b.x + shift + 0.5) * cell, y0 + ph - (b.y + 0.5) * cell)
                                )
                            }, coast, width: 1.2)
                    }
                }
                c.rectangle(x: x0 - 1, y: y0 - 1, w: pw + 2, h: ph + 2, ink)
                for lat in stride(from: -60, through: 60, by: 30) {
                    let y = y0 + ph * (90 - Double(lat)) / 180
                    c.line(x0 - 5, y, x0 - 1, y, ink)
                    if col == 0 {
                        let label = lat == 0 ? "0°" : "\(abs(lat))°\(lat < 0 ? "S" : "N")"
                        c.text(label, x: x0 - 8, y: y - 7, size: 11, anchor: 1, ink)
                    }
                }
                for lon in stride(from: 0, through: 360, by: 90) {
                    let x = x0 + pw * Double(lon) / 360
                    c.line(x, y0 + ph, x, y0 + ph + 4, ink)
                    c.text(longitudeLabel(lon), x: x, y: y0 + ph + 6, size: 11, anchor: 0.5, ink)
                }
            }
        }
        // Colour bar, in the target's physical units.
        let bx = left + 2 * pw + gapX + 36, by = top, bh = Double(leads.count) * (ph + gapY) - gapY
        let steps = Int(bh)
        for i in 0..<steps {
            c.fill(
                x: bx, y: by + bh - Double(i + 1), w: barW, h: 1, Canvas.rainColour(Double(i) / Double(steps - 1)),
                crisp: true)
        }
        c.rectangle(x: bx - 1, y: by - 1, w: barW + 2, h: bh + 2, ink)
        for k in 0...4 {
            let v = vmax * Double(k) / 4, y = by + bh - bh * Double(k) / 4
            c.line(bx + barW, y, bx + barW + 4, y, ink)
            c.text(String(format: vmax >= 10 ? "%.0f" : "%.1f", v), x: bx + barW + 7, y: y - 7, size: 11, ink)
        }
        c.text(unit, x: bx + barW / 2, y: by - 22, size: 13, anchor: 0.5, ink)
        return c
    }

    /// Training loss per step (grey, with a moving average in blue) and validation loss per epoch (red),
    /// both in the transformed space the model is trained in, against the global step.
    /// The training and validation loss curves of a run's metrics.jsonl, titled "`name`: …".
    public static func curves(metricsPath: String, title name: String) -> Canvas {
        var steps: [(Int, Double)] = [], valid: [(Int, Double)] = []
        let text = (try? String(contentsOfFile: metricsPath, encoding: .utf8)) ?? ""
        for line in text.split(separator: "\n") {
            guard let o = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                let g = o["global_step"] as? Int
            else { continue }
            if o["kind"] as? String == "step", let l = o["loss"] as? Double { steps.append((g, l)) }
            if o["kind"] as? String == "valid", let l = o["val_loss"] as? Double { valid.append((g, l)) }
        }
        return curves(title: "\(name): training and validation loss", steps: steps, valid: valid)
    }

    public static func curves(title: String, steps: [(Int, Double)], valid: [(Int, Double)]) -> Canvas {
        let cw = 900, chh = 520, left = 90.0, right = 30.0, top = 50.0, bottom = 64.0
        let c = Canvas(width: cw, height: chh)
        c.text(title, x: Double(cw) / 2, y: 14, size: 17, anchor: 0.5, bold: true, ink)
        let pw = Double(cw) - left - right, ph = Double(chh) - top - bottom
        let xs = steps.map { Double($0.0) } + valid.map { Double($0.0) }, ys = steps.map(\.1) + valid.map(\.1)
        guard let xmax = xs.max(), let ymaxRaw = ys.max(), let yminRaw = ys.min() else {
            c.text("no metrics yet", x: Double(cw) / 2, y: Double(chh) / 2, size: 20, anchor: 0.5, ink)
            return c
        }
        let (ylo, yhi, ystep) = niceRange(yminRaw, ymaxRaw), (_, xhi, xstep) = niceRange(0, max(1, xmax))
        func px(_ x: Double) -> Double { left + pw * x / xhi }
        func py(_ y: Double) -> Double { top + ph - ph * (y - ylo) / (yhi - ylo) }
        for y in stride(from: ylo, through: yhi + ystep / 2, by: ystep) {
            c.line(left, py(y), left + pw, py(y), (225, 225, 225))
            c.text(
                String(format: ystep < 0.01 ? "%.3f" : ystep < 0.1 ? "%.2f" : "%.1f", y), x: left - 8, y: py(y) - 7,
                size: 12, anchor: 1, ink)
        }
        for x in stride(from: 0, through: xhi + xstep / 2, by: xstep) {
            c.line(px(x), top + ph, px(x), top + ph + 5, ink)
            c.text("\(Int(x))", x: px(x), y: top + ph + 9, size: 12, anchor: 0.5, ink)
        }
        c.rectangle(x: left, y: top, w: pw + 1, h: ph + 1, ink)
        c.text("global step", x: left + pw / 2, y: Double(chh) - 30, size: 14, anchor: 0.5, ink)
        c.text("loss (transformed)", x: 20, y: top + ph / 2, size: 14, anchor: 0.5, vertical: true, ink)
        c.polyline(steps.map { (px(Double($0.0)), py($0.1)) }, (190, 190, 190))
        let k = max(1, steps.count / 50)  // moving average over ~2% of the run
        var avg: [(Int, Double)] = []
        for i in steps.indices where i >= k - 1 {
            avg.append((steps[i].0, steps[(i - k + 1)...i].map(\.1).reduce(0, +) / Double(k)))
        }
        c.polyline(avg.map { (px(Double($0.0)), py($0.1)) }, (33, 113, 181), width: 2.5)
        c.polyline(valid.map { (px(Double($0.0)), py($0.1)) }, (200, 30, 30), width: 2.5)
        for v in valid { c.fill(x: px(Double(v.0)) - 4.5, y: py(v.1) - 4.5, w: 9, h: 9, (200, 30, 30)) }
        // Legend.
        let lx = left + pw - 300, ly = top + 14
        c.fill(x: lx, y: ly + 7, w: 30, h: 3, (33, 113, 181))
        c.text("train loss (moving average)", x: lx + 40, y: ly, size: 13, ink)
        c.fill(x: lx, y: ly + 31, w: 30, h: 3, (200, 30, 30))
        c.text("validation loss", x: lx + 40, y: ly + 24, size: 13, ink)
        return c
    }

    /// 0°, 90°E, 180°, 90°W, 0° for 0 … 360° east.
    static func longitudeLabel(_ lon: Int) -> String {
        lon % 360 == 0 ? "0°" : lon == 180 ? "180°" : lon < 180 ? "\(lon)°E" : "\(360 - lon)°W"
    }

    /// A range covering [lo, hi] with 4–8 ticks at 1, 2 or 5 × 10^k.
    static func niceRange(_ lo: Double, _ hi: Double) -> (Double, Double, Double) {
        let span = max(hi - lo, abs(hi) * 1e-3, 1e-9)
        let raw = span / 5, mag = pow(10, floor(log10(raw)))
        let step = [1.0, 2, 5, 10].map { $0 * mag }.first { $0 >= raw } ?? 10 * mag
        return (floor(lo / step) * step, ceil(hi / step) * step, step)
    }
}
