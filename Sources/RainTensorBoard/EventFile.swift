import Foundation
import RainSupport

#if canImport(Glibc)
import Glibc
#endif

/// One TensorBoard event file, `events.out.tfevents.<10-digit seconds>.<host>.<pid>.<n>` in `directory`,
/// as TensorFlow's and PyTorch's writers name them; TensorBoard merges every file of a directory, so a
/// resumed run opens a new one and its steps continue from the checkpoint's.
///
/// Each event is framed (TFRecord) and written with one `write(2)`, so a process killed mid-run leaves whole
/// records and at most one torn last record, which TensorBoard's reader stops before.
public final class EventFile {
    public let path: String
    private var fd: Int32
    private nonisolated(unsafe) static var opened = 0

    /// Creates the file and writes its first record, `file_version: "brain.Event:2"`.
    public init(directory: String, now: Double = Date().timeIntervalSince1970) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var host = [CChar](repeating: 0, count: 256)
        gethostname(&host, host.count - 1)
        let seconds = String(format: "%010d", Int(now))
        Self.opened += 1
        path =
            URL(fileURLWithPath: directory).appendingPathComponent(
                "events.out.tfevents.\(seconds).\(String(cString: host)).\(getpid()).\(Self.opened)"
            ).path
        fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw SwiftRainError(
                path, "cannot create the TensorBoard event file", found: String(cString: strerror(errno)),
                hint: "check the run directory's permissions and free space")
        }
        var e = ProtoWriter()
        e.double(1, now)  // Event.wall_time
        e.string(3, "brain.Event:2")  // Event.file_version
        try write(e.bytes)
    }

    deinit { close(fd) }

    /// Writes one serialized `Event` as a record.
    func write(_ event: [UInt8]) throws {
        let record = TFRecord.frame(event)
        let n = record.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        guard n == record.count else {
            throw SwiftRainError(
                path, "a TensorBoard event was not written",
                found: n < 0 ? String(cString: strerror(errno)) : "\(n) bytes",
                hint: "check the run directory's free space")
        }
    }

    /// An event holding one `Summary` of `values` (each built by the body) at `step`.
    func summary(step: Int, wallTime: Double, _ values: [(inout ProtoWriter) -> Void]) throws {
        var e = ProtoWriter()
        e.double(1, wallTime)  // Event.wall_time
        e.int(2, Int64(step))  // Event.step
        e.message(5) { s in  // Event.summary
            for v in values { s.message(1, v) }  // Summary.value
        }
        try write(e.bytes)
    }

    /// Scalars at `step` (`Summary.Value.simple_value`, what `add_scalar` writes), in one event.
    public func scalars(_ values: [(tag: String, value: Double)], step: Int, wallTime: Double) throws {
        try summary(
            step: step, wallTime: wallTime,
            values.map { tag, value in
                { v in
                    v.string(1, tag)  // Value.tag
                    v.float(2, Float(value))  // Value.simple_value
                }
            })
    }

    /// A PNG image at `step` (`Summary.Value.image`, what `add_image` writes).
    public func image(tag: String, png: [UInt8], width: Int, height: Int, step: Int, wallTime: Double) throws {
        try summary(
            step: step, wallTime: wallTime,
            [
                { v in
                    v.string(1, tag)
                    v.message(4) { i in  // Value.image
                        i.int(1, Int64(height))
                        i.int(2, Int64(width))
                        i.int(3, 4)  // colorspace: RGBA
                        i.bytes(4, png)  // encoded_image_string
                    }
                }
            ])
    }
}
