// The only file that imports CZeroMQ. A final class owns each C handle; `check` turns return codes
// into typed errors.
import CZeroMQ
import Foundation
import RainSupport

/// An error reported by libzmq, with the call that failed.
public struct ZMQError: Error, CustomStringConvertible, Equatable {
    public let call: String
    public let errno: Int32
    public var description: String { "\(call): \(String(cString: zmq_strerror(errno))) (errno \(errno))" }
    /// True when a receive or send gave up because its deadline passed.
    public var isTimeout: Bool { errno == EAGAIN }
}

@discardableResult
fileprivate func check(_ rc: Int32, _ call: @autoclosure () -> String) throws -> Int32 {
    if rc < 0 { throw ZMQError(call: call(), errno: zmq_errno()) }
    return rc
}

/// Runs a blocking send or receive again when a signal interrupts it (EINTR): signals such as
/// SIGUSR1 are handled by flags (`StopSignal`), never by failing the call that was waiting.
@discardableResult
fileprivate func retryingInterrupts(_ name: @autoclosure () -> String, _ call: () -> Int32) throws -> Int32 {
    while true {
        let rc = call()
        if rc >= 0 { return rc }
        let e = zmq_errno()
        if e != EINTR { throw ZMQError(call: name(), errno: e) }
    }
}

/// A ZeroMQ context (one per process).
public final class ZMQContext {
    let handle: UnsafeMutableRawPointer
    public init() throws {
        guard let h = zmq_ctx_new() else { throw ZMQError(call: "zmq_ctx_new", errno: zmq_errno()) }
        handle = h
    }
    deinit { zmq_ctx_term(handle) }
}

/// A ZeroMQ socket. LINGER is always set, so closing never blocks on unsent messages.
public final class ZMQSocket {
    public enum Kind {
        case router, dealer, rep, push, pull, pair
        var raw: Int32 {
            switch self {
            case .pair: return ZMQ_PAIR
            case .push: return ZMQ_PUSH
            case .pull: return ZMQ_PULL
            case .router: return ZMQ_ROUTER
            case .dealer: return ZMQ_DEALER
            case .rep: return ZMQ_REP
            }
        }
    }

    fileprivate var handle: UnsafeMutableRawPointer?
    private let context: ZMQContext  // keeps the context alive while the socket lives

    /// Creates a socket with LINGER `lingerMs` and receive deadline `receiveTimeoutMs`.
    public init(_ context: ZMQContext, _ kind: Kind, lingerMs: Int32 = 0, receiveTimeoutMs: Int32 = 5000) throws {
        guard let h = zmq_socket(context.handle, kind.raw) else {
            throw ZMQError(call: "zmq_socket", errno: zmq_errno())
        }
        self.context = context
        handle = h
        try setInt(ZMQ_LINGER, lingerMs)
        try setInt(ZMQ_RCVTIMEO, receiveTimeoutMs)
    }

    deinit { close() }

    /// Closes at once, dropping whatever is still queued (LINGER 0), as a broken connection would.
    public func drop() {
        try? setInt(ZMQ_LINGER, 0)
        close()
    }

    public func close() {
        if let h = handle {
            zmq_close(h)
            handle = nil
        }
    }

    fileprivate func setInt(_ option: Int32, _ value: Int32) throws {
        var v = value
        try check(zmq_setsockopt(handle, option, &v, MemoryLayout<Int32>.size), "zmq_setsockopt(\(option))")
    }

    public func bind(_ endpoint: String) throws { try check(zmq_bind(handle, endpoint), "zmq_bind(\(endpoint))") }
    public func connect(_ endpoint: String) throws {
        try check(zmq_connect(handle, endpoint), "zmq_connect(\(endpoint))")
    }

    /// The endpoint actually bound (resolves `tcp://127.0.0.1:*` to a port).
    public func lastEndpoint() throws -> String {
        var buf = [CChar](repeating: 0, count: 256)
        var len = buf.count
        try check(zmq_getsockopt(handle, ZMQ_LAST_ENDPOINT, &buf, &len), "zmq_getsockopt(LAST_ENDPOINT)")
        return String(cString: buf)
    }

    private func setBytes(_ option: Int32, _ bytes: [UInt8]) throws {
        try check(zmq_setsockopt(handle, option, bytes, bytes.count), "zmq_setsockopt(\(option))")
    }

    /// CURVE server: encrypts and authenticates every connection with `secretKey` (Z85).
    public func makeCurveServer(secretKey: String) throws {
        try setInt(ZMQ_CURVE_SERVER, 1)
        try setBytes(ZMQ_CURVE_SECRETKEY, Array(secretKey.utf8))
    }

    /// CURVE client of a server whose public key is `serverKey`, with its own keypair (all Z85).
    public func makeCurveClient(serverKey: String, publicKey: String, secretKey: String) throws {
        try setBytes(ZMQ_CURVE_SERVERKEY, Array(serverKey.utf8))
        try setBytes(ZMQ_CURVE_PUBLICKEY, Array(publicKey.utf8))
        try setBytes(ZMQ_CURVE_SECRETKEY, Array(secretKey.utf8))
    }

    /// A new CURVE keypair, Z85-encoded (40 characters each).
    public static func curveKeypair() throws -> (publicKey: String, secretKey: String) {
        var pub = [CChar](repeating: 0, count: 41), sec = [CChar](repeating: 0, count: 41)
        try check(zmq_curve_keypair(&pub, &sec), "zmq_curve_keypair (is libzmq built with CURVE?)")
        return (String(cString: pub), String(cString: sec))
    }

    /// The 32 raw bytes of a Z85-encoded key (as ZAP requests carry them).
    public static func z85Decode(_ key: String) -> [UInt8]? {
        var out = [UInt8](repeating: 0, count: 32)
        return zmq_z85_decode(&out, key) == nil ? nil : out
    }

    /// The Z85 text of a 32-byte key, or nil if `raw` is not 32 bytes.
    public static func z85Encode(_ raw: [UInt8]) -> String? {
        guard raw.count == 32 else { return nil }
        var out = [CChar](repeating: 0, count: 41)
        return zmq_z85_encode(&out, raw, raw.count) == nil ? nil : String(cString: out)
    }

    /// Refuses (drops) inbound messages larger than `bytes` at the transport level.
    public func setMaxMessageSize(_ bytes: Int64) throws {
        var v = bytes
        try check(zmq_setsockopt(handle, ZMQ_MAXMSGSIZE, &v, MemoryLayout<Int64>.size), "zmq_setsockopt(MAXMSGSIZE)")
    }

    /// This socket's identity at a ROUTER (set before connecting): the same bytes after a reconnect.
    public func setRoutingId(_ id: [UInt8]) throws {
        try check(zmq_setsockopt(handle, ZMQ_ROUTING_ID, id, id.count), "zmq_setsockopt(ROUTING_ID)")
    }

    /// A ROUTER hands an identity over to a new connection that presents it (a peer reconnecting
    /// after its connection dropped) instead of refusing the newcomer.
    public func setRouterHandover(_ on: Bool) throws { try setInt(ZMQ_ROUTER_HANDOVER, on ? 1 : 0) }

    /// Messages queued per peer before ZeroMQ blocks (send) or stops reading (receive): with the
    /// message size limit, the memory a peer can make this socket hold.
    /// How long a send may wait for room (a full queue, or no peer yet) before it fails; −1: forever.
    public func setSendTimeout(_ ms: Int32) throws { try setInt(ZMQ_SNDTIMEO, ms) }

    public func setHighWaterMarks(send: Int32, receive: Int32) throws {
        try setInt(ZMQ_SNDHWM, send)
        try setInt(ZMQ_RCVHWM, receive)
    }

    /// Receives one multipart message within `timeoutMs`, or nil when the deadline passes.
    public func receive(timeoutMs: Int32) throws -> [[UInt8]]? {
        try setInt(ZMQ_RCVTIMEO, timeoutMs)
        do { return try receive() } catch let e as ZMQError where e.isTimeout { return nil }
    }

    /// Sends one multipart message.
    public func send(_ frames: [[UInt8]]) throws {
        for (i, frame) in frames.enumerated() {
            let flags = i < frames.count - 1 ? ZMQ_SNDMORE : 0
            _ = try frame.withUnsafeBytes { buf in
                try retryingInterrupts("zmq_send") { zmq_send(handle, buf.baseAddress, buf.count, flags) }
            }
        }
    }

    /// Receives one multipart message, or throws a timeout `ZMQError` after the receive deadline.
    public func receive() throws -> [[UInt8]] { try receiveAuthenticated().frames }

    /// Receives one multipart message within `timeoutMs` with the ZAP User-Id its connection was admitted
    /// under ("" without authentication), or nil when the deadline passes.
    public func receiveAuthenticated(timeoutMs: Int32) throws -> (frames: [[UInt8]], userId: String)? {
        try setInt(ZMQ_RCVTIMEO, timeoutMs)
        do { return try receiveAuthenticated() } catch let e as ZMQError where e.isTimeout { return nil }
    }

    private func receiveAuthenticated() throws -> (frames: [[UInt8]], userId: String) {
        var frames: [[UInt8]] = []
        var userId = ""
        var msg = zmq_msg_t()
        var more = true
        while more {
            try check(zmq_msg_init(&msg), "zmq_msg_init")
            defer { zmq_msg_close(&msg) }
            let n = try retryingInterrupts("zmq_msg_recv") { zmq_msg_recv(&msg, handle, 0) }
            let data = zmq_msg_data(&msg)!.assumingMemoryBound(to: UInt8.self)
            frames.append(Array(UnsafeBufferPointer(start: data, count: Int(n))))
            more = zmq_msg_more(&msg) != 0
            // A ROUTER's routing-id frame is the socket's own and carries no metadata: take the peer's frames'.
            if userId.isEmpty { userId = userIdProperty(&msg) }
        }
        return (frames, userId)
    }
}

/// The ZAP User-Id a received message's connection was admitted under, "" when there is none.
private func userIdProperty(_ msg: UnsafeMutablePointer<zmq_msg_t>) -> String {
    zmq_msg_gets(msg, "User-Id").map { String(cString: $0) } ?? ""
}

/// One received frame that keeps its `zmq_msg_t`: `bytes` point into ZeroMQ's own buffer (no copy)
/// and stay valid while the frame lives.
public final class ZMQFrame {
    private let msg: UnsafeMutablePointer<zmq_msg_t>
    public let bytes: UnsafeRawBufferPointer
    public let hasMore: Bool
    /// The ZAP User-Id its connection was admitted under ("" without authentication).
    public let userId: String

    fileprivate init(_ socket: UnsafeMutableRawPointer?) throws {
        msg = .allocate(capacity: 1)
        guard zmq_msg_init(msg) == 0 else {
            msg.deallocate()
            throw ZMQError(call: "zmq_msg_init", errno: zmq_errno())
        }
        let m = msg, n: Int32
        do { n = try retryingInterrupts("zmq_msg_recv") { zmq_msg_recv(m, socket, 0) } } catch {
            zmq_msg_close(m)
            m.deallocate()
            throw error
        }
        bytes = UnsafeRawBufferPointer(start: zmq_msg_data(msg), count: Int(n))
        hasMore = zmq_msg_more(msg) != 0
        userId = userIdProperty(msg)
    }
    deinit {
        zmq_msg_close(msg)
        msg.deallocate()
    }
}

/// Counts zero-copy sends whose bytes ZeroMQ still holds. ZeroMQ calls back from its I/O thread when
/// it has written a message, after which the sender may change the bytes again.
public final class ZMQSendTracker {
    private let released = DispatchSemaphore(value: 0)
    private var outstanding = 0  // touched only by the sending thread
    public init() {}

    fileprivate func issued() { outstanding += 1 }
    fileprivate func release() { released.signal() }

    /// Waits until every tracked send has been written; false if `timeoutMs` passed first.
    public func waitAll(timeoutMs: Int) -> Bool {
        let deadline = DispatchTime.now() + .milliseconds(timeoutMs)
        while outstanding > 0 {
            if released.wait(timeout: deadline) == .timedOut { return false }
            outstanding -= 1
        }
        return true
    }
}

private let releaseTracked: @convention(c) (UnsafeMutableRawPointer?, UnsafeMutableRawPointer?) -> Void = { _, hint in
    Unmanaged<ZMQSendTracker>.fromOpaque(hint!).takeRetainedValue().release()
}

extension ZMQSocket {
    /// Receives one multipart message without copying it, or nil when `timeoutMs` passes.
    public func receiveFrames(timeoutMs: Int32) throws -> [ZMQFrame]? {
        try setInt(ZMQ_RCVTIMEO, timeoutMs)
        var frames: [ZMQFrame] = []
        repeat {
            do { frames.append(try ZMQFrame(handle)) } catch let e as ZMQError where e.isTimeout && frames.isEmpty {
                return nil
            }
        } while frames.last!.hasMore
        return frames
    }

    /// Sends small frames by copy, then `payload` without copying it: ZeroMQ reads the caller's memory
    /// later, from its I/O thread, so the caller must leave it unchanged until `tracker.waitAll` returns.
    public func send(_ frames: [[UInt8]], noCopyPayload payload: UnsafeRawBufferPointer, tracker: ZMQSendTracker) throws
    {
        for frame in frames {
            _ = try frame.withUnsafeBytes { buf in
                try retryingInterrupts("zmq_send") { zmq_send(handle, buf.baseAddress, buf.count, ZMQ_SNDMORE) }
            }
        }
        var msg = zmq_msg_t()
        let hint = Unmanaged.passRetained(tracker).toOpaque()
        guard
            zmq_msg_init_data(
                &msg, UnsafeMutableRawPointer(mutating: payload.baseAddress), payload.count, releaseTracked, hint) == 0
        else {
            Unmanaged<ZMQSendTracker>.fromOpaque(hint).release()
            throw ZMQError(call: "zmq_msg_init_data", errno: zmq_errno())
        }
        tracker.issued()
        do { try retryingInterrupts("zmq_msg_send") { zmq_msg_send(&msg, handle, 0) } } catch {
            zmq_msg_close(&msg)  // calls the release function
            throw error
        }
    }
}

extension ZMQSocket {
    /// A PAIR socket that receives this socket's failed handshakes (ZeroMQ's socket monitor): a client
    /// whose connection the server's ZAP handler refused is never retried by libzmq, so without this it
    /// would wait in silence.
    public func handshakeMonitor(_ context: ZMQContext) throws -> ZMQSocket {
        let endpoint = "inproc://monitor-\(UInt64.random(in: 1...UInt64.max))"
        try check(zmq_socket_monitor(handle, endpoint, ZMQ_EVENT_HANDSHAKE_FAILED_AUTH), "zmq_socket_monitor")
        let pair = try ZMQSocket(context, .pair)
        try pair.connect(endpoint)
        return pair
    }

    /// On a monitor socket: the ZAP status code of the next refused handshake, without waiting, or nil.
    public func refusedHandshake() -> UInt32? {
        guard let frames = try? receive(timeoutMs: 0), let first = frames.first, first.count == 6,
            Int32(UInt16(first[0]) | UInt16(first[1]) << 8) == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH
        else { return nil }
        return first[2...5].reversed().reduce(UInt32(0)) { $0 << 8 | UInt32($1) }  // host (little-endian) order
    }
}
