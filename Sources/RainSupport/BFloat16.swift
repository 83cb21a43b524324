/// bfloat16 as 16-bit patterns, in Swift for the layers that have no C kernels (the ring's wire): the
/// same rounding as the model's kernels (nearest even; fp32 subnormals to signed zero; NaN stays NaN).
public enum BFloat16 {
    @inline(__always)
    public static func round(_ x: Float) -> UInt16 {
        let u = x.bitPattern
        if u & 0x7F80_0000 == 0 { return UInt16(truncatingIfNeeded: (u >> 16) & 0x8000) }
        if u & 0x7FFF_FFFF > 0x7F80_0000 { return UInt16(truncatingIfNeeded: (u >> 16) | 0x40) }
        return UInt16(truncatingIfNeeded: (u &+ 0x7FFF &+ ((u >> 16) & 1)) >> 16)
    }

    @inline(__always)
    public static func float(_ h: UInt16) -> Float { Float(bitPattern: UInt32(h) << 16) }
}

/// How gradient pieces travel between workers: fp32, or bf16 (halving the bytes; every hop still adds in
/// fp32, as DDP's bf16_compress_hook does).
public enum GradientWire: String, CaseIterable, Codable, Sendable {
    case fp32, bf16

    /// Bytes per value on the wire.
    public var bytes: Int { self == .fp32 ? 4 : 2 }
}
