import Foundation
import RainSupport
import XCTest

@testable import RainTensorBoard

/// The pieces of TensorBoard's event files against published vectors: CRC-32C (RFC 3720 §B.4 and the
/// "123456789" check value), TensorFlow's CRC mask, TFRecord's layout, and protobuf's varints (the
/// encoding guide's 150 → 96 01). TensorBoard's own reader checks whole files (IntegrationTests).
final class EventFileTests: XCTestCase {
    func testCRC32CMatchesPublishedVectors() {
        XCTAssertEqual(CRC32C.checksum(Array("123456789".utf8)), 0xE306_9283)
        XCTAssertEqual(CRC32C.checksum([UInt8](repeating: 0, count: 32)), 0x8A91_36AA)
        XCTAssertEqual(CRC32C.checksum([UInt8](repeating: 0xFF, count: 32)), 0x62A8_AB43)
        XCTAssertEqual(CRC32C.checksum((0..<32).map { UInt8($0) }), 0x46DD_794E)
    }

    func testMaskIsTensorFlowsRotateAndAdd() {
        // Unmasking (subtract, rotate left by 15) gives the CRC back, for every bit position.
        for crc in [0, 1, 0xE306_9283, 0xFFFF_FFFF] + (0..<32).map({ UInt32(1) << $0 }) as [UInt32] {
            let r = TFRecord.masked(crc) &- 0xA282_EAD8
            XCTAssertEqual((r >> 17) | (r << 15), crc)
        }
        XCTAssertEqual(TFRecord.masked(0), 0xA282_EAD8)
    }

    func testRecordLayout() {
        let data: [UInt8] = Array("brain".utf8)
        let r = TFRecord.frame(data)
        XCTAssertEqual(r.count, 8 + 4 + data.count + 4)
        XCTAssertEqual(Array(r[0..<8]), [5, 0, 0, 0, 0, 0, 0, 0])
        let lengthCRC = TFRecord.masked(CRC32C.checksum(Array(r[0..<8])))
        XCTAssertEqual(Array(r[8..<12]), withUnsafeBytes(of: lengthCRC.littleEndian) { Array($0) })
        XCTAssertEqual(Array(r[12..<17]), data)
        let dataCRC = TFRecord.masked(CRC32C.checksum(data))
        XCTAssertEqual(Array(r[17...]), withUnsafeBytes(of: dataCRC.littleEndian) { Array($0) })
    }

    func testVarintsAndFieldKeys() {
        var w = ProtoWriter()
        w.int(1, 150)
        XCTAssertEqual(w.bytes, [0x08, 0x96, 0x01])
        w = ProtoWriter()
        w.int(2, -1)
        XCTAssertEqual(w.bytes, [0x10] + [UInt8](repeating: 0xFF, count: 9) + [0x01])
        w = ProtoWriter()
        w.string(2, "testing")
        XCTAssertEqual(w.bytes, [0x12, 0x07] + Array("testing".utf8))
        w = ProtoWriter()
        w.float(2, 1)
        XCTAssertEqual(w.bytes, [0x15, 0x00, 0x00, 0x80, 0x3F])
    }
}
