import Foundation
import RainConfig
import RainSupport

#if canImport(Glibc)
import Glibc
#endif

/// A read-only memory map of a raw float32 file, in windows of whole rows mapped on first use (mmap
/// with an offset): a process maps only the byte ranges its samples need, so a worker whose shards
/// cover one block of time needs only that slice of the file to be present (e.g. a sparse copy on a
/// node's local disk). Owns the descriptor and the mappings.
///
/// Mapping is lazy in two ways: windows are mapped when a plane in them is first asked for, and only
/// the pages read are faulted in, so memory use does not depend on the file size.
public final class MappedFile {
    public let path: String
    public let byteCount: Int
    private let fd: Int32
    /// Bytes per row (time step); a constant file is one row.
    public let rowBytes: Int
    /// Rows per mapped window.
    public let windowRows: Int
    /// Window index → (mapping base, mapped length, pointer to the window's first row).
    private var windows: [Int: (base: UnsafeMutableRawPointer, length: Int, first: UnsafeMutableRawPointer)] = [:]
    private let lock = NSLock()

    /// Default window size: SWIFTRAIN_MAP_WINDOW_KIB, or 64 MiB (rounded to whole rows, at least one).
    public static let defaultWindowBytes: Int = {
        if let kib = ProcessInfo.processInfo.environment["SWIFTRAIN_MAP_WINDOW_KIB"].flatMap(Int.init), kib > 0 {
            return kib << 10
        }
        return 64 << 20
    }()

    /// Opens `path`, which must be exactly `expectedBytes` long (`shape` is (T, C, H, W) or (C, H, W)).
    public init(path: String, expectedBytes: Int, shape: [Int], windowBytes: Int = MappedFile.defaultWindowBytes) throws
    {
        self.path = path
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else {
            throw SwiftRainError(
                path, "data file missing or unreadable (\(String(cString: strerror(errno))))",
                expected: "raw float32 file of shape \(shape) (\(expectedBytes) bytes)",
                hint: "copy the file next to its _info.json, or fix mmap_name in the metadata")
        }
        var st = stat()
        fstat(fd, &st)
        let size = Int(st.st_size)
        guard size == expectedBytes else {
            close(fd)
            let why = size < expectedBytes ? "truncated" : "longer than its metadata says"
            throw SwiftRainError(
                path, "broken data file: \(why)",
                expected: "\(expectedBytes) bytes = 4 · ∏\(shape)",
                found: "\(size) bytes"
                    + (size % 4 == 0 && size < expectedBytes
                        ? " (\(size / max(1, 4 * shape.dropFirst().reduce(1, *))) complete rows)" : ""),
                hint: "re-download or re-convert the file; a partial copy is the usual cause")
        }
        self.fd = fd
        self.byteCount = size
        rowBytes = shape.count >= 4 ? max(1, 4 * shape.dropFirst().reduce(1, *)) : max(1, size)
        windowRows = max(1, windowBytes / rowBytes)
    }

    deinit {
        for w in windows.values { munmap(w.base, w.length) }
        close(fd)
    }

    /// Pointer to the float at element index `index`. Valid for the rest of its row (planes are read
    /// within one row), for as long as this object lives.
    @inline(__always)
    public func floats(at index: Int) throws -> UnsafePointer<Float> {
        let byte = index * 4
        let w = byte / rowBytes / windowRows
        let first = try window(w)
        return UnsafePointer((first + (byte - w * windowRows * rowBytes)).assumingMemoryBound(to: Float.self))
    }

    private func window(_ w: Int) throws -> UnsafeMutableRawPointer {
        lock.lock()
        defer { lock.unlock() }
        if let m = windows[w] { return m.first }
        let start = w * windowRows * rowBytes, end = min(byteCount, start + windowRows * rowBytes)
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let offset = start / page * page
        let p = mmap(nil, end - offset, PROT_READ, MAP_SHARED, fd, off_t(offset))
        guard let p, p != MAP_FAILED else {
            // The file was opened and sized, so this is address space (ulimit -v) or a vanished file.
            throw SwiftRainError(
                path, "mmap of bytes \(offset)..<\(end) failed: \(String(cString: strerror(errno)))",
                hint:
                    """
                    raise the address-space limit (ulimit -v) or lower SWIFTRAIN_MAP_WINDOW_KIB; check the file \
                    is still there
                    """
            )
        }
        // Samples read scattered rows: readahead of neighbouring pages would be wasted I/O.
        madvise(p, end - offset, MADV_RANDOM)
        windows[w] = (p, end - offset, p + (start - offset))
        return p + (start - offset)
    }

    /// The byte ranges mapped so far, sorted, adjacent windows merged (what this process needs of the file).
    public var mappedRanges: [Range<Int>] {
        lock.lock()
        defer { lock.unlock() }
        var out: [Range<Int>] = []
        for w in windows.keys.sorted() {
            let start = w * windowRows * rowBytes, end = min(byteCount, start + windowRows * rowBytes)
            if let last = out.last, last.upperBound == start {
                out[out.count - 1] = last.lowerBound..<end
            } else {
                out.append(start..<end)
            }
        }
        return out
    }

    /// Bytes of the file mapped so far.
    public var mappedBytes: Int { mappedRanges.reduce(0) { $0 + $1.count } }

    /// Drops this process's mapped pages (they stay in the page cache), so the resident set stays
    /// bounded however much of the file a long run touches.
    public func releaseResidentPages() {
        lock.lock()
        defer { lock.unlock() }
        for w in windows.values { madvise(w.base, w.length, MADV_DONTNEED) }
    }

    /// Copies `count` floats from element `index` with pread (bypasses the mapping, so streaming
    /// scans do not grow the resident set).
    public func read(into buffer: UnsafeMutablePointer<Float>, at index: Int, count: Int) throws {
        var done = 0
        let total = count * 4
        while done < total {
            let n = pread(fd, UnsafeMutableRawPointer(buffer) + done, total - done, off_t(index * 4 + done))
            if n <= 0 {
                throw SwiftRainError(
                    path,
                    """
                    read failed at byte \(index * 4 + done): \
                    \(n < 0 ? String(cString: strerror(errno)) : "end of file")
                    """,
                    hint: "check the disk and the file")
            }
            done += n
        }
    }
}
