import RainSupport

/// TFRecord framing, the container of TensorBoard's event files: for each record a little-endian u64
/// length, the masked CRC-32C of those 8 bytes, the data, and the masked CRC-32C of the data.
public enum TFRecord {
    /// TensorFlow's CRC mask (`crc32c::Mask`): rotate right by 15, add 0xa282ead8.
    public static func masked(_ crc: UInt32) -> UInt32 { ((crc >> 15) | (crc << 17)) &+ 0xA282_EAD8 }

    /// One framed record.
    public static func frame(_ data: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(data.count + 16)
        let length = withUnsafeBytes(of: UInt64(data.count).littleEndian) { Array($0) }
        func put(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        out += length
        put(masked(CRC32C.checksum(length)))
        out += data
        put(masked(CRC32C.checksum(data)))
        return out
    }
}
