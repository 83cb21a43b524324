import Foundation

/// SplitMix64: the seeded generator behind every random choice in SwiftRain (initial weights, sample
/// order, synthetic weather), so a seed repeats a run exactly; used both as a stream and as a hash.
public struct SplitMix: RandomNumberGenerator {
    public var state: UInt64
    public init(_ seed: UInt64) { state = seed }
    @inline(__always) public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        return SplitMix.mix(state)
    }
    @inline(__always) public static func mix(_ x: UInt64) -> UInt64 {
        var z = x
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// Uniform in [0, 1) with 53 random bits.
    public mutating func uniform() -> Double { Double(next() >> 11) / Double(1 << 53) }
    /// Standard normal (Box–Muller).
    public mutating func normal() -> Double {
        let u1 = max(uniform(), 1e-12), u2 = uniform()
        return (-2 * log(u1)).squareRoot() * cos(2 * .pi * u2)
    }
    /// Approximately standard-normal noise for a (key, index) pair: Irwin–Hall sum of four uniforms.
    @inline(__always) public static func noise(_ key: UInt64, _ i: Int) -> Float {
        let z = mix(key ^ (UInt64(i) &* 0xD6E8_FEB8_6659_FD93))
        let a = Float(z & 0xFFFF), b = Float((z >> 16) & 0xFFFF), c = Float((z >> 32) & 0xFFFF), d = Float(z >> 48)
        return ((a + b + c + d) / 65536 - 2) * 1.7320508
    }
}
