import Foundation

/// A thread-safe one-way flag: set by a signal handler or another thread, polled by a loop.
public final class StopSignal: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    private var sources: [DispatchSourceSignal] = []

    public init() {}
    public func set() {
        lock.lock()
        value = true
        lock.unlock()
    }
    public var isSet: Bool {
        lock.lock()
        defer { lock.unlock() }
        return value
    }

    /// Sets the flag on any of `signals` instead of letting them end the process.
    public func install(signals: [Int32], log: @escaping (String) -> Void) {
        for sig in signals {
            signal(sig, SIG_IGN)
            let s = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            s.setEventHandler { [weak self] in
                log("signal \(sig): checkpointing after this step")
                self?.set()
            }
            s.resume()
            sources.append(s)
        }
    }
}
