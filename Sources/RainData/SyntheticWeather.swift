import Foundation
import RainSupport

/// A deterministic toy atmosphere from which `swiftrain synth` derives every RainBench variable.
///
/// Precipitating systems are born at random (seeded per day, so any hour can be computed on its own
/// and the data do not depend on the range written), grow and decay over 1.5–6 days, and drift with a
/// latitude-dependent wind: easterlies in the tropics, westerlies in mid-latitudes. Over land, rain
/// follows a diurnal cycle peaking at 16:00 local solar time. Clouds are broader than the rain; cold
/// cloud tops, humidity and cloud water sit where the systems are. A forecaster that sees the last
/// 12 h can infer where a system is going and whether it grows, so it beats persistence (which does
/// not move the rain) and climatology (which does not know where the systems are) at 24 h.
public struct SyntheticWeather {
    public let seed: UInt64
    public let height: Int, width: Int
    public let lat: [Double], lon: [Double]
    /// Constants in PyRain's file order: lat2d, lon2d, lsm, orography, slt — each H×W.
    public let lat2d: [Float], lon2d: [Float], lsm: [Float], orography: [Float], slt: [Float]

    struct Storm {
        var born: Double, life: Double  // hours since epoch, hours
        var lat0: Double, lon0: Double, uDeg: Double, vDeg: Double
        var peak: Double, sigma: Double
    }
    private var cacheDay: Int64 = .min
    private var cache: [Storm] = []

    public init(seed: UInt64, grid: Double) {
        self.seed = seed
        height = Int((180 / grid).rounded())
        width = Int((360 / grid).rounded())
        lat = (0..<height).map { -90 + (Double($0) + 0.5) * grid }
        lon = (0..<width).map { Double($0) * grid }
        let h = height, w = width
        var la = [Float](), lo = [Float](), land = [Float](), oro = [Float](), soil = [Float]()
        // Continents: a few seeded low-frequency waves, thresholded to about 30 % land.
        var rng = SplitMix(seed ^ 0x5EED_1A4D)
        let waves = (0..<6).map { _ in
            (
                k: Double(1 + rng.next() % 3), l: Double(1 + rng.next() % 3),
                p: rng.uniform() * 2 * .pi, q: rng.uniform() * 2 * .pi, a: 0.5 + rng.uniform()
            )
        }
        for y in 0..<h {
            for x in 0..<w {
                let phi = lat[y] * .pi / 180, lam = lon[x] * .pi / 180
                var f = 0.0
                for wv in waves { f += wv.a * sin(wv.k * lam + wv.p) * cos(wv.l * phi + wv.q) }
                let isLand = f > 0.55 && abs(lat[y]) < 80 || lat[y] < -70
                la.append(Float(lat[y]))
                lo.append(Float(lon[x]))
                land.append(isLand ? 1 : 0)
                oro.append(isLand ? Float(max(0, (f - 0.55) * 1800 + 80)) : 0)
                soil.append(isLand ? Float(1 + abs(Int((f * 10).rounded(.down))) % 7) : 0)
            }
        }
        lat2d = la
        lon2d = lo
        lsm = land
        orography = oro
        slt = soil
    }

    /// Zonal wind (m/s) at a latitude: tropical easterlies, mid-latitude westerlies.
    static func zonalWind(_ lat: Double) -> Double {
        let a = abs(lat)
        return -6 * exp(-pow(a / 15, 2)) + 15 * exp(-pow((a - 45) / 14, 2))
    }

    /// Systems born on `day` (days since 1970), drawn from a generator keyed by (seed, day).
    func storms(bornOn day: Int64) -> [Storm] {
        var rng = SplitMix(seed &* 0x9E37_79B9_7F4A_7C15 ^ UInt64(bitPattern: day) &* 0xD1B5_4A32_D192_ED03)
        let doy = Double(UTCTime.fields(day * UTCTime.day).dayOfYear)
        let itcz = 8 * sin(2 * .pi * (doy - 80) / 365)
        return (0..<(8 + Int(rng.next() % 5))).map { _ in
            let tropical = rng.uniform() < 0.5
            var lat: Double
            if tropical {
                lat = itcz + 7 * rng.normal()
            } else {
                // The winter hemisphere has more mid-latitude systems.
                let northWinter = doy < 80 || doy > 265
                let north = rng.uniform() < (northWinter ? 0.65 : 0.35)
                lat = (north ? 1 : -1) * (45 + 8 * rng.normal())
            }
            lat = max(-78, min(78, lat))
            let cosLat = max(0.2, cos(lat * .pi / 180))
            let v = (tropical ? 0.5 : 1.5) * (lat >= 0 ? 1 : -1)  // poleward drift, m/s
            return Storm(
                born: Double(day * 24) + Double(rng.next() % 24), life: 36 + Double(rng.next() % 108),
                lat0: lat, lon0: rng.uniform() * 360,
                uDeg: Self.zonalWind(lat) * 3600 / (111_320 * cosLat), vDeg: v * 3600 / 110_540,
                peak: 1 + 9 * pow(rng.uniform(), 2), sigma: 5 + 5 * rng.uniform())
        }
    }

    /// Rain rate (mm/h, before observation noise) and cloud fraction [0, 1] at time `t`.
    public mutating func fields(at t: EpochSeconds, rain: inout [Float], cloud: inout [Float]) {
        let hours = Double(t) / 3600
        let day = floorDiv(t, UTCTime.day)
        if day != cacheDay {
            cacheDay = day
            cache = (day - 7...day).flatMap { storms(bornOn: $0) }  // life ≤ 144 h < 7 days
        }
        let h = height, w = width
        var rainSum = [Double](repeating: 0, count: h * w)
        var cloudSum = [Double](repeating: 0, count: h * w)
        for s in cache {
            let age = hours - s.born
            guard age >= 0, age <= s.life else { continue }
            // max(0, …): at age == life rounding can make the sine slightly negative, and pow(−ε, 1.5) is NaN.
            let env = pow(max(0, sin(.pi * age / s.life)), 1.5)
            let cLat = s.lat0 + s.vDeg * age
            let cLon = (s.lon0 + s.uDeg * age).truncatingRemainder(dividingBy: 360)
            let sc = s.sigma * 1.4  // clouds are broader than the rain
            for y in 0..<h where abs(lat[y] - cLat) < 3 * sc {
                let cosY = cos(lat[y] * .pi / 180)
                let dy2 = (lat[y] - cLat) * (lat[y] - cLat)
                for x in 0..<w {
                    var dx = lon[x] - cLon
                    dx -= 360 * (dx / 360).rounded()
                    dx *= cosY
                    let r2 = dx * dx + dy2
                    if r2 > 9 * sc * sc { continue }
                    rainSum[y * w + x] += s.peak * env * exp(-r2 / (2 * s.sigma * s.sigma))
                    cloudSum[y * w + x] += 1.5 * env * exp(-r2 / (2 * sc * sc))
                }
            }
        }
        for x in 0..<w {
            let local = Double(t) / 3600 + (lon[x] >= 180 ? lon[x] - 360 : lon[x]) / 15
            let diurnal = cos(2 * .pi * (local - 16) / 24)
            for y in 0..<h {
                let i = y * w + x
                rain[i] = Float(rainSum[i] * (1 + 0.8 * Double(lsm[i]) * diurnal))
                cloud[i] = Float(1 - exp(-cloudSum[i]))
            }
        }
    }

    /// Surface temperature (K) at `t`: latitude, season, land diurnal cycle, height, cloud shading.
    public func surfaceTemperature(at t: EpochSeconds, cloud: [Float], into out: inout [Float]) {
        let f = UTCTime.fields(t)
        let season = cos(2 * .pi * (Double(f.dayOfYear) - 15) / 365)  // +1 in mid-January
        for x in 0..<width {
            let local = Double(t) / 3600 + (lon[x] >= 180 ? lon[x] - 360 : lon[x]) / 15
            let diurnal = cos(2 * .pi * (local - 14) / 24)
            for y in 0..<height {
                let i = y * width + x
                let s = sin(lat[y] * .pi / 180)
                let base = 300 - 45 * s * s - 15 * s * season
                out[i] = Float(
                    base + Double(lsm[i]) * 6 * diurnal - 0.0065 * Double(orography[i]) - 3 * Double(cloud[i]))
            }
        }
    }
}
