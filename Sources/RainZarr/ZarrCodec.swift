import CZarrCodecs
import Foundation
import RainSupport

/// A bytes-to-bytes codec of a chunk: Zarr v2's `compressor` or one of Zarr v3's bytes codecs.
/// The one file that imports the C codecs (c-blosc 1, libzstd, zlib from Debian).
enum ZarrCompressor: Equatable {
    case blosc(cname: String, clevel: Int, shuffle: Int)
    case zstd(level: Int)
    /// zlib's stream format (v2 `zlib`) or gzip's (v2 and v3 `gzip`); inflate reads either.
    case zlib, gzip
    /// Four little-endian bytes of CRC-32C after the data (v3 `crc32c`).
    case crc32c

    /// Undoes the codec, refusing any output other than `expected` bytes (when known) or more than `limit`:
    /// hostile sizes cost at most what the metadata announced, never what a header claims.
    func decode(_ src: [UInt8], expected: Int?, limit: Int, subject: String) throws -> [UInt8] {
        func corrupt(_ why: String) -> SwiftRainError {
            SwiftRainError(
                subject, "the chunk does not decode: \(why)", expected: expected.map { "\($0) bytes after \(name)" },
                hint: "the store is damaged or was written with other metadata; re-download or rewrite this chunk")
        }
        switch self {
        case .crc32c:
            guard src.count >= 4 else { throw corrupt("shorter than its 4-byte CRC-32C") }
            let body = src.count - 4
            let stored = src[body..<src.count].reversed().reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
            let actual = src.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[0..<body])) }
            guard stored == actual else {
                throw corrupt(String(format: "CRC-32C 0x%08x, stored 0x%08x", actual, stored))
            }
            return Array(src[0..<body])
        case .blosc:
            var nbytes = 0
            guard src.withUnsafeBytes({ blosc_cbuffer_validate($0.baseAddress, src.count, &nbytes) }) == 0 else {
                throw corrupt("not a Blosc buffer (its header is invalid or longer than the chunk)")
            }
            let size = expected ?? nbytes
            guard nbytes == size, size <= limit else { throw corrupt("Blosc says \(nbytes) bytes") }
            var out = [UInt8](repeating: 0, count: size)
            let n = src.withUnsafeBytes { s in
                out.withUnsafeMutableBytes { blosc_decompress_ctx(s.baseAddress, $0.baseAddress, size, 1) }
            }
            guard n == size else { throw corrupt("Blosc failed (\(n))") }
            return out
        case .zstd:
            let frame = src.withUnsafeBytes { ZSTD_getFrameContentSize($0.baseAddress, src.count) }
            if frame == ZSTD_CONTENTSIZE_ERROR { throw corrupt("not a Zstandard frame") }
            var size = expected ?? limit
            if frame != ZSTD_CONTENTSIZE_UNKNOWN {
                guard frame <= UInt64(limit), expected == nil || frame == UInt64(size) else {
                    throw corrupt("Zstandard says \(frame) bytes")
                }
                size = Int(frame)
            }
            var out = [UInt8](repeating: 0, count: size)
            let n = src.withUnsafeBytes { s in
                out.withUnsafeMutableBytes { ZSTD_decompress($0.baseAddress, size, s.baseAddress, src.count) }
            }
            guard ZSTD_isError(n) == 0 else { throw corrupt(String(cString: ZSTD_getErrorName(n))) }
            guard expected == nil || n == size else { throw corrupt("Zstandard gave \(n) bytes") }
            return Array(out[0..<n])
        case .zlib, .gzip:
            return try Self.inflate(src, size: expected ?? limit, exact: expected != nil, corrupt: corrupt)
        }
    }

    var name: String {
        switch self {
        case .blosc(let c, _, _): "blosc (\(c))"
        case .zstd: "zstd"
        case .zlib: "zlib"
        case .gzip: "gzip"
        case .crc32c: "crc32c"
        }
    }

    private static func inflate(
        _ src: [UInt8], size: Int, exact: Bool, corrupt: (String) -> SwiftRainError
    ) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: size + 1)  // one spare byte tells "more than announced"
        var stream = z_stream()
        // 15 + 32: a zlib or a gzip header, detected.
        guard inflateInit2_(&stream, 15 + 32, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw corrupt("zlib could not start")
        }
        defer { inflateEnd(&stream) }
        var src = src
        let status = src.withUnsafeMutableBytes { s in
            out.withUnsafeMutableBytes { o -> Int32 in
                stream.next_in = s.baseAddress!.assumingMemoryBound(to: Bytef.self)
                stream.avail_in = uInt(s.count)
                stream.next_out = o.baseAddress!.assumingMemoryBound(to: Bytef.self)
                stream.avail_out = uInt(o.count)
                return zlib_inflate(&stream, Z_FINISH)
            }
        }
        let n = Int(stream.total_out)
        guard status == Z_STREAM_END else {
            throw corrupt(n > size ? "it inflates to more than \(size) bytes" : "inflate stopped (\(status))")
        }
        guard !exact || n == size else { throw corrupt("it inflates to \(n) bytes") }
        return Array(out[0..<n])
    }

    /// Blosc-compresses `src` of `typesize`-byte elements with byte shuffle (what `predict --format zarr` writes).
    static func bloscCompress(_ src: [UInt8], typesize: Int, cname: String = "lz4", clevel: Int32 = 5) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: src.count + Int(BLOSC_MAX_OVERHEAD))
        let n = src.withUnsafeBytes { s in
            out.withUnsafeMutableBytes { o in
                blosc_compress_ctx(
                    clevel, Int32(BLOSC_SHUFFLE), typesize, src.count, s.baseAddress, o.baseAddress, o.count, cname,
                    0, 1)
            }
        }
        precondition(n > 0, "blosc_compress_ctx cannot fail with a destination of size + overhead")
        return Array(out[0..<Int(n)])
    }
}

/// zlib's `inflate`, named apart from the Swift method above.
private func zlib_inflate(_ s: UnsafeMutablePointer<z_stream>, _ flush: Int32) -> Int32 { inflate(s, flush) }
