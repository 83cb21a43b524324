import Foundation
import RainSupport

/// ZeroMQ's authentication hook (ZAP, RFC 27) for the CURVE servers of one context: admits the
/// clients whose public key `admit` accepts and refuses everyone else, counting and logging each
/// refusal. An admitted connection's messages carry its public key (Z85) as their ZAP User-Id, which
/// is how a receiver binds a message to the key that sent it (`ZMQSocket.receiveAuthenticated`).
public final class ZAPHandler: @unchecked Sendable {
    private let socket: ZMQSocket
    /// Given a client's public key (Z85), a name for the log if it is admitted, nil if not.
    private let admit: (String) -> String?
    private let log: (String) -> Void
    private let lock = NSLock()
    private var stopped = false
    private var refusals = 0
    private let done = DispatchSemaphore(value: 0)

    /// Must be created on the context before the server socket binds.
    public init(context: ZMQContext, admit: @escaping (String) -> String?, log: @escaping (String) -> Void) throws {
        self.admit = admit
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
            // Request: version, request id, domain, address, routing id, mechanism, credentials…
            guard req.count >= 6 else {
                try? socket.send([Array("1.0".utf8), [], Array("400".utf8), Array("bad request".utf8), [], []])
                continue
            }
            let mechanism = String(decoding: req[5], as: UTF8.self)
            let key = mechanism == "CURVE" && req.count >= 7 ? ZMQSocket.z85Encode(req[6]) : nil
            let ok = key.flatMap(admit) != nil
            if !ok {
                lock.lock()
                refusals += 1
                lock.unlock()
                log(
                    """
                    refused a connection from \(String(decoding: req[3], as: UTF8.self)): \(mechanism) without \
                    a worker key of this run
                    """
                )
            }
            try? socket.send([
                Array("1.0".utf8), req[1], Array((ok ? "200" : "400").utf8),
                Array((ok ? "OK" : "not a worker of this run").utf8), Array((ok ? key! : "").utf8), [],
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
