import Foundation

public typealias Frames = [[UInt8]]

/// "How bytes move", for the coordinator: many peers, each identified by an opaque id. The training
/// protocol ("what and when") only sees this protocol, so tests can run it over `InMemoryHub`.
public protocol ServerTransport: AnyObject {
    func send(to peer: [UInt8], _ frames: Frames) throws
    /// The next message from any peer, or nil when `timeoutMs` passes.
    func receive(timeoutMs: Int) throws -> (peer: [UInt8], frames: Frames)?
}

/// The worker's side: one connection to the coordinator.
public protocol ClientTransport: AnyObject {
    func send(_ frames: Frames) throws
    func receive(timeoutMs: Int) throws -> Frames?
    /// Releases the connection (a ZeroMQ context cannot terminate while a socket is open).
    func close()
}

extension ClientTransport {
    public func close() {}
}

/// ZeroMQ ROUTER at the coordinator.
public final class ZMQServer: ServerTransport {
    let socket: ZMQSocket
    public let endpoint: String
    /// With `curveSecretKey`, every connection is encrypted and must pass the context's ZAP handler.
    public init(context: ZMQContext, bind: String, maxMessageBytes: Int64, curveSecretKey: String? = nil) throws {
        // LINGER 2 s: the final shutdown messages must leave before the coordinator exits.
        socket = try ZMQSocket(context, .router, lingerMs: 2000)
        try socket.setMaxMessageSize(maxMessageBytes)
        if let curveSecretKey { try socket.makeCurveServer(secretKey: curveSecretKey) }
        try socket.bind(bind)
        endpoint = try socket.lastEndpoint()
    }
    public func send(to peer: [UInt8], _ frames: Frames) throws { try socket.send([peer] + frames) }
    public func receive(timeoutMs: Int) throws -> (peer: [UInt8], frames: Frames)? {
        guard let f = try socket.receive(timeoutMs: Int32(clamping: timeoutMs)), f.count >= 1 else { return nil }
        return (f[0], Array(f.dropFirst()))
    }
}

/// ZeroMQ DEALER at a worker.
public final class ZMQClient: ClientTransport {
    let socket: ZMQSocket
    public init(context: ZMQContext, connect: String, curve: CurveKeys? = nil) throws {
        socket = try ZMQSocket(context, .dealer)
        if let k = curve { try socket.makeCurveClient(serverKey: k.serverPublic, publicKey: k.workerPublic, secretKey: k.workerSecret) }
        try socket.connect(connect)
    }
    public func send(_ frames: Frames) throws { try socket.send(frames) }
    public func receive(timeoutMs: Int) throws -> Frames? { try socket.receive(timeoutMs: Int32(clamping: timeoutMs)) }
    public func close() { socket.close() }
}

/// The in-memory twin of the ZeroMQ transport: a hub with one queue per direction, for tests of the
/// protocol logic with workers on threads.
public final class InMemoryHub: ServerTransport {
    private let lock = NSCondition()
    private var toServer: [(peer: [UInt8], frames: Frames)] = []
    private var toClient: [[UInt8]: [Frames]] = [:]

    public init() {}

    public func send(to peer: [UInt8], _ frames: Frames) throws {
        lock.lock(); toClient[peer, default: []].append(frames); lock.broadcast(); lock.unlock()
    }
    public func receive(timeoutMs: Int) throws -> (peer: [UInt8], frames: Frames)? {
        lock.lock(); defer { lock.unlock() }
        let deadline = Date().addingTimeInterval(Double(timeoutMs) / 1000)
        while toServer.isEmpty { if !lock.wait(until: deadline) { return nil } }
        return toServer.removeFirst()
    }
    /// A client endpoint with identity `id`.
    public func client(_ id: String) -> ClientTransport { Client(hub: self, id: Array(id.utf8)) }

    final class Client: ClientTransport {
        let hub: InMemoryHub, id: [UInt8]
        init(hub: InMemoryHub, id: [UInt8]) { self.hub = hub; self.id = id }
        func send(_ frames: Frames) throws {
            hub.lock.lock(); hub.toServer.append((id, frames)); hub.lock.broadcast(); hub.lock.unlock()
        }
        func receive(timeoutMs: Int) throws -> Frames? {
            hub.lock.lock(); defer { hub.lock.unlock() }
            let deadline = Date().addingTimeInterval(Double(timeoutMs) / 1000)
            while hub.toClient[id, default: []].isEmpty { if !hub.lock.wait(until: deadline) { return nil } }
            return hub.toClient[id]!.removeFirst()
        }
    }
}
