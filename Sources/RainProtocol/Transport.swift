import Foundation
import RainSupport

public typealias Frames = [[UInt8]]

/// "How bytes move", for the coordinator: many peers, each identified by an opaque id. The training
/// protocol ("what and when") only sees this protocol, so tests can run it over `InMemoryHub`.
public protocol ServerTransport: AnyObject {
    func send(to peer: [UInt8], _ frames: Frames) throws
    /// The next message from any peer, with the public key (Z85) its connection authenticated with
    /// ("" without CURVE), or nil when `timeoutMs` passes.
    func receive(timeoutMs: Int) throws -> (peer: [UInt8], frames: Frames, key: String)?
}

/// The worker's side: one connection to the coordinator.
public protocol ClientTransport: AnyObject {
    func send(_ frames: Frames) throws
    func receive(timeoutMs: Int) throws -> Frames?
    /// Releases the connection (a ZeroMQ context cannot terminate while a socket is open).
    func close()
    /// Why the coordinator refused this connection at its handshake (a key it does not admit), once.
    var refusal: String? { get }
}

extension ClientTransport {
    public func close() {}
    public var refusal: String? { nil }
}

/// A worker's end of the ring allreduce among workers (ZeroMQ's `RingAllreduce` in RainZMQ).
public protocol GradientRing: AnyObject {
    /// Where this worker receives ring chunks (sent to the coordinator in `ready`).
    var address: String { get }
    /// Bytes sent to the right neighbour so far, headers included.
    var bytesSent: Int { get }
    /// Pieces received so far (read by the heartbeat thread: a ring whose members all stop receiving lost one).
    var piecesReceived: Int { get }
    /// The membership version of the step under way: its pieces carry it, and pieces of another are stale.
    var membership: UInt32 { get set }
    /// How pieces travel (every member of a ring must use the same: the run's `grad_wire`).
    var wire: GradientWire { get set }
    /// The public keys (Z85) of ring members by address, from the coordinator: only those members' pieces
    /// get in, and each piece must come under the key of the neighbour it is expected from.
    func admit(_ keys: [String: String])
    /// Replaces `buffer` with the sum of every member's buffer, the same bits on every member; false if
    /// the sum is not finite. Throws when a neighbour fails.
    @discardableResult
    func allreduce(
        _ buffer: UnsafeMutableBufferPointer<Float>, ring: [String], position: Int, step: Int, round: Int,
        timeoutMs: Int
    ) throws -> Bool
    /// The same sum over workers grouped by host: a chain within each host onto its leader (`chain`,
    /// leader first; `link` is this worker's place), the ring among `leaders`, a chain back out.
    func hierarchicalAllreduce(
        _ buffer: UnsafeMutableBufferPointer<Float>, chain: [String], link: Int, leaders: [String],
        leaderPosition: Int, step: Int, round: Int, timeoutMs: Int
    ) throws -> Bool
    func close()
}

/// The coordinator's way to release ring members blocked on a dead neighbour: a chunk with stage −1
/// for `round` of run `runId`, sent to each member's inbox (`address`, with its public `key` under CURVE).
public protocol RingAbandoner: AnyObject {
    func abandon(runId: UInt64, round: Int, step: Int, members: [(address: String, key: String)])
}

/// The in-memory twin of the ZeroMQ transport: the protocol logic ("what and when") runs on it in
/// one thread, with no sockets, processes or sleeps (like swift-nio's EmbeddedChannel).
///
/// When the server finds its queue empty it first lets the peers act (`whenIdle`: a test's scripted
/// workers read what was sent to them and answer); if there is still nothing, the time it would have
/// waited passes at once on the hub's manual clock, so timeouts fire deterministically.
public final class InMemoryHub: ServerTransport {
    public let clock: ManualClock
    /// Called when the server would wait: the peers' turn.
    public var whenIdle: () -> Void = {}
    private var toServer: [(peer: [UInt8], frames: Frames, key: String)] = []
    private var toClient: [[UInt8]: [Frames]] = [:]

    public init(clock: ManualClock = ManualClock()) { self.clock = clock }

    public func send(to peer: [UInt8], _ frames: Frames) throws { toClient[peer, default: []].append(frames) }

    public func receive(timeoutMs: Int) throws -> (peer: [UInt8], frames: Frames, key: String)? {
        if toServer.isEmpty { whenIdle() }
        guard !toServer.isEmpty else {
            clock.advance(by: Double(timeoutMs) / 1000)
            return nil
        }
        return toServer.removeFirst()
    }

    /// A client endpoint whose transport id is `id`'s UTF-8 bytes, authenticated as `key` ("": none).
    public func client(_ id: String, key: String = "") -> Client { Client(hub: self, id: Array(id.utf8), key: key) }

    public final class Client: ClientTransport {
        let hub: InMemoryHub
        public let id: [UInt8]
        /// The public key its messages arrive under (a CURVE connection's ZAP User-Id).
        public var key: String
        init(hub: InMemoryHub, id: [UInt8], key: String) {
            self.hub = hub
            self.id = id
            self.key = key
        }
        public func send(_ frames: Frames) throws { hub.toServer.append((id, frames, key)) }
        /// The next message for this client, or nil at once (nothing blocks in one thread).
        public func receive(timeoutMs: Int) throws -> Frames? {
            guard let first = hub.toClient[id]?.first else { return nil }
            hub.toClient[id]!.removeFirst()
            return first
        }
    }
}
