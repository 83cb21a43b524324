import Foundation
import RainProtocol

/// ZeroMQ ROUTER at the coordinator.
public final class ZMQServer: ServerTransport {
    let socket: ZMQSocket
    public let endpoint: String
    /// With `curveSecretKey`, every connection is encrypted and must pass the context's ZAP handler.
    /// Nothing a worker sends carries a payload, so each frame is at most `Message.maxControlBytes`,
    /// and a peer's queue holds at most `queuedPerPeer` messages: bounded memory whatever it sends.
    public init(
        context: ZMQContext, bind: String, maxMessageBytes: Int64 = Int64(Message.maxControlBytes),
        queuedPerPeer: Int32 = 64, curveSecretKey: String? = nil
    ) throws {
        // LINGER 2 s: the final shutdown messages must leave before the coordinator exits.
        socket = try ZMQSocket(context, .router, lingerMs: 2000)
        try socket.setMaxMessageSize(maxMessageBytes)
        try socket.setHighWaterMarks(send: 1000, receive: queuedPerPeer)
        // Workers keep one routing id per incarnation: after a dropped connection they are still themselves.
        try socket.setRouterHandover(true)
        if let curveSecretKey { try socket.makeCurveServer(secretKey: curveSecretKey) }
        try socket.bind(bind)
        endpoint = try socket.lastEndpoint()
    }
    public func send(to peer: [UInt8], _ frames: Frames) throws { try socket.send([peer] + frames) }
    public func receive(timeoutMs: Int) throws -> (peer: [UInt8], frames: Frames, key: String)? {
        guard let (f, key) = try socket.receiveAuthenticated(timeoutMs: Int32(clamping: timeoutMs)), f.count >= 1
        else { return nil }
        return (f[0], Array(f.dropFirst()), key)
    }
}

/// ZeroMQ DEALER at a worker.
public final class ZMQClient: ClientTransport {
    let socket: ZMQSocket
    /// Under CURVE: the connection's failed handshakes (a refused key is not retried by libzmq).
    let monitor: ZMQSocket?
    public let routingId: [UInt8]
    /// `routingId` (default: 16 random bytes, this incarnation's own) names this connection at the
    /// coordinator across reconnects.
    public init(
        context: ZMQContext, connect: String, curve: CurveKeys? = nil,
        routingId: [UInt8] = (0..<16).map { _ in UInt8.random(in: 1...255) }
    ) throws {
        socket = try ZMQSocket(context, .dealer)
        self.routingId = routingId
        try socket.setRoutingId(routingId)
        if let k = curve {
            try socket.makeCurveClient(serverKey: k.serverPublic, publicKey: k.workerPublic, secretKey: k.workerSecret)
        }
        monitor = curve == nil ? nil : try socket.handshakeMonitor(context)
        try socket.connect(connect)
    }

    public var refusal: String? {
        monitor?.refusedHandshake().map { "the coordinator refused this worker's key (ZAP status \($0))" }
    }
    public func send(_ frames: Frames) throws { try socket.send(frames) }
    public func receive(timeoutMs: Int) throws -> Frames? { try socket.receive(timeoutMs: Int32(clamping: timeoutMs)) }
    public func close() {
        monitor?.close()
        socket.close()
    }
}
