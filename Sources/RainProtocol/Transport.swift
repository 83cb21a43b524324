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

/// A worker's end of the ring allreduce among workers (ZeroMQ's `RingAllreduce` in RainZMQ).
public protocol GradientRing: AnyObject {
    /// Where this worker receives ring chunks (sent to the coordinator in `ready`).
    var address: String { get }
    /// Bytes sent to the right neighbour so far, headers included.
    var bytesSent: Int { get }
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
/// for `round` of run `runId`, sent to each inbox in `addresses`.
public protocol RingAbandoner: AnyObject {
    func abandon(runId: UInt64, round: Int, step: Int, addresses: [String])
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
    private var toServer: [(peer: [UInt8], frames: Frames)] = []
    private var toClient: [[UInt8]: [Frames]] = [:]

    public init(clock: ManualClock = ManualClock()) { self.clock = clock }

    public func send(to peer: [UInt8], _ frames: Frames) throws { toClient[peer, default: []].append(frames) }

    public func receive(timeoutMs: Int) throws -> (peer: [UInt8], frames: Frames)? {
        if toServer.isEmpty { whenIdle() }
        guard !toServer.isEmpty else {
            clock.advance(by: Double(timeoutMs) / 1000)
            return nil
        }
        return toServer.removeFirst()
    }

    /// A client endpoint whose transport id is `id`'s UTF-8 bytes.
    public func client(_ id: String) -> Client { Client(hub: self, id: Array(id.utf8)) }

    public final class Client: ClientTransport {
        let hub: InMemoryHub
        public let id: [UInt8]
        init(hub: InMemoryHub, id: [UInt8]) {
            self.hub = hub
            self.id = id
        }
        public func send(_ frames: Frames) throws { hub.toServer.append((id, frames)) }
        /// The next message for this client, or nil at once (nothing blocks in one thread).
        public func receive(timeoutMs: Int) throws -> Frames? {
            guard let first = hub.toClient[id]?.first else { return nil }
            hub.toClient[id]!.removeFirst()
            return first
        }
    }
}
