import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A byte count for people: "512 B", "1.50 MiB".
public func bytesText(_ b: Int) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"]
    var v = Double(b), i = 0
    while v >= 1024 && i < units.count - 1 {
        v /= 1024
        i += 1
    }
    return i == 0 ? "\(b) B" : String(format: "%.2f %@", v, units[i])
}

extension String {
    public func leftPad(_ n: Int) -> String { count >= n ? self : String(repeating: " ", count: n - count) + self }
}

/// The running process: its peak resident set and its executable (benchmarks and `train` re-run
/// binaries from the same build).
public enum ThisProcess {
    /// Peak resident set, bytes.
    public static func peakRSS() -> Int {
        var u = rusage()
        getrusage(RUSAGE_SELF.rawValue, &u)
        return u.ru_maxrss * 1024
    }

    /// The running executable's path.
    public static var executable: String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }

    /// `name` in the running executable's directory (e.g. `swiftrain-worker` next to `swiftrain`).
    public static func sibling(_ name: String) -> String {
        URL(fileURLWithPath: executable).deletingLastPathComponent().appendingPathComponent(name).path
    }
}
