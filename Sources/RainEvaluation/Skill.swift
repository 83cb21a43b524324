import Foundation
import RainSupport

/// What precipitation forecasters report besides RMSE, for one method at one lead time. Every sum is
/// area-weighted (w(lat) = cos lat, mean 1, as the RMSE's), so a polar cell counts for its area; a
/// score whose denominator is zero (no events observed, none forecast, …) is nil (JSON null).
public struct SkillSettings: Codable, Equatable {
    /// Event thresholds of the categorical scores (physical units; IMERG: mm/h): event = value ≥ t.
    public var thresholds: [Double]
    /// Neighbourhood sizes of the Fractions Skill Score, in grid cells (odd: n × n windows).
    public var fssScales: [Int]
    /// The event threshold of the Fractions Skill Score.
    public var fssThreshold: Double

    public init(thresholds: [Double] = [0.1, 1, 2, 5, 10], fssScales: [Int] = [1, 3, 5, 9], fssThreshold: Double = 1) {
        self.thresholds = thresholds
        self.fssScales = fssScales
        self.fssThreshold = fssThreshold
    }
}

extension SkillSettings {
    /// Thresholds finite; neighbourhoods odd, from 1 to the grid's width (wider windows would wrap onto
    /// themselves).
    public func check(width: Int) throws {
        if let t = thresholds.first(where: { !$0.isFinite }) ?? (fssThreshold.isFinite ? nil : fssThreshold) {
            throw SwiftRainError(
                "--thresholds", "not a number", found: "\(t)", hint: "give thresholds in the target's units")
        }
        if let n = fssScales.first(where: { $0 < 1 || $0 % 2 == 0 || $0 > width }) {
            throw SwiftRainError(
                "--fss-scales", "not a neighbourhood size", expected: "odd sizes from 1 to \(width) grid cells",
                found: "\(n)", hint: "e.g. --fss-scales 1,3,5,9")
        }
    }
}

/// Scores from one contingency table (a hits, b false alarms, c misses, d correct negatives; n = a+b+c+d).
public struct CategoricalScores: Codable, Equatable {
    public var threshold: Double
    /// (a + b) / (a + c): forecast events over observed events.
    public var frequencyBias: Double?
    /// a / (a + c), probability of detection.
    public var pod: Double?
    /// b / (a + b), false alarm ratio.
    public var far: Double?
    /// a / (a + b + c), critical success index.
    public var csi: Double?
    /// (a − r) / (a + b + c − r) with r = (a + b)(a + c) / n, equitable threat score.
    public var ets: Double?
}

/// The Fractions Skill Score at one neighbourhood size (Roberts & Lean 2008).
public struct FractionsSkill: Codable, Equatable {
    public var scale: Int
    public var threshold: Double
    /// 1 − Σ w (P_f − P_o)² / (Σ w P_f² + Σ w P_o²), summed over every sample and cell.
    public var fss: Double?
}

/// All skill scores of one method at one lead time.
public struct SkillScores: Codable, Equatable {
    /// Σ w (f − o) / Σ w, in physical units.
    public var meanBias: Double?
    /// The anomaly correlation against the training climatology c (per pixel, week of year):
    /// per sample Σ w f′o′ / √(Σ w f′² Σ w o′²), f′ = f − c, o′ = o − c, averaged over the
    /// samples where it is defined (WeatherBench's ACC); nil for a forecast that is the climatology.
    public var acc: Double?
    public var categorical: [CategoricalScores]
    public var fss: [FractionsSkill]
}

/// Accumulates the sums behind `SkillScores` over the samples of one method and lead time.
public struct SkillAccumulator {
    public let settings: SkillSettings
    let height: Int, width: Int, weights: [Double]
    /// Per threshold: weighted a, b, c, d.
    var tables: [[Double]]
    /// Per FSS scale: Σ w (P_f − P_o)², Σ w P_f², Σ w P_o².
    var fractions: [[Double]]
    var biasSum = 0.0, weightSum = 0.0
    var accSum = 0.0, accCount = 0

    public init(settings: SkillSettings, latWeights: [Float], width: Int) {
        self.settings = settings
        height = latWeights.count
        self.width = width
        weights = latWeights.map(Double.init)
        tables = settings.thresholds.map { _ in [0, 0, 0, 0] }
        fractions = settings.fssScales.map { _ in [0, 0, 0] }
    }

    /// Adds one sample: forecast, observation and climatology planes (H × W, physical units).
    public mutating func add(forecast f: [Float], truth o: [Float], climatology c: [Float]) {
        let plane = height * width
        var fa = 0.0, oa = 0.0, fo = 0.0
        for q in 0..<plane {
            let w = weights[q / width], fq = Double(f[q]), oq = Double(o[q]), cq = Double(c[q])
            biasSum += w * (fq - oq)
            weightSum += w
            fa += w * (fq - cq) * (fq - cq)
            oa += w * (oq - cq) * (oq - cq)
            fo += w * (fq - cq) * (oq - cq)
        }
        if fa > 0, oa > 0 {
            accSum += fo / (fa * oa).squareRoot()
            accCount += 1
        }
        for (k, t) in settings.thresholds.enumerated() {
            for q in 0..<plane {
                let forecast = Double(f[q]) >= t, observed = Double(o[q]) >= t
                let cell = forecast ? (observed ? 0 : 1) : (observed ? 2 : 3)  // a, b, c, d
                tables[k][cell] += weights[q / width]
            }
        }
        let fe = f.map { Double($0) >= settings.fssThreshold ? 1.0 : 0 }
        let oe = o.map { Double($0) >= settings.fssThreshold ? 1.0 : 0 }
        for (k, n) in settings.fssScales.enumerated() {
            let pf = neighbourhoodFractions(fe, size: n), po = neighbourhoodFractions(oe, size: n)
            for q in 0..<plane {
                let w = weights[q / width]
                fractions[k][0] += w * (pf[q] - po[q]) * (pf[q] - po[q])
                fractions[k][1] += w * pf[q] * pf[q]
                fractions[k][2] += w * po[q] * po[q]
            }
        }
    }

    /// The mean of `events` over the size × size window around each cell: longitude wraps around the
    /// globe; rows past a pole are not there, so windows near the poles average the cells they have.
    func neighbourhoodFractions(_ events: [Double], size: Int) -> [Double] {
        let r = size / 2
        // Separable: sums along each row (wrapping), then of those sums down each column (clamped).
        var across = [Double](repeating: 0, count: events.count)
        for y in 0..<height {
            for x in 0..<width {
                var s = 0.0
                for dx in -r...r { s += events[y * width + ((x + dx) % width + width) % width] }
                across[y * width + x] = s
            }
        }
        var out = [Double](repeating: 0, count: events.count)
        for y in 0..<height {
            let rows = max(0, y - r)...min(height - 1, y + r)
            for x in 0..<width {
                var s = 0.0
                for yy in rows { s += across[yy * width + x] }
                out[y * width + x] = s / Double(rows.count * size)
            }
        }
        return out
    }

    public var scores: SkillScores {
        func ratio(_ num: Double, _ den: Double, zero: Double = 0) -> Double? { den > zero ? num / den : nil }
        let categorical = zip(settings.thresholds, tables).map { t, abcd -> CategoricalScores in
            let (a, b, c, d) = (abcd[0], abcd[1], abcd[2], abcd[3])
            let random = a + b + c + d > 0 ? (a + b) * (a + c) / (a + b + c + d) : 0
            return CategoricalScores(
                threshold: t, frequencyBias: ratio(a + b, a + c), pod: ratio(a, a + c), far: ratio(b, a + b),
                csi: ratio(a, a + b + c),
                // a + b + c − r is zero but for rounding when every cell is an event: below 1e-12 n is zero.
                ets: ratio(a - random, a + b + c - random, zero: 1e-12 * (a + b + c + d)))
        }
        let fss = zip(settings.fssScales, fractions).map { n, s in
            FractionsSkill(scale: n, threshold: settings.fssThreshold, fss: ratio(s[0], s[1] + s[2]).map { 1 - $0 })
        }
        return SkillScores(
            meanBias: ratio(biasSum, weightSum), acc: accCount > 0 ? accSum / Double(accCount) : nil,
            categorical: categorical, fss: fss)
    }
}
