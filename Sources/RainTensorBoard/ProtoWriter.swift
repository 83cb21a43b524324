/// The protocol-buffer wire format, as far as TensorBoard's `Event` needs it: varints (wire type 0),
/// 64-bit (1), length-delimited (2) and 32-bit (5) fields. Hand-written so that no protobuf library is
/// linked; field numbers are TensorFlow's (`event.proto`, `summary.proto`) and named where they are used.
struct ProtoWriter {
    private(set) var bytes: [UInt8] = []

    mutating func varint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            bytes.append(UInt8(v & 0x7F) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }

    private mutating func key(_ field: Int, _ wire: UInt64) { varint(UInt64(field) << 3 | wire) }

    private mutating func little<T: FixedWidthInteger>(_ v: T) {
        withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) }
    }

    /// `int64`/`int32` fields (negative values as ten-byte two's complement, as protobuf does).
    mutating func int(_ field: Int, _ v: Int64) {
        key(field, 0)
        varint(UInt64(bitPattern: v))
    }

    mutating func bool(_ field: Int, _ v: Bool) {
        key(field, 0)
        varint(v ? 1 : 0)
    }

    mutating func double(_ field: Int, _ v: Double) {
        key(field, 1)
        little(v.bitPattern)
    }

    mutating func float(_ field: Int, _ v: Float) {
        key(field, 5)
        little(v.bitPattern)
    }

    mutating func bytes(_ field: Int, _ b: [UInt8]) {
        key(field, 2)
        varint(UInt64(b.count))
        bytes.append(contentsOf: b)
    }

    mutating func string(_ field: Int, _ s: String) { bytes(field, Array(s.utf8)) }

    /// An embedded message, built by `body`.
    mutating func message(_ field: Int, _ body: (inout ProtoWriter) -> Void) {
        var inner = ProtoWriter()
        body(&inner)
        bytes(field, inner.bytes)
    }
}
