import Dispatch

/// Seconds on a clock that only moves forward: every deadline of the protocol (heartbeats, step and
/// join timeouts) is measured on one, so a wall-clock step (NTP) cannot evict workers, and tests can
/// drive the protocol on a manual clock without sleeping.
public protocol Clock: AnyObject {
    var now: Double { get }
}

/// The system's monotonic clock (CLOCK_MONOTONIC through Dispatch).
public final class MonotonicClock: Clock {
    public init() {}
    public var now: Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }
}

/// A clock that moves only when told: the in-memory hub advances it by each timeout it would have
/// waited, so tests of deadlines neither sleep nor depend on the machine's speed.
public final class ManualClock: Clock {
    public private(set) var now: Double
    public init(now: Double = 0) { self.now = now }
    public func advance(by seconds: Double) { now += max(0, seconds) }
}
