import Foundation
import RainSupport
import RainZarr
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// Hostile metadata and chunk bytes: every case a SwiftRainError naming the array (and the chunk), never a
/// crash, and no allocation of what a hostile header claims.
extension ZarrReaderTests {
    /// A fresh copy of one fixture store to damage.
    private func copy(_ store: String) throws -> URL? {
        guard let (dir, _) = try Self.fixtures(self) else { return nil }
        let to = temporaryDirectory("zarr-hostile").appendingPathComponent("\(store).zarr")
        try FileManager.default.copyItem(at: dir.appendingPathComponent("\(store).zarr"), to: to)
        return to
    }

    /// Opens `array` in the store at `url` and reads it all, expecting an error that mentions every `words`.
    private func assertRefused(_ url: URL, _ array: String, _ words: [String], _ line: UInt = #line) {
        do {
            let store = try ZarrStore(path: url.path)
            _ = try store.require(array, for: "the test").readAll()
            XCTFail("read \(array) without an error", line: line)
        } catch let e as SwiftRainError {
            for w in words { XCTAssertTrue(e.description.contains(w), "'\(w)' not in: \(e.description)", line: line) }
        } catch {
            XCTFail("not a SwiftRainError: \(error)", line: line)
        }
    }

    private func edit(_ url: URL, _ file: String, _ change: (inout [String: Any]) -> Void) throws {
        let path = url.appendingPathComponent(file)
        var object = try JSONSerialization.jsonObject(with: Data(contentsOf: path)) as! [String: Any]
        change(&object)
        try JSONSerialization.data(withJSONObject: object).write(to: path)
    }

    func testHostileMetadataGetsAClearError() throws {
        guard let forder = try copy("forder") else { return }
        let rss0 = maxRSS()
        let cases: [(String, (inout [String: Any]) -> Void, [String])] = [
            ("huge shape", { $0["shape"] = [1 << 40, 1 << 40, 5] }, ["forder.zarr/f", "too large"]),
            ("huge chunk", { $0["chunks"] = [1 << 15, 1 << 15, 2] }, ["forder.zarr/f", "MiB"]),
            ("rank", { $0["chunks"] = [3, 4] }, ["chunks and shape differ"]),
            ("codec", { $0["compressor"] = ["id": "lzma"] }, ["compressor 'lzma'", "blosc, zstd"]),
            ("filter", { $0["filters"] = [["id": "delta", "dtype": "<f4"]] }, ["filters delta", "filters: null"]),
            ("dtype", { $0["dtype"] = "<m8[ns]" }, ["dtype '<m8[ns]'"]),  // timedelta64; datetime64 (<M8) is read
            ("order", { $0["order"] = "K" }, ["order 'K'"]),
            ("shape text", { $0["shape"] = "seven" }, ["'shape'", "whole numbers"]),
            // Metadata that says 8-byte elements where 4-byte ones are stored: the chunk's size disagrees.
            ("element size", { $0["dtype"] = "<f8" }, ["chunk 0/0/0", "bytes"]),
        ]
        for (what, change, words) in cases {
            let saved = try Data(contentsOf: forder.appendingPathComponent("f/.zarray"))
            try edit(forder, "f/.zarray", change)
            assertRefused(forder, "f", words)
            try saved.write(to: forder.appendingPathComponent("f/.zarray"))
            _ = what
        }
        guard let v3 = try copy("v3") else { return }
        try FileManager.default.removeItem(at: v3.appendingPathComponent("zarr.json"))  // no consolidated view
        try FileManager.default.copyItem(
            at: v3.appendingPathComponent("ints/zarr.json"), to: v3.appendingPathComponent("z"))
        try Data("{\"zarr_format\": 3, \"node_type\": \"group\"}".utf8).write(
            to: v3.appendingPathComponent("zarr.json"))
        try edit(v3, "ints/zarr.json") { $0["codecs"] = [["name": "bytes"], ["name": "lz4hc"]] }
        assertRefused(v3, "ints", ["v3.zarr/ints", "codec 'lz4hc'"])
        try edit(v3, "ints/zarr.json") { $0["codecs"] = [["name": "zstd"], ["name": "bytes"]] }
        assertRefused(v3, "ints", ["codec 'zstd'"])
        try edit(v3, "ints/zarr.json") { $0["data_type"] = "complex128" }
        assertRefused(v3, "ints", ["data_type 'complex128'"])
        XCTAssertLessThan(maxRSS() - rss0, 256 << 20, "hostile metadata made the reader allocate")
    }

    func testDamagedChunksGetAClearError() throws {
        guard let wb2 = try copy("wb2"), let v3 = try copy("v3"), let forder = try copy("forder") else { return }
        let rss0 = maxRSS()
        func damage(_ url: URL, _ change: (inout [UInt8]) -> Void) throws {
            var b = [UInt8](try Data(contentsOf: url))
            change(&b)
            try Data(b).write(to: url)
        }
        // Blosc: cut short; a header claiming 2 GiB; garbage.
        let chunk = wb2.appendingPathComponent("surface_pressure/1.0.0")
        let blosc = try Data(contentsOf: chunk)
        try damage(chunk) { $0.removeLast($0.count / 2) }
        assertRefused(wb2, "surface_pressure", ["wb2.zarr/surface_pressure", "chunk 1.0.0"])
        try blosc.write(to: chunk)
        try damage(chunk) { b in for k in 4..<8 { b[k] = k == 7 ? 0x7F : 0xFF } }
        assertRefused(wb2, "surface_pressure", ["chunk 1.0.0", "Blosc"])
        try damage(chunk) { b in for k in b.indices { b[k] = UInt8(truncatingIfNeeded: k &* 2_654_435_761 >> 7) } }
        assertRefused(wb2, "surface_pressure", ["chunk 1.0.0"])
        // zlib (v2, "/" keys) truncated.
        try damage(forder.appendingPathComponent("f/1/0/1")) { $0.removeLast(5) }
        assertRefused(forder, "f", ["forder.zarr/f", "chunk 1/0/1"])
        // gzip + CRC-32C: one bit flipped is caught by the checksum.
        try damage(v3.appendingPathComponent("transposed/c/1/1/1")) { $0[$0.count / 2] ^= 0x10 }
        assertRefused(v3, "transposed", ["v3.zarr/transposed", "chunk c/1/1/1", "CRC-32C"])
        // A shard whose index points past its end; then a shard cut short.
        let shard = v3.appendingPathComponent("sharded/c/0/0/0/0")
        let saved = try Data(contentsOf: shard)
        try damage(shard) { b in
            let at = b.count - 4 - 16 * 8  // the first entry of a 2×1×4×1 index, before its CRC
            for k in 0..<8 { b[at + k] = 0x40 }
            let crc = CRC32C.checksum(Array(b[(b.count - 4 - 128)..<(b.count - 4)]))
            for k in 0..<4 { b[b.count - 4 + k] = UInt8(truncatingIfNeeded: crc >> (8 * UInt32(k))) }
        }
        assertRefused(v3, "sharded", ["v3.zarr/sharded", "shard c/0/0/0/0"])
        try saved.write(to: shard)
        try damage(shard) { $0.removeFirst(7) }
        assertRefused(v3, "sharded", ["v3.zarr/sharded"])
        XCTAssertLessThan(maxRSS() - rss0, 256 << 20, "hostile chunks made the reader allocate")
    }

    /// Random damage to the metadata text: each store either reads or gives a SwiftRainError.
    func testMetadataFuzz() throws {
        guard let forder = try copy("forder") else { return }
        let path = forder.appendingPathComponent("f/.zarray")
        let original = [UInt8](try Data(contentsOf: path))
        var rng = SplitMix(31)
        var errors = 0
        for _ in 0..<300 {
            var b = original
            for _ in 0..<(1 + Int(rng.next() % 4)) {
                let i = Int(rng.next() % UInt64(b.count))
                b[i] = Array("0123456789[]{}\",:-e.xNa ".utf8)[Int(rng.next() % 24)]
            }
            try Data(b).write(to: path)
            do {
                _ = try ZarrStore(path: forder.path).array("f")?.readAll()
            } catch is SwiftRainError {
                errors += 1
            }
        }
        XCTAssertGreaterThan(errors, 100, "most random damage should be refused")
    }
}

/// The process's peak resident set, bytes.
func maxRSS() -> Int {
    var u = rusage()
    getrusage(RUSAGE_SELF.rawValue, &u)
    return u.ru_maxrss * 1024
}
