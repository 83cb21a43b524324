import Foundation
import RainData
import RainEvaluation
import RainModel
import RainSupport
import XCTest

/// Scores against hand-computed values: pooled RMSE, the transform back to physical units, and the
/// baselines on a dataset whose answers are known exactly (TinyDataset: rain = 0.5(y+1) + hours/100).
final class EvaluationTests: XCTestCase {
    func testPooledRMSEWeightsLatitudesAndPoolsBeforeTheRoot() {
        let lat: [Float] = [0.5, 1.5], truth: [Float] = [0, 0, 0, 0]  // H = W = 2
        var r = PooledRMSE()
        truth.withUnsafeBufferPointer { t in
            // Σw d² = 0.5·2 + 1.5·8 = 13
            r.add(forecast: { [1, 1, 2, 2][$0] }, truth: t.baseAddress!, latWeights: lat, width: 2)
            r.add(forecast: { _ in 0 }, truth: t.baseAddress!, latWeights: lat, width: 2)  // adds weight only
        }
        XCTAssertEqual(r.samples, 2)
        XCTAssertEqual(r.value!, (13.0 / 8.0).squareRoot(), accuracy: 1e-12, "pooled: sqrt(13 / (2 · 4))")
        XCTAssertNil(PooledRMSE().value)
    }

    func testBaselinesAndModelOnAKnownDataset() throws {
        let tiny = try TinyDataset(root: temporaryDirectory(self))
        var c = tiny.config()
        c.normalisation = tiny.root.appendingPathComponent("norm.json").path
        c.noRelu = true
        c.hidden1 = 4
        c.hidden2 = 2
        try tiny.normalisation.write(path: c.normalisation)
        let runner = try ModelRunner(config: c)
        // A model whose every weight is 0 but head2's bias b = ln 3 forecasts ŷ′ = ln 3,
        // i.e. std·(e^b − 1) = 1 mm/h.
        let b = runner.layout.entries.first { $0.name == "head2.bias" }!
        runner.params.pointer[b.offset] = log(3)
        let ev = try Evaluator(runner: runner, config: c)
        let report = try ev.run(partition: .test, skill: SkillSettings(thresholds: [1.2], fssScales: [1]))
        XCTAssertEqual(report.unit, "mm/h")
        XCTAssertEqual(report.skipped, 0)

        let lat = ConvLSTMForecaster.latitudeWeights(tiny.height).map(Double.init)
        let part = ev.compute.index.samples(.test)
        for (l, row) in report.leads.enumerated() {
            let lead = Double(row.hours)
            XCTAssertEqual(
                row.persistence!, lead / 100, accuracy: 2e-5, "persistence misses by exactly lead/100 everywhere")
            var se = 0.0, ws = 0.0, n = 0, truthSum = 0.0
            // Persistence's contingency table at 1.2 mm/h: hits, false alarms, misses (area-weighted).
            var (a, b, c) = (0.0, 0.0, 0.0)
            for i in 0..<part.count where part.sample(i).lead == EpochSeconds(row.hours) * 3600 {
                let t0 = part.sample(i).t0, t = t0 + part.sample(i).lead
                for y in 0..<tiny.height {
                    for x in 0..<tiny.width {
                        let truth = Double(tiny.rain(t, y, x))
                        se += lat[y] * (1 - truth) * (1 - truth)
                        ws += lat[y]
                        truthSum += lat[y] * truth
                        let forecast = tiny.rain(t0, y, x) >= 1.2, observed = truth >= 1.2
                        if forecast && observed {
                            a += lat[y]
                        } else if forecast {
                            b += lat[y]
                        } else if observed {
                            c += lat[y]
                        }
                    }
                }
                n += 1
            }
            let skill = try XCTUnwrap(row.skill)
            let persistence = try XCTUnwrap(skill["persistence"]), model = try XCTUnwrap(skill["model"])
            XCTAssertEqual(persistence.meanBias!, -lead / 100, accuracy: 2e-5, "persistence is lead/100 too low")
            XCTAssertEqual(model.meanBias!, 1 - truthSum / ws, accuracy: 1e-5, "the model forecasts 1 mm/h")
            XCTAssertEqual(persistence.categorical[0].pod!, a / (a + c), accuracy: 1e-9)
            XCTAssertEqual(persistence.categorical[0].far ?? 0, a + b > 0 ? b / (a + b) : 0, accuracy: 1e-9)
            XCTAssertEqual(persistence.categorical[0].csi!, a / (a + b + c), accuracy: 1e-9)
            XCTAssertEqual(model.categorical[0].pod, 0, "1 mm/h is never an event at 1.2 mm/h")
            XCTAssertNil(model.categorical[0].far, "nothing forecast: no false alarm ratio")
            XCTAssertNil(skill["weekly_climatology"]?.acc, "the climatology has no anomaly of its own")
            XCTAssertEqual(row.samples, n, "lead \(l)")
            XCTAssertEqual(
                row.climatology!, (se / ws).squareRoot(), accuracy: 1e-5,
                "scalar climatology = the normalisation mean, 1 mm/h")
            XCTAssertEqual(
                row.model!, (se / ws).squareRoot(), accuracy: 1e-5,
                "the model forecasts 1 mm/h after the inverse transform")
        }
        // Loss: mean over samples of the latitude-weighted MSE in transformed space.
        var total = 0.0
        for i in 0..<part.count {
            let t = part.sample(i).t0 + part.sample(i).lead
            var s = 0.0
            for y in 0..<tiny.height {
                for x in 0..<tiny.width {
                    let d = log(3) - log(1 + Double(tiny.rain(t, y, x)) / 0.5)
                    s += lat[y] * d * d
                }
            }
            total += s / Double(tiny.height * tiny.width)
        }
        XCTAssertEqual(report.loss!, total / Double(part.count), accuracy: 1e-5)
        XCTAssertTrue(
            report.markdown(title: "t").contains("| persistence | 0.240 | 0.720 | 1.200 |"), report.markdown(title: "t")
        )
    }

    func testWeeklyClimatologyIsThePerPixelMeanOfEachWeek() throws {
        let tiny = try TinyDataset(root: temporaryDirectory(self))
        let catalog = try DataCatalog(paths: tiny.paths)
        let source = try catalog.channels(of: "imerg5625/precipitationcal")[0]
        let start = TinyDataset.start, end = start + 20 * UTCTime.day - 3600
        let clim = try WeeklyClimatology(source: source, span: TimeSpan(first: start, last: end), fallback: -1)
        // 2016-04-01 is day 92 of the leap year: week 13 holds days 92–98, i.e. hours 0 … 167 of the data.
        XCTAssertEqual(WeeklyClimatology.week(of: start), 13)
        XCTAssertEqual(clim.counts[13], 168)
        XCTAssertEqual(clim.counts[14], 168)
        XCTAssertEqual(clim.counts[15], 6 * 24)
        for y in 0..<tiny.height {
            for x in 0..<tiny.width {
                let q = y * tiny.width + x
                // mean hour 83.5
                XCTAssertEqual(Double(clim.means[13][q]), 0.5 * Double(y + 1) + 83.5 / 100, accuracy: 1e-5)
                // hours 336 … 479
                XCTAssertEqual(Double(clim.means[15][q]), 0.5 * Double(y + 1) + (336 + 71.5) / 100, accuracy: 1e-5)
            }
        }
        XCTAssertEqual(
            clim.means[20], [Float](repeating: -1, count: tiny.height * tiny.width),
            "weeks without data fall back to the scalar mean")
    }
}
