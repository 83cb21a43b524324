import Foundation
import RainSupport

/// Area-weighted (first-order conservative) averaging of a finer lat/lon grid onto RainBench's grid,
/// as xESMF's "conservative" method does for regular grids: a target cell's value is the mean of the
/// source cells it overlaps, each weighted by the area of the overlap on the sphere.
///
/// On regular lat/lon grids the overlap area factors into a latitude part (the difference of the
/// sines of the overlap's edges) and a longitude part (the overlap in degrees, across the 0°/360°
/// seam), so one plane is regridded in two passes: along longitude, then along latitude, each over
/// short weight lists. Missing source cells (NaN) are left out of both the sum and the weight; a
/// target cell whose valid source area is under half its covered area is NaN, not the mean of a
/// sliver (a coastline of missing IMERG retrievals would otherwise look like real rain rates).
///
/// Cost per plane: O(source cells) for each pass; memory: one (source rows × target columns) buffer.
struct ConservativeRegridder {
    /// For each target row (south to north): (source row index, latitude weight).
    let rows: [[(Int, Double)]]
    /// For each target column (from 0° E): (source column index, longitude weight in degrees).
    let columns: [[(Int, Double)]]
    let grid: RainGrid
    let sourceRows: Int, sourceColumns: Int

    /// `lats` and `lons`: the source cell centres (any order, longitudes anywhere on the circle).
    /// Cell edges are the midpoints between neighbouring centres; the outermost edges lie half a
    /// spacing out, latitudes clamped to ±90°.
    init(lats: [Double], lons: [Double], grid: RainGrid, subject: String) throws {
        self.grid = grid
        sourceRows = lats.count
        sourceColumns = lons.count
        let latEdges = try Self.edges(lats, what: "latitude", subject: subject).map {
            (min(90, max(-90, $0.0)), min(90, max(-90, $0.1)))
        }
        let lonEdges = try Self.edges(lons, what: "longitude", subject: subject)
        let res = grid.resolution, h = grid.height, w = grid.width
        let radians = Double.pi / 180

        var rows = [[(Int, Double)]](repeating: [], count: h)
        for (i, (lo, hi)) in latEdges.enumerated() {
            let y0 = max(0, Int(((lo + 90) / res).rounded(.down))),
                y1 = min(h - 1, Int(((hi + 90) / res).rounded(.down)))
            guard y0 <= y1 else { continue }
            for y in y0...y1 {
                let bottom = max(lo, -90 + Double(y) * res), top = min(hi, -90 + Double(y + 1) * res)
                let weight = sin(top * radians) - sin(bottom * radians)
                if weight > 0 { rows[y].append((i, weight)) }
            }
        }
        var columns = [[(Int, Double)]](repeating: [], count: w)
        for (j, (west, east)) in lonEdges.enumerated() {
            // Target column x spans [x·res − res/2, x·res + res/2); move the source cell so that its
            // west edge falls in [−res/2, 360 − res/2), then walk the columns it overlaps, mod w.
            let a = (west + res / 2).truncatingRemainder(dividingBy: 360)
            let start = (a < 0 ? a + 360 : a) - res / 2, end = start + (east - west)
            var x = Int(((start + res / 2) / res).rounded(.down))
            while Double(x) * res - res / 2 < end {
                let overlap = min(end, Double(x) * res + res / 2) - max(start, Double(x) * res - res / 2)
                if overlap > 0 { columns[x % w].append((j, overlap)) }
                x += 1
            }
        }
        self.rows = rows
        self.columns = columns
    }

    /// Edges [lo, hi] of each cell from the centres, in the centres' order.
    private static func edges(_ centres: [Double], what: String, subject: String) throws -> [(Double, Double)] {
        let n = centres.count
        guard n >= 2 else {
            throw SwiftRainError(
                subject, "a \(what) axis of \(n) point(s)", expected: "at least two", hint: "check the file")
        }
        let sign: Double = centres[1] > centres[0] ? 1 : -1
        for k in 1..<n where (centres[k] - centres[k - 1]) * sign <= 0 {
            throw SwiftRainError(
                subject, "\(what)s neither ascending nor descending", found: "\(centres[k - 1]) then \(centres[k])",
                hint: "sort the \(what) axis")
        }
        return (0..<n).map { k in
            let before = k > 0 ? (centres[k - 1] + centres[k]) / 2 : centres[0] - (centres[1] - centres[0]) / 2
            let after = k < n - 1 ? (centres[k] + centres[k + 1]) / 2 : centres[k] + (centres[k] - centres[k - 1]) / 2
            return (min(before, after), max(before, after))
        }
    }

    /// Regrids one plane: `value(i, j)` is the source cell at row i, column j (nil when missing).
    /// Returns H×W values in RainBench's order.
    func apply(_ value: (Int, Int) -> Double?) -> [Float] {
        let w = grid.width
        // Pass 1, along longitude: per source row, the weighted sum and valid weight per target column.
        var sums = [Double](repeating: 0, count: sourceRows * w), valid = sums, covered = sums
        for i in 0..<sourceRows {
            for x in 0..<w {
                var s = 0.0, v = 0.0, c = 0.0
                for (j, weight) in columns[x] {
                    c += weight
                    if let a = value(i, j) {
                        s += weight * a
                        v += weight
                    }
                }
                sums[i * w + x] = s
                valid[i * w + x] = v
                covered[i * w + x] = c
            }
        }
        // Pass 2, along latitude.
        var out = [Float](repeating: .nan, count: grid.plane)
        for (y, list) in rows.enumerated() {
            for x in 0..<w {
                var s = 0.0, v = 0.0, c = 0.0
                for (i, weight) in list {
                    s += weight * sums[i * w + x]
                    v += weight * valid[i * w + x]
                    c += weight * covered[i * w + x]
                }
                if c > 0 && v >= 0.5 * c { out[y * w + x] = Float(s / v) }
            }
        }
        return out
    }
}
