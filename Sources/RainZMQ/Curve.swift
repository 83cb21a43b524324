import Foundation
import RainProtocol
import RainSupport

#if canImport(Glibc)
import Glibc
#endif

/// What one worker holds (`keys/workers/wK/` of the run): the coordinator's public key and the
/// worker's own keypair. No secret of the coordinator's or of another worker's.
public struct CurveKeys {
    public var serverPublic: String
    public var workerPublic: String, workerSecret: String

    public init(serverPublic: String, workerPublic: String, workerSecret: String) {
        self.serverPublic = serverPublic
        self.workerPublic = workerPublic
        self.workerSecret = workerSecret
    }

    /// The files of a worker's key directory.
    static let files = ["server.pub", "worker.pub", "worker.key"]

    /// True when `dir` is one worker's key directory (rather than `keys/workers/`, which holds them all).
    public static func isWorkerDirectory(_ dir: String) -> Bool {
        FileManager.default.fileExists(atPath: dir + "/worker.pub")  // written last (`RunKeys.issue`)
    }

    /// The worker's own key directory: `dir` itself (`keys/workers/wK`), or on a shared filesystem
    /// `dir/w<rank>` of `keys/workers/`, where `rank` comes from SLURM's task or `--rank`; nil while neither
    /// exists (the coordinator writes them as it starts).
    public static func ownDirectory(_ dir: String, rank: Int?) -> String? {
        if isWorkerDirectory(dir) { return dir }
        return rank.map { dir + "/" + RunKeys.name($0) }.flatMap { isWorkerDirectory($0) ? $0 : nil }
    }

    /// A worker's keys, from its own directory (`ownDirectory`).
    public static func loadForWorker(dir: String, rank: Int?) throws -> CurveKeys {
        guard let own = ownDirectory(dir, rank: rank) else {
            throw SwiftRainError(
                dir, "not a worker's key directory", expected: "server.pub, worker.pub and worker.key",
                found: rank.map { "no \(RunKeys.name($0))/ for rank \($0) either" } ?? "no such files",
                hint:
                    """
                    pass this worker's own directory, --keys RUN/keys/workers/wK (one per worker; \
                    `swiftrain keys --run RUN --workers N` issues more)
                    """)
        }
        let k = try files.map { try RunKeys.read(own + "/" + $0) }
        return CurveKeys(serverPublic: k[0], workerPublic: k[1], workerSecret: k[2])
    }
}

/// The coordinator's CURVE keys (`keys/` of the run, mode 0700, files 0600): its own keypair, and one
/// keypair per worker under `keys/workers/wK/`, each directory all that worker K's host needs. The
/// coordinator's secret never leaves its host, so a worker host cannot pose as the coordinator, and
/// each worker's rank is bound to its own key, so one worker cannot pose as another.
/// A worker key is admitted while its directory exists: `issue` adds keys during a run (late
/// joiners), deleting a directory revokes its key for new connections.
public struct RunKeys {
    public let dir: URL
    public let serverPublic: String, serverSecret: String
    public var workersDir: URL { dir.appendingPathComponent("workers") }

    /// Worker K's key name (and directory under `keys/workers/`).
    public static func name(_ k: Int) -> String { "w\(k)" }

    /// The run's keys in `dir`, the coordinator's keypair created when `create` and none exists.
    public static func load(dir: String, create: Bool) throws -> RunKeys {
        let url = URL(fileURLWithPath: dir)
        let pub = url.appendingPathComponent("server.pub").path, sec = url.appendingPathComponent("server.key").path
        if create && !FileManager.default.fileExists(atPath: pub) {
            try makeDirectory(url)
            let s = try ZMQSocket.curveKeypair()
            try write(s.secretKey, to: sec)
            try write(s.publicKey, to: pub)
        }
        return RunKeys(dir: url, serverPublic: try read(pub), serverSecret: try read(sec))
    }

    /// Makes sure worker keys w0 … w(count−1) exist; returns the names it created.
    @discardableResult
    public func issue(workers count: Int) throws -> [String] {
        try Self.makeDirectory(workersDir)
        var made: [String] = []
        for k in 0..<count {
            let d = workersDir.appendingPathComponent(Self.name(k))
            if CurveKeys.isWorkerDirectory(d.path) { continue }
            try Self.makeDirectory(d)
            let w = try ZMQSocket.curveKeypair()
            // The public key last: a directory with worker.pub is complete (the keyring reads it then).
            for (file, key) in zip(
                ["server.pub", "worker.key", "worker.pub"], [serverPublic, w.secretKey, w.publicKey])
            {
                try Self.write(key, to: d.appendingPathComponent(file).path)
            }
            made.append(Self.name(k))
        }
        return made
    }

    /// The worker keys in `keys/workers/` now: public key (Z85) → name.
    public func workerKeys() -> [String: String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: workersDir.path)) ?? []
        var keys: [String: String] = [:]
        for name in names.sorted() {
            if let k = try? Self.read(workersDir.appendingPathComponent(name + "/worker.pub").path) { keys[k] = name }
        }
        return keys
    }

    static func makeDirectory(_ url: URL) throws {
        try FileManager.default.createDirectory(
            at: url, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
    }

    static func write(_ key: String, to path: String) throws {
        guard
            FileManager.default.createFile(
                atPath: path, contents: Data(key.utf8), attributes: [.posixPermissions: 0o600])
        else { throw SwiftRainError(path, "cannot write a key file", hint: "check the run directory is writable") }
    }

    static func read(_ path: String) throws -> String {
        guard let d = FileManager.default.contents(atPath: path),
            let k = String(data: d, encoding: .utf8)?.trimmingCharacters(in: .whitespacesAndNewlines), k.count == 40
        else {
            throw SwiftRainError(
                path, "missing or malformed CURVE key", expected: "40 Z85 characters",
                hint:
                    "copy this worker's directory RUN/keys/workers/wK (written by `swiftrain train`) to this host and "
                    + "pass --keys DIR"
            )
        }
        return k
    }
}

/// The run's worker keys as the coordinator's ZAP handler sees them: `keys/workers/` is read again
/// whenever its modification time changes (a key issued or deleted) and for a second after, while a new
/// directory may still be filling, so a key issued during the run is admitted on its first try (libzmq
/// does not retry a connection refused at the handshake) and a deleted one is refused, while a flood of
/// connection attempts costs a `stat` each.
public final class WorkerKeyring: @unchecked Sendable {
    private let keys: RunKeys
    private let lock = NSLock()
    private var known: [String: String] = [:]
    private var seen: timespec? = nil
    private var settledAt = -Double.infinity
    private let clock = MonotonicClock()

    public init(_ keys: RunKeys) { self.keys = keys }

    /// The name of the worker whose public key (Z85) this is, or nil.
    public func name(of publicKey: String) -> String? {
        lock.lock()
        defer { lock.unlock() }
        var st = stat()
        let mtime = stat(keys.workersDir.path, &st) == 0 ? st.st_mtim : timespec()
        let changed = seen.map { $0.tv_sec != mtime.tv_sec || $0.tv_nsec != mtime.tv_nsec } ?? true
        if changed { settledAt = clock.now + 1 }
        if changed || clock.now < settledAt {
            known = keys.workerKeys()
            seen = mtime
        }
        return known[publicKey]
    }
}
