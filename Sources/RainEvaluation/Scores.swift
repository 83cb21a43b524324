import Foundation
import RainData
import RainSupport

/// Latitude-weighted RMSE pooled over every sample and pixel before the square root (DATA-FORMAT §7):
///
///     RMSE = sqrt( Σ_samples Σ_pixels w(lat) (forecast − truth)² / Σ_samples Σ_pixels w(lat) )
///
/// w(lat) = cos(lat) normalised to mean 1 over the grid (the loss's weights).
public struct PooledRMSE: Codable, Equatable {
    public private(set) var squaredError = 0.0
    public private(set) var weight = 0.0
    public private(set) var samples = 0
    public init() {}

    /// Adds one forecast/truth plane pair (physical units); `latWeights` has one entry per row.
    public mutating func add(forecast: (Int) -> Float, truth: UnsafePointer<Float>, latWeights: [Float], width: Int) {
        for q in 0..<(latWeights.count * width) {
            let w = Double(latWeights[q / width]), d = Double(forecast(q)) - Double(truth[q])
            squaredError += w * d * d
            weight += w
        }
        samples += 1
    }

    /// nil before any sample.
    public var value: Double? { weight > 0 ? (squaredError / weight).squareRoot() : nil }
}

/// The per-pixel, week-of-year mean of the target over the training period (DATA-FORMAT §8): the
/// stronger climatology. Week w covers days 7w+1 … 7w+7 of the year; days 365–366 join week 51.
public struct WeeklyClimatology {
    public static let weeks = 52
    public let plane: Int
    /// [week][pixel] means in physical units; weeks without data hold the scalar training mean.
    public private(set) var means: [[Float]]
    public private(set) var counts: [Int]

    public static func week(of t: EpochSeconds) -> Int { min(weeks - 1, (UTCTime.fields(t).dayOfYear - 1) / 7) }

    /// Streams every row of `source` in `span` (pread, no mapping growth), averaging per week and pixel.
    public init(source: ChannelSource, span: TimeSpan, fallback: Float) throws {
        let f = source.file
        let plane = f.height * f.width
        self.plane = plane
        var sums = [[Double]](repeating: [Double](repeating: 0, count: plane), count: Self.weeks)
        var counts = [Int](repeating: 0, count: Self.weeks)
        var row = [Float](repeating: 0, count: plane)
        var t = f.firstTime + (max(0, span.first - f.firstTime) + f.step - 1) / f.step * f.step
        while t <= span.last {
            if let r = source.row(at: t) {
                try row.withUnsafeMutableBufferPointer { b in
                    try f.mapped.read(
                        into: b.baseAddress!, at: f.elementIndex(row: r, channel: source.channel), count: plane)
                }
                if !row.contains(where: { $0.isNaN }) {
                    let w = Self.week(of: t)
                    for q in 0..<plane { sums[w][q] += Double(row[q]) }
                    counts[w] += 1
                }
            }
            t += f.step
        }
        self.counts = counts
        means = (0..<Self.weeks).map { w in
            counts[w] > 0 ? sums[w].map { Float($0 / Double(counts[w])) } : [Float](repeating: fallback, count: plane)
        }
    }

    public func forecast(at t: EpochSeconds) -> [Float] { means[Self.week(of: t)] }
}
