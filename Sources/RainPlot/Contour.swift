/// Contour lines of a field on the globe's grid by marching squares: how the maps draw coastlines from
/// the land–sea mask (`lsm` = 0.5).
public enum Contour {
    public typealias Point = (x: Double, y: Double)

    /// Segments of the `level` contour of `field` (H × W, row 0 the southernmost), in grid coordinates:
    /// x = column, y = row, at cell centres. Longitude wraps: the squares between column W − 1 and column
    /// 0 give points with W − 1 < x ≤ W. A saddle square (diagonal corners inside) is resolved by the
    /// mean of its corners.
    public static func segments(_ field: [Float], height h: Int, width w: Int, level: Float) -> [(Point, Point)] {
        guard h >= 2, w >= 2, field.count == h * w else { return [] }
        var out: [(Point, Point)] = []
        for y in 0..<(h - 1) {
            for x in 0..<w {
                let xr = (x + 1) % w
                // Corners anticlockwise from the bottom left: (x, y), (x+1, y), (x+1, y+1), (x, y+1).
                let v = [field[y * w + x], field[y * w + xr], field[(y + 1) * w + xr], field[(y + 1) * w + x]]
                let corners: [Point] = [
                    (Double(x), Double(y)), (Double(x + 1), Double(y)), (Double(x + 1), Double(y + 1)),
                    (Double(x), Double(y + 1)),
                ]
                var index = 0
                for k in 0..<4 where v[k] >= level { index |= 1 << k }
                // Where the contour crosses edge k (corner k to corner k+1).
                func cross(_ k: Int) -> Point {
                    let (a, b) = (k, (k + 1) % 4)
                    let t = Double((level - v[a]) / (v[b] - v[a]))
                    return (
                        corners[a].x + t * (corners[b].x - corners[a].x),
                        corners[a].y + t * (corners[b].y - corners[a].y)
                    )
                }
                let centreInside = (v.reduce(0, +) / 4) >= level
                for (e0, e1) in edges(index, centreInside) { out.append((cross(e0), cross(e1))) }
            }
        }
        return out
    }

    /// The pairs of crossed edges (0 bottom, 1 right, 2 top, 3 left) for a square's inside-corner bits.
    static func edges(_ index: Int, _ centreInside: Bool) -> [(Int, Int)] {
        switch index {
        case 1, 14: return [(3, 0)]
        case 2, 13: return [(0, 1)]
        case 3, 12: return [(3, 1)]
        case 4, 11: return [(1, 2)]
        case 6, 9: return [(0, 2)]
        case 7, 8: return [(2, 3)]
        // Saddles: corners 0 and 2 (5) or 1 and 3 (10) inside; the centre says whether they connect.
        case 5: return centreInside ? [(0, 1), (2, 3)] : [(3, 0), (1, 2)]
        case 10: return centreInside ? [(3, 0), (1, 2)] : [(0, 1), (2, 3)]
        default: return []
        }
    }
}
