import Foundation
import RainProtocol
import RainSupport

#if canImport(Glibc)
import Glibc
#endif

/// The CURVE keys of a run: the coordinator's keypair and the workers' keypair, in `keys/` of the run
/// directory (mode 0700, files 0600). `keys/worker/` holds only what a worker needs (the coordinator's
/// public key and the workers' keypair): copy that to the worker hosts and pass `--keys DIR`. The
/// coordinator's secret never has to leave its host, so a worker host cannot pose as the coordinator.
public struct CurveKeys {
    public var serverPublic: String, serverSecret: String
    public var workerPublic: String, workerSecret: String

    static let files = ["server.pub", "server.key", "worker.pub", "worker.key"]
    /// What `keys/worker/` holds (indices into `files`).
    static let workerFiles = ["server.pub", "worker.pub", "worker.key"]

    /// The coordinator's keys in `dir`, created (with `dir/worker/`) when `create` and none exist.
    public static func load(dir: String, create: Bool) throws -> CurveKeys {
        let url = URL(fileURLWithPath: dir)
        let paths = files.map { url.appendingPathComponent($0).path }
        if create && !FileManager.default.fileExists(atPath: paths[0]) {
            try makeDirectory(url)
            let s = try ZMQSocket.curveKeypair(), w = try ZMQSocket.curveKeypair()
            for (path, key) in zip(paths, [s.publicKey, s.secretKey, w.publicKey, w.secretKey]) {
                try write(key, to: path)
            }
        }
        let k = try paths.map(read)
        let keys = CurveKeys(serverPublic: k[0], serverSecret: k[1], workerPublic: k[2], workerSecret: k[3])
        // The workers' copy (also for runs whose keys predate it).
        let worker = url.appendingPathComponent("worker")
        if create && !FileManager.default.fileExists(atPath: worker.appendingPathComponent("worker.key").path) {
            try makeDirectory(worker)
            for (name, key) in zip(workerFiles, [keys.serverPublic, keys.workerPublic, keys.workerSecret]) {
                try write(key, to: worker.appendingPathComponent(name).path)
            }
        }
        return keys
    }

    /// A worker's keys: `server.pub`, `worker.pub` and `worker.key` in `dir` (`keys/worker/`, or the
    /// run's `keys/` on a shared filesystem). The coordinator's secret is never read.
    public static func loadForWorker(dir: String) throws -> CurveKeys {
        let url = URL(fileURLWithPath: dir)
        let k = try workerFiles.map { try read(url.appendingPathComponent($0).path) }
        return CurveKeys(serverPublic: k[0], serverSecret: "", workerPublic: k[1], workerSecret: k[2])
    }

    private static func makeDirectory(_ url: URL) throws {
        try FileManager.default.createDirectory(
            at: url, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
    }

    private static func write(_ key: String, to path: String) throws {
        guard
            FileManager.default.createFile(
                atPath: path, contents: Data(key.utf8), attributes: [.posixPermissions: 0o600])
        else { throw SwiftRainError(path, "cannot write a key file", hint: "check the run directory is writable") }
    }

    private static func read(_ path: String) throws -> String {
        guard let d = FileManager.default.contents(atPath: path),
            let k = String(data: d, encoding: .utf8)?.trimmingCharacters(in: .whitespacesAndNewlines), k.count == 40
        else {
            throw SwiftRainError(
                path, "missing or malformed CURVE key", expected: "40 Z85 characters",
                hint:
                    "copy the run's keys/worker/ directory (written by `swiftrain train`) to this host and pass "
                    + "--keys DIR"
            )
        }
        return k
    }
}

/// ZeroMQ's authentication hook (ZAP, RFC 27) for the coordinator: admits CURVE clients holding the
/// run's worker key and refuses everyone else, counting and logging each refusal.
public final class ZAPHandler: @unchecked Sendable {
    private let socket: ZMQSocket
    private let allowed: [UInt8]
    private let log: (String) -> Void
    private let lock = NSLock()
    private var stopped = false
    private var refusals = 0
    private let done = DispatchSemaphore(value: 0)

    /// Must be created on the context before the server socket binds.
    public init(context: ZMQContext, allowedPublicKey: String, log: @escaping (String) -> Void) throws {
        guard let key = ZMQSocket.z85Decode(allowedPublicKey) else {
            throw SwiftRainError("worker.pub", "malformed key", hint: "regenerate the run's keys")
        }
        allowed = key
        self.log = log
        socket = try ZMQSocket(context, .rep, receiveTimeoutMs: 200)
        try socket.bind("inproc://zeromq.zap.01")
        Thread.detachNewThread { [self] in serve() }
    }

    public var refused: Int {
        lock.lock()
        defer { lock.unlock() }
        return refusals
    }

    private func serve() {
        defer {
            socket.close()
            done.signal()
        }
        while true {
            lock.lock()
            let stop = stopped
            lock.unlock()
            if stop { return }
            guard let req = try? socket.receive(timeoutMs: 200) else { continue }
            // Request: version, request id, domain, address, identity, mechanism, credentials…
            guard req.count >= 6 else {
                try? socket.send([Array("1.0".utf8), [], Array("400".utf8), Array("bad request".utf8), [], []])
                continue
            }
            let ok = String(decoding: req[5], as: UTF8.self) == "CURVE" && req.count >= 7 && req[6] == allowed
            if !ok {
                lock.lock()
                refusals += 1
                lock.unlock()
                log(
                    """
                    refused a connection from \(String(decoding: req[3], as: UTF8.self)): \
                    \(String(decoding: req[5], as: UTF8.self)) without the run's worker key
                    """
                )
            }
            try? socket.send([
                Array("1.0".utf8), req[1], Array((ok ? "200" : "400").utf8),
                Array((ok ? "OK" : "not a worker of this run").utf8), [], [],
            ])
        }
    }

    /// Stops the handler thread and closes its socket (so the context can terminate). Idempotent.
    public func stop() {
        lock.lock()
        let first = !stopped
        stopped = true
        lock.unlock()
        if first { done.wait() }
    }
}
