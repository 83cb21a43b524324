import Foundation

/// A value one thread sets and another reads (e.g. the membership version a worker's heartbeat thread
/// sends), behind a lock.
public final class SharedValue<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var current: T

    public init(_ value: T) { current = value }
    public func set(_ value: T) { lock.withLock { current = value } }
    public var value: T { lock.withLock { current } }
}
