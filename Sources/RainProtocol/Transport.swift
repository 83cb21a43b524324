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
    /// Replaces `buffer` with the sum of every member's buffer; throws when a neighbour fails.
    func allreduce(_ buffer: UnsafeMutableBufferPointer<Float>, ring: [String], position: Int, step: Int, round: Int,
                   timeoutMs: Int) throws
    func close()
}

/// The coordinator's way to release ring members blocked on a dead neighbour: a chunk with stage −1
/// for `round` of run `runId`, sent to each inbox in `addresses`.
public protocol RingAbandoner: AnyObject {
    func abandon(runId: UInt64, round: Int, step: Int, addresses: [String])
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
