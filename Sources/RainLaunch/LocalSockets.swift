import Foundation
import RainSupport

/// Where a local run's sockets live: `ipc://` files in a directory only this user can enter (mode
/// 0700), so another user on the machine cannot even connect, let alone join. A local run has no
/// TCP listener at all.
public enum LocalSockets {
    /// Unix socket paths are limited to 107 bytes; beyond that the sockets go to a fresh /tmp directory.
    static let maxPath = 100

    /// The directory for `run`'s sockets (created or tightened to 0700), and whether it is a temporary
    /// one to remove when the run ends.
    public static func directory(for run: URL) throws -> (path: String, temporary: Bool) {
        var dir = run.appendingPathComponent("sockets").path
        var temporary = false
        if dir.utf8.count + "/ring-4294967295".utf8.count > maxPath {
            var template = Array("/tmp/swiftrain-XXXXXX".utf8CString)
            guard let made = mkdtemp(&template) else {
                throw SwiftRainError(
                    "/tmp", "cannot make a directory for the run's sockets: \(String(cString: strerror(errno)))",
                    hint: "check /tmp is writable, or use a shorter --run path")
            }
            dir = String(cString: made)
            temporary = true
        } else {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        }
        guard chmod(dir, 0o700) == 0 else {
            throw SwiftRainError(
                dir, "cannot restrict the sockets directory to this user: \(String(cString: strerror(errno)))",
                hint: "use a --run directory on a filesystem with Unix permissions")
        }
        return (dir, temporary)
    }

    /// The directory of an `ipc://` endpoint (where a worker puts its ring inbox), or nil.
    public static func directory(of endpoint: String) -> String? {
        guard endpoint.hasPrefix("ipc://") else { return nil }
        return (String(endpoint.dropFirst("ipc://".count)) as NSString).deletingLastPathComponent
    }
}
