import Foundation

/// The checksum of every SwiftRain message and checkpoint: Fletcher-style sums over 64-bit words of a
/// body and a payload, with wrapping arithmetic (no modulo), so it runs near memory speed on 32 MB
/// gradients and still catches torn, truncated or altered data.
public enum Checksum {
    public static func of(_ body: [UInt8], _ payload: [UInt8]) -> UInt32 {
        body.withUnsafeBytes { b in payload.withUnsafeBytes { p in of(b, p) } }
    }

    /// The same checksum over raw memory (zero-copy ring chunks).
    public static func of(_ body: UnsafeRawBufferPointer, _ payload: UnsafeRawBufferPointer) -> UInt32 {
        of(parts: [body, payload])
    }

    /// The same sums over several pieces of memory in turn (a checkpoint slice: parameters, m, v).
    public static func of(parts: [UnsafeRawBufferPointer]) -> UInt32 {
        var a: UInt64 = 1, b: UInt64 = 0
        for raw in parts {
            // Eight lanes at once, giving the sequential sums exactly (wrapping arithmetic is exact mod 2^64):
            // after G groups of 8 words, b gains 8G·a + Σ_l (8·t_l − l·s_l), where s_l sums lane l's words and
            // t_l sums lane l's running sums; a gains Σ_l s_l.
            let groups = raw.count / 64
            var s = SIMD8<UInt64>(repeating: 0), t = SIMD8<UInt64>(repeating: 0)
            for g in 0..<groups {
                s &+= raw.loadUnaligned(fromByteOffset: 64 * g, as: SIMD8<UInt64>.self)
                t &+= s
            }
            let lane = SIMD8<UInt64>(0, 1, 2, 3, 4, 5, 6, 7)
            b &+= 8 &* UInt64(groups) &* a &+ ((8 &* t) &- (lane &* s)).wrappedSum()
            a &+= s.wrappedSum()
            sequentialSums(raw, fromWord: groups * 8, &a, &b)
        }
        return finish(a, b)
    }

    /// Adds words `fromWord…` of `raw` one at a time, then its trailing bytes and its length.
    private static func sequentialSums(
        _ raw: UnsafeRawBufferPointer, fromWord: Int, _ a: inout UInt64, _ b: inout UInt64
    ) {
        let words = raw.count / 8
        for i in fromWord..<words {
            a &+= raw.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self)
            b &+= a
        }
        for i in (words * 8)..<raw.count {
            a &+= UInt64(raw[i])
            b &+= a
        }
        a &+= UInt64(raw.count)
    }

    private static func finish(_ a: UInt64, _ b: UInt64) -> UInt32 {
        let x = a ^ (b &* 0x9E37_79B9_7F4A_7C15)
        return UInt32(truncatingIfNeeded: x ^ (x >> 32))
    }

    /// The definition, one word at a time (the test oracle for the eight-lane version).
    public static func sequential(_ body: UnsafeRawBufferPointer, _ payload: UnsafeRawBufferPointer) -> UInt32 {
        var a: UInt64 = 1, b: UInt64 = 0
        for raw in [body, payload] { sequentialSums(raw, fromWord: 0, &a, &b) }
        return finish(a, b)
    }

}
