import Foundation

/// The figures of `swiftrain plot`: truth vs forecast maps per lead time, and training curves.
public enum Figures {
    static let ink: Canvas.RGB = (30, 30, 30), grid: Canvas.RGB = (150, 150, 150)

    /// Rows of (truth, forecast) maps, one row per lead time, north up, with latitude/longitude ticks
    /// and one shared colour bar. Planes are H×W, row 0 the southernmost (RainBench's order), column 0 at 0° E.
    public static func maps(
        title: String, unit: String, leads: [Int], truth: [[Float]?], forecast: [[Float]?], height h: Int, width w: Int
    ) -> Canvas {
        let cell = max(2, 320 / w)  // pixels per grid cell
        let pw = w * cell, ph = h * cell
        let left = 70, top = 84, gapX = 56, gapY = 50, barW = 22
        let cw = left + 2 * pw + gapX + 40 + barW + 80, chh = top + leads.count * (ph + gapY) + 30
        var c = Canvas(width: cw, height: chh)
        c.text(title, x: cw / 2, y: 14, scale: 2, anchor: 0.5, ink)
        // One colour scale for every panel: 0 to the 99.5th percentile of the truth.
        let values = truth.compactMap { $0 }.flatMap { $0 }.filter { $0.isFinite }.sorted()
        let vmax = Double(
            max(values.isEmpty ? 1 : values[min(values.count - 1, Int(Double(values.count) * 0.995))], 1e-3))
        for (row, lead) in leads.enumerated() {
            let y0 = top + row * (ph + gapY)
            for (col, panel) in [truth[row], forecast[row]].enumerated() {
                let x0 = left + col * (pw + gapX)
                c.text(
                    (col == 0 ? "truth" : "forecast") + " +\(lead) h", x: x0 + pw / 2, y: y0 - 20, scale: 2,
                    anchor: 0.5, ink)
                if let panel {
                    for gy in 0..<h {
                        for gx in 0..<w {
                            c.fill(
                                x: x0 + gx * cell, y: y0 + (h - 1 - gy) * cell, w: cell, h: cell,
                                Canvas.rainColour(Double(panel[gy * w + gx]) / vmax))
                        }
                    }
                } else {
                    c.text("no sample", x: x0 + pw / 2, y: y0 + ph / 2 - 7, scale: 2, anchor: 0.5, grid)
                }
                c.rectangle(x: x0 - 1, y: y0 - 1, w: pw + 2, h: ph + 2, ink)
                for lat in stride(from: -90, through: 90, by: 45) {  // latitude ticks on the left panel only
                    let y = y0 + Int(Double(ph) * (90 - Double(lat)) / 180)
                    c.line(x0 - 5, min(y, y0 + ph), x0 - 1, min(y, y0 + ph), ink)
                    if col == 0 {
                        c.text(
                            lat == 0 ? "0" : "\(abs(lat))\(lat < 0 ? "S" : "N")", x: x0 - 8, y: min(y, y0 + ph) - 7,
                            scale: 2, anchor: 1, ink)
                    }
                }
                for lon in stride(from: 0, through: 270, by: 90) {
                    let x = x0 + Int(Double(pw) * Double(lon) / 360)
                    c.line(min(x, x0 + pw), y0 + ph, min(x, x0 + pw), y0 + ph + 4, ink)
                    if row == leads.count - 1 {
                        c.text("\(lon)E", x: min(x, x0 + pw), y: y0 + ph + 8, scale: 2, anchor: 0.5, ink)
                    }
                }
            }
        }
        // Colour bar.
        let bx = left + 2 * pw + gapX + 40, by = top, bh = leads.count * (ph + gapY) - gapY
        for i in 0..<bh {
            c.fill(x: bx, y: by + bh - 1 - i, w: barW, h: 1, Canvas.rainColour(Double(i) / Double(bh - 1)))
        }
        c.rectangle(x: bx - 1, y: by - 1, w: barW + 2, h: bh + 2, ink)
        for k in 0...4 {
            let v = vmax * Double(k) / 4, y = by + bh - 1 - Int(Double(bh - 1) * Double(k) / 4)
            c.line(bx + barW, y, bx + barW + 4, y, ink)
            c.text(String(format: vmax >= 10 ? "%.0f" : "%.1f", v), x: bx + barW + 8, y: y - 7, scale: 2, ink)
        }
        c.text(unit, x: bx + barW / 2, y: by - 22, scale: 2, anchor: 0.5, ink)
        return c
    }

    /// Training loss per step (grey, with a moving average in blue) and validation loss per epoch (red),
    /// both in the transformed space the model is trained in, against the global step.
    public static func curves(title: String, steps: [(Int, Double)], valid: [(Int, Double)]) -> Canvas {
        let cw = 900, chh = 520, left = 100, right = 30, top = 50, bottom = 70
        var c = Canvas(width: cw, height: chh)
        c.text(title, x: cw / 2, y: 14, scale: 2, anchor: 0.5, ink)
        let pw = cw - left - right, ph = chh - top - bottom
        let xs = steps.map { Double($0.0) } + valid.map { Double($0.0) }, ys = steps.map(\.1) + valid.map(\.1)
        guard let xmax = xs.max(), let ymaxRaw = ys.max(), let yminRaw = ys.min() else {
            c.text("no metrics yet", x: cw / 2, y: chh / 2, scale: 3, anchor: 0.5, ink)
            return c
        }
        let (ylo, yhi, ystep) = niceRange(yminRaw, ymaxRaw), (_, xhi, xstep) = niceRange(0, max(1, xmax))
        func px(_ x: Double) -> Int { left + Int(Double(pw) * x / xhi) }
        func py(_ y: Double) -> Int { top + ph - Int(Double(ph) * (y - ylo) / (yhi - ylo)) }
        for y in stride(from: ylo, through: yhi + ystep / 2, by: ystep) {
            c.line(left, py(y), left + pw, py(y), (225, 225, 225))
            c.text(
                String(format: ystep < 0.01 ? "%.3f" : ystep < 0.1 ? "%.2f" : "%.1f", y), x: left - 8, y: py(y) - 7,
                scale: 2, anchor: 1, ink)
        }
        for x in stride(from: 0, through: xhi + xstep / 2, by: xstep) {
            c.line(px(x), top + ph, px(x), top + ph + 5, ink)
            c.text("\(Int(x))", x: px(x), y: top + ph + 10, scale: 2, anchor: 0.5, ink)
        }
        c.rectangle(x: left, y: top, w: pw + 1, h: ph + 1, ink)
        c.text("global step", x: left + pw / 2, y: chh - 28, scale: 2, anchor: 0.5, ink)
        c.verticalText("loss (transformed)", x: 22, y: top + ph / 2, scale: 2, ink)
        for i in steps.indices.dropFirst() {
            c.line(
                px(Double(steps[i - 1].0)), py(steps[i - 1].1), px(Double(steps[i].0)), py(steps[i].1), (190, 190, 190))
        }
        let k = max(1, steps.count / 50)  // moving average over ~2% of the run
        var avg: [(Int, Double)] = []
        for i in steps.indices where i >= k - 1 {
            avg.append((steps[i].0, steps[(i - k + 1)...i].map(\.1).reduce(0, +) / Double(k)))
        }
        for i in avg.indices.dropFirst() {
            c.line(
                px(Double(avg[i - 1].0)), py(avg[i - 1].1), px(Double(avg[i].0)), py(avg[i].1), (33, 113, 181),
                thickness: 3)
        }
        for i in valid.indices {
            if i > 0 {
                c.line(
                    px(Double(valid[i - 1].0)), py(valid[i - 1].1), px(Double(valid[i].0)), py(valid[i].1),
                    (200, 30, 30), thickness: 3)
            }
            c.fill(x: px(Double(valid[i].0)) - 5, y: py(valid[i].1) - 5, w: 11, h: 11, (200, 30, 30))
        }
        // Legend.
        let lx = left + pw - 380, ly = top + 14
        c.fill(x: lx, y: ly + 6, w: 30, h: 3, (33, 113, 181))
        c.text("train loss (moving average)", x: lx + 40, y: ly, scale: 2, ink)
        c.fill(x: lx, y: ly + 30, w: 30, h: 3, (200, 30, 30))
        c.text("validation loss", x: lx + 40, y: ly + 24, scale: 2, ink)
        return c
    }

    /// A range covering [lo, hi] with 4–8 ticks at 1, 2 or 5 × 10^k.
    static func niceRange(_ lo: Double, _ hi: Double) -> (Double, Double, Double) {
        let span = max(hi - lo, abs(hi) * 1e-3, 1e-9)
        let raw = span / 5, mag = pow(10, floor(log10(raw)))
        let step = [1.0, 2, 5, 10].map { $0 * mag }.first { $0 >= raw } ?? 10 * mag
        return (floor(lo / step) * step, ceil(hi / step) * step, step)
    }
}
