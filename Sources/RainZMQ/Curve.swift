import Foundation
import RainProtocol
import RainSupport

#if canImport(Glibc)
import Glibc
#endif

/// The CURVE keys of a run (`keys/` of the run directory, mode 0600): the coordinator's keypair and
/// the workers' keypair. Copy the directory to the worker hosts and pass `--keys DIR` to each worker.
public struct CurveKeys {
    public var serverPublic: String, serverSecret: String
    public var workerPublic: String, workerSecret: String

    static let files = ["server.pub", "server.key", "worker.pub", "worker.key"]

    /// Loads the keys in `dir`, creating them (mode 0600) when `create` and none exist.
    public static func load(dir: String, create: Bool) throws -> CurveKeys {
        let url = URL(fileURLWithPath: dir)
        let paths = files.map { url.appendingPathComponent($0).path }
        if create && !FileManager.default.fileExists(atPath: paths[0]) {
            try FileManager.default.createDirectory(
                at: url, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            let s = try ZMQSocket.curveKeypair(), w = try ZMQSocket.curveKeypair()
            for (path, key) in zip(paths, [s.publicKey, s.secretKey, w.publicKey, w.secretKey]) {
                guard
                    FileManager.default.createFile(
                        atPath: path, contents: Data(key.utf8), attributes: [.posixPermissions: 0o600])
                else {
                    throw SwiftRainError(path, "cannot write a key file", hint: "check the run directory is writable")
                }
            }
        }
        let keys = try paths.map { path -> String in
            guard let d = FileManager.default.contents(atPath: path),
                let k = String(data: d, encoding: .utf8)?.trimmingCharacters(in: .whitespacesAndNewlines), k.count == 40
            else {
                throw SwiftRainError(
                    path, "missing or malformed CURVE key", expected: "40 Z85 characters",
                    hint:
                        "copy the run's keys/ directory (written by `swiftrain train`) to this host and pass --keys DIR"
                )
            }
            return k
        }
        return CurveKeys(serverPublic: keys[0], serverSecret: keys[1], workerPublic: keys[2], workerSecret: keys[3])
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
