#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// A read-only memory map of a whole raw float32 file. Owns the descriptor and the mapping.
///
/// Mapping is lazy: only the pages a sample touches are read, so memory use does not depend on the
/// file size (a 49 GiB ERA5 file maps in microseconds).
public final class MappedFile {
    public let path: String
    public let byteCount: Int
    private let fd: Int32
    private let base: UnsafeMutableRawPointer?

    /// Opens and maps `path`, which must be exactly `expectedBytes` long.
    public init(path: String, expectedBytes: Int, shape: [Int]) throws {
        self.path = path
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else {
            throw SwiftRainError(path, "data file missing or unreadable (\(String(cString: strerror(errno))))",
                                 expected: "raw float32 file of shape \(shape) (\(expectedBytes) bytes)",
                                 hint: "copy the file next to its _info.json, or fix mmap_name in the metadata")
        }
        var st = stat()
        fstat(fd, &st)
        let size = Int(st.st_size)
        guard size == expectedBytes else {
            close(fd)
            let why = size < expectedBytes ? "truncated" : "longer than its metadata says"
            throw SwiftRainError(path, "broken data file: \(why)",
                                 expected: "\(expectedBytes) bytes = 4 · ∏\(shape)",
                                 found: "\(size) bytes" + (size % 4 == 0 && size < expectedBytes
                                     ? " (\(size / max(1, 4 * shape.dropFirst().reduce(1, *))) complete rows)" : ""),
                                 hint: "re-download or re-convert the file; a partial copy is the usual cause")
        }
        self.fd = fd
        self.byteCount = size
        if size > 0 {
            let p = mmap(nil, size, PROT_READ, MAP_SHARED, fd, 0)
            guard let p, p != MAP_FAILED else {
                close(fd)
                throw SwiftRainError(path, "mmap failed: \(String(cString: strerror(errno)))",
                                     hint: "check the file system supports mmap and the address space limit (ulimit -v)")
            }
            // Samples read scattered rows: readahead of neighbouring pages would be wasted I/O.
            madvise(p, size, MADV_RANDOM)
            base = p
        } else {
            base = nil
        }
    }

    deinit {
        if let base { munmap(base, byteCount) }
        close(fd)
    }

    /// Pointer to the float at element index `index`.
    @inline(__always)
    public func floats(at index: Int) -> UnsafePointer<Float> {
        UnsafePointer(base!.assumingMemoryBound(to: Float.self) + index)
    }

    /// Drops this process's mapped pages (they stay in the page cache), so the resident set stays
    /// bounded however much of the file a long run touches.
    public func releaseResidentPages() {
        if let base { madvise(base, byteCount, MADV_DONTNEED) }
    }

    /// Copies `count` floats from element `index` with pread (bypasses the mapping, so streaming
    /// scans do not grow the resident set).
    public func read(into buffer: UnsafeMutablePointer<Float>, at index: Int, count: Int) throws {
        var done = 0
        let total = count * 4
        while done < total {
            let n = pread(fd, UnsafeMutableRawPointer(buffer) + done, total - done, off_t(index * 4 + done))
            if n <= 0 {
                throw SwiftRainError(path, "read failed at byte \(index * 4 + done): \(n < 0 ? String(cString: strerror(errno)) : "end of file")",
                                     hint: "check the disk and the file")
            }
            done += n
        }
    }
}
