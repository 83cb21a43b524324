import Foundation
import RainPlot
import XCTest

/// The figures' pieces: coastline contours against hand-worked squares, and Cairo's drawing (anti-aliased
/// TrueType text, PNG files) checked on its pixels.
final class PlotTests: XCTestCase {
    /// Segments as a set of sorted, rounded endpoint pairs (order and direction do not matter).
    func normalised(_ segs: [(Contour.Point, Contour.Point)]) -> Set<[Double]> {
        Set(
            segs.map { a, b in
                let p = [a.x, a.y].map { ($0 * 1000).rounded() / 1000 },
                    q = [b.x, b.y].map { ($0 * 1000).rounded() / 1000 }
                return p.lexicographicallyPrecedes(q) ? p + q : q + p
            })
    }

    func testOneLandCellGivesADiamondThroughTheEdgeMidpoints() {
        // 3 rows × 4 columns, land (1) at row 1, column 1: the 0.5 contour crosses each edge to a neighbour
        // half-way, (1.5, 1), (1, 1.5), (0.5, 1), (1, 0.5): four segments around the cell.
        var f = [Float](repeating: 0, count: 12)
        f[1 * 4 + 1] = 1
        let got = normalised(Contour.segments(f, height: 3, width: 4, level: 0.5))
        let expected = normalised([
            ((1, 0.5), (0.5, 1)), ((1.5, 1), (1, 0.5)), ((0.5, 1), (1, 1.5)), ((1, 1.5), (1.5, 1)),
        ])
        XCTAssertEqual(got, expected)
        // The crossing is interpolated: at level 0.25 it lies three quarters of the way from the land centre
        // to the sea centre, at 1 ± 0.75.
        let quarter = normalised(Contour.segments(f, height: 3, width: 4, level: 0.25))
        XCTAssertTrue(quarter.contains([0.25, 1, 1, 0.25]), "\(quarter)")
    }

    func testContoursWrapAcrossTheDateLine() {
        // Land in column 0 (row 1): the crossing towards column 3's side lies in the square between column 3
        // and column 4 ≡ 0, at x = 3.5.
        var f = [Float](repeating: 0, count: 12)
        f[1 * 4 + 0] = 1
        let got = normalised(Contour.segments(f, height: 3, width: 4, level: 0.5))
        XCTAssertEqual(got.count, 4)
        XCTAssertTrue(got.contains([3.5, 1, 4, 0.5]) && got.contains([3.5, 1, 4, 1.5]), "\(got)")
        XCTAssertTrue(got.contains([0, 0.5, 0.5, 1]), "\(got)")
    }

    func testSaddlesFollowTheMeanOfTheCorners() {
        // One square, corners (0,0) and (1,1) land: mean 0.5 ≥ 0.5 joins them (the segments cut off the two sea
        // corners); at level 0.6 the mean is below and they stay apart.
        let f: [Float] = [1, 0, 0, 1]  // rows: (0,0)=1 (1,0)=0 / (0,1)=0 (1,1)=1, width 2
        // With width 2 the wrap square repeats the pattern mirrored; look at the square x = 0 only.
        let joined = normalised(
            Contour.segments(f, height: 2, width: 2, level: 0.5).filter { max($0.0.x, $0.1.x) <= 1 })
        XCTAssertEqual(joined, normalised([((0.5, 0), (1, 0.5)), ((0.5, 1), (0, 0.5))]))
        let apart = normalised(Contour.segments(f, height: 2, width: 2, level: 0.6).filter { max($0.0.x, $0.1.x) <= 1 })
        XCTAssertEqual(apart, normalised([((0, 0.4), (0.4, 0)), ((1, 0.6), (0.6, 1))]))
    }

    func testTextIsAntiAliasedTrueTypeAndPNGIsWritten() throws {
        let c = Canvas(width: 200, height: 40)
        c.text("Rain 1.0 mm/h", x: 10, y: 8, size: 18, (0, 0, 0))
        let px = c.pixels
        let greys = Set(stride(from: 0, to: px.count, by: 3).map { px[$0] })
        // A bitmap font gives two levels (ink, paper); an anti-aliased outline font many in between.
        XCTAssertGreaterThan(greys.count, 20, "text must be anti-aliased")
        XCTAssertTrue(greys.contains(0) || greys.min()! < 40, "text must be drawn dark")
        // The ink sits where it was put: inside x ≥ 10, the first row of paper above y = 8.
        let inkColumns = (0..<200).filter { x in (0..<40).contains { y in px[3 * (y * 200 + x)] < 128 } }
        XCTAssertGreaterThanOrEqual(inkColumns.first ?? 0, 10)
        XCTAssertGreaterThan(inkColumns.count, 60, "a line of text at 18 points is over 60 pixels wide")
        XCTAssertGreaterThan(c.textWidth("Rain 1.0 mm/h", size: 18), 90)

        let url = temporaryDirectory(self).appendingPathComponent("t.png")
        try c.writePNG(path: url.path)
        let d = try Data(contentsOf: url)
        XCTAssertEqual(Array(d.prefix(8)), [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        XCTAssertEqual(d[16..<24].map { $0 }, [0, 0, 0, 200, 0, 0, 0, 40], "IHDR width and height")
        let e = errorText { try c.writePNG(path: "/nonexistent-dir/x.png") }
        XCTAssertTrue(e.contains("/nonexistent-dir/x.png") && e.contains("cannot write the figure"), e)
    }

    func testMapsDrawCoastlinesWhereTheMaskChanges() {
        // 4 × 8 grid, land in the west half: the coast runs north–south at the boundary columns 3|4 and 7|0.
        let h = 4, w = 8
        let land = (0..<(h * w)).map { Float($0 % w < 4 ? 1 : 0) }
        let zeros = [Float](repeating: 0, count: h * w)
        let with = Figures.maps(
            title: "t", unit: "mm/h", leads: [24], truth: [zeros], forecast: [zeros], land: land, height: h, width: w)
        let without = Figures.maps(
            title: "t", unit: "mm/h", leads: [24], truth: [zeros], forecast: [zeros], height: h, width: w)
        XCTAssertEqual(with.width, without.width)
        // Dry truth is white: the only dark pixels inside the left panel's interior are the coastline, at the
        // panel's horizontal middle (between columns 3 and 4: x0 + 4 cells).
        let a = with.pixels, b = without.pixels
        let cell = 320 / w, x0 = 62, y0 = 70
        func dark(_ px: [UInt8], _ x: Int, _ y: Int) -> Bool { px[3 * (y * with.width + x)] < 160 }
        let midY = y0 + h * cell / 2
        XCTAssertTrue((x0 + 4 * cell - 2...x0 + 4 * cell + 2).contains { dark(a, $0, midY) }, "coast at the boundary")
        XCTAssertFalse((x0 + 4 * cell - 2...x0 + 4 * cell + 2).contains { dark(b, $0, midY) }, "no mask, no coast")
        XCTAssertFalse((x0 + 5...x0 + 3 * cell).contains { dark(a, $0, midY) }, "no coast inside the land")
    }
}
