import Foundation
import RainEvaluation
import XCTest

/// Every skill score against values worked out by hand (in the comments) on fields of a few cells,
/// including the edge cases: no events, every cell an event, a forecast that is the climatology.
final class SkillTests: XCTestCase {
    // A 2 × 3 grid: f and o events (≥ 1) at
    //   f = 5 5 0     o = 5 0 0      a (both) = cells 0, 4; b (f only) = 1; c (o only) = 5; d = 2, 3
    //       0 5 0         0 5 5
    let f: [Float] = [5, 5, 0, 0, 5, 0], o: [Float] = [5, 0, 0, 0, 5, 5]
    let clim = [Float](repeating: 1, count: 6)

    func skill(_ weights: [Float], _ width: Int, _ settings: SkillSettings, _ samples: [([Float], [Float], [Float])])
        -> SkillScores
    {
        var acc = SkillAccumulator(settings: settings, latWeights: weights, width: width)
        for (f, o, c) in samples { acc.add(forecast: f, truth: o, climatology: c) }
        return acc.scores
    }

    func assertScores(
        _ s: CategoricalScores, _ expected: [Double?], file: StaticString = #filePath, line: UInt = #line
    ) {
        let got = [s.frequencyBias, s.pod, s.far, s.csi, s.ets]
        for (name, (g, e)) in zip(["bias", "POD", "FAR", "CSI", "ETS"], zip(got, expected)) {
            if let e {
                XCTAssertEqual(g ?? .nan, e, accuracy: 1e-9, "\(name) at \(s.threshold)", file: file, line: line)
            } else {
                XCTAssertNil(g, "\(name) at \(s.threshold) has no denominator", file: file, line: line)
            }
        }
    }

    func testContingencyScoresUnweightedAndLatitudeWeighted() {
        let settings = SkillSettings(thresholds: [1, 4.5, 10, 0], fssScales: [], fssThreshold: 1)
        let s = skill([1, 1], 3, settings, [(f, o, clim)])
        // a = 2, b = 1, c = 1, d = 2, n = 6: bias 3/3, POD 2/3, FAR 1/3, CSI 2/4; r = 3·3/6 = 1.5,
        // ETS = (2 − 1.5)/(4 − 1.5) = 0.2.
        assertScores(s.categorical[0], [1, 2.0 / 3, 1.0 / 3, 0.5, 0.2])
        // ≥ 4.5 is the same events here (values are 0 or 5).
        assertScores(s.categorical[1], [1, 2.0 / 3, 1.0 / 3, 0.5, 0.2])
        // ≥ 10: no event forecast or observed: every score is undefined.
        assertScores(s.categorical[2], [nil, nil, nil, nil, nil])
        // ≥ 0: every cell an event in both: a = n. Bias, POD, CSI 1, FAR 0; ETS has 0/0.
        assertScores(s.categorical[3], [1, 1, 0, 1, nil])

        // Rows weighted 0.5 and 1.5: a = 0.5 + 1.5 = 2, b = 0.5, c = 1.5, d = 0.5 + 1.5 = 2, n = 6.
        // bias 2.5/3.5, POD 2/3.5, FAR 0.5/2.5, CSI 2/4; r = 2.5·3.5/6, ETS = (2 − r)/(4 − r).
        let w = skill([0.5, 1.5], 3, settings, [(f, o, clim)])
        let r = 2.5 * 3.5 / 6
        assertScores(w.categorical[0], [2.5 / 3.5, 2 / 3.5, 0.2, 0.5, (2 - r) / (4 - r)])
    }

    func testTablesPoolOverSamplesAndEdgeCasesOfOneSidedEvents() {
        let settings = SkillSettings(thresholds: [1], fssScales: [], fssThreshold: 1)
        // Second sample: nothing forecast, two events observed: adds c = 2, d = 4. Pooled a = 2, b = 1,
        // c = 3, d = 6, n = 12: bias 3/5, POD 2/5, FAR 1/3, CSI 2/6; r = 3·5/12 = 1.25,
        // ETS = (2 − 1.25)/(6 − 1.25).
        let none = [Float](repeating: 0, count: 6), two: [Float] = [0, 3, 0, 0, 0, 3]
        let s = skill([1, 1], 3, settings, [(f, o, clim), (none, two, clim)])
        assertScores(s.categorical[0], [0.6, 0.4, 1.0 / 3, 2.0 / 6, 0.75 / 4.75])
        // Only that sample: a = b = 0: bias 0, POD 0, FAR undefined, CSI 0, r = 0, ETS 0.
        assertScores(skill([1, 1], 3, settings, [(none, two, clim)]).categorical[0], [0, 0, nil, 0, 0])
        // Events forecast, none observed: bias, POD undefined; FAR 1; CSI 0; ETS 0.
        assertScores(skill([1, 1], 3, settings, [(two, none, clim)]).categorical[0], [nil, nil, 1, 0, 0])
    }

    func testMeanBiasAndAnomalyCorrelation() {
        let settings = SkillSettings(thresholds: [], fssScales: [], fssThreshold: 1)
        // f − o = 0 5 0 / 0 0 −5: unweighted mean 0; rows 0.5, 1.5: (0.5·5 − 1.5·5)/6 = −5/6.
        XCTAssertEqual(skill([1, 1], 3, settings, [(f, o, clim)]).meanBias!, 0, accuracy: 1e-12)
        XCTAssertEqual(skill([0.5, 1.5], 3, settings, [(f, o, clim)]).meanBias!, -5.0 / 6, accuracy: 1e-12)
        // Anomalies from c = 1: f′ = 4 4 −1 −1 4 −1, o′ = 4 −1 −1 −1 4 4:
        // Σf′o′ = 16 − 4 + 1 + 1 + 16 − 4 = 26, Σf′² = Σo′² = 51: ACC = 26/51.
        // A perfect sample has ACC 1; the mean is over samples.
        let one = skill([1, 1], 3, settings, [(f, o, clim)])
        XCTAssertEqual(one.acc!, 26.0 / 51, accuracy: 1e-12)
        let two = skill([1, 1], 3, settings, [(f, o, clim), (o, o, clim)])
        XCTAssertEqual(two.acc!, (26.0 / 51 + 1) / 2, accuracy: 1e-12)
        // A forecast that is the climatology has no anomaly: its samples are left out, and alone it has none.
        XCTAssertNil(skill([1, 1], 3, settings, [(clim, o, clim)]).acc)
        XCTAssertEqual(skill([1, 1], 3, settings, [(f, o, clim), (clim, o, clim)]).acc!, 26.0 / 51, accuracy: 1e-12)
    }

    func testFractionsSkillScoreWrapsLongitudeAndStopsAtThePoles() {
        // A 3 × 4 grid, one forecast event at (row 1, column 0), one observed at (1, 1).
        var fe = [Float](repeating: 0, count: 12), oe = fe
        fe[4] = 2
        oe[5] = 2
        let settings = SkillSettings(thresholds: [], fssScales: [1, 3], fssThreshold: 1)
        let s = skill([1, 1, 1], 4, settings, [(fe, oe, [Float](repeating: 0, count: 12))])
        // n = 1: the fractions are the events: Σ(Pf − Po)² = 2, ΣPf² + ΣPo² = 2: FSS 0.
        XCTAssertEqual(s.fss[0].fss!, 0, accuracy: 1e-12)
        // n = 3: windows of rows 0–1 at the top (6 cells), 0–2 in the middle (9), 1–2 at the bottom (6); columns
        // x − 1 … x + 1 modulo 4. Pf = 1/6, 1/9, 1/6 down columns 3, 0, 1 (column 3 wraps onto 0) and 0 in column
        // 2; Po the same in columns 0, 1, 2. They differ only in columns 3 and 2: Σ(Pf − Po)² = 2 k,
        // ΣPf² = ΣPo² = 3 k with k = 1/36 + 1/81 + 1/36, so FSS = 1 − 2k/6k = 2/3.
        XCTAssertEqual(s.fss[1].fss!, 2.0 / 3, accuracy: 1e-12)
        XCTAssertEqual(s.fss[1].scale, 3)
        // No events in either field: undefined.
        let zero = [Float](repeating: 0, count: 12)
        XCTAssertNil(skill([1, 1, 1], 4, settings, [(zero, zero, zero)]).fss[1].fss)
        // A perfect forecast scores 1 at every scale.
        XCTAssertEqual(skill([1, 1, 1], 4, settings, [(oe, oe, zero)]).fss.map { $0.fss! }, [1, 1])
    }
}
