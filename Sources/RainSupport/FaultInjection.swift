import Foundation

/// The fault hook behind the failure tests: `SWIFTRAIN_FAULT=RANK:STEP:MOMENT:KIND` makes worker RANK
/// fail once, at a chosen moment of step STEP (validation: the first validation at or after it):
///
///     MOMENT  compute     before its shard's gradient
///             allreduce   inside the ring: after its first received piece; a reset, as the round's
///                         last forwarded piece leaves (no later piece reveals the loss: the members'
///                         heartbeats show the ring stalled)
///             validation  before its validation shard
///             result      as its result of step STEP is about to leave (after the ring)
///             valid-result  as its first validation answer at or after STEP is about to leave
///     KIND    kill        SIGKILL to itself
///             stop        SIGSTOP to itself (frozen: heartbeats stop too)
///             reset       its connection drops and is rebuilt (control socket, or ring outboxes inside the
///                         allreduce, losing the piece that was leaving): what ZeroMQ had queued is lost
///             stall       hangs forever while its heartbeat thread goes on (a worker stuck in a kernel)
///             rst         SIGSTOP to itself, for the test to act on its TCP connections (destroy them with
///                         `ss -K`: real RSTs to its peers; or arm a lossy proxy for what comes next) and
///                         SIGCONT it
///
/// Tests set it for a whole `swiftrain train`; every worker reads it, and only RANK arms it.
public enum FaultInjection {
    public enum Moment: String, Sendable {
        case compute, allreduce, validation, result
        case validResult = "valid-result"
    }
    public enum Kind: String, Sendable { case kill, stop, reset, stall, rst }

    public struct Plan: Equatable, Sendable {
        public var rank: Int, step: Int, moment: Moment, kind: Kind
    }

    /// Parses the hook's value; nil (and a logged reason) for anything malformed.
    public static func parse(_ spec: String) -> Plan? {
        let f = spec.split(separator: ":").map(String.init)
        guard f.count == 4, let rank = Int(f[0]), let step = Int(f[1]), let moment = Moment(rawValue: f[2]),
            let kind = Kind(rawValue: f[3])
        else { return nil }
        return Plan(rank: rank, step: step, moment: moment, kind: kind)
    }

    private static let lock = NSLock()
    nonisolated(unsafe) private static var armed: Plan?

    /// Called by a worker once it knows its rank: arms the hook if it names that rank.
    public static func arm(rank: Int, environment: [String: String] = ProcessInfo.processInfo.environment) {
        guard let spec = environment["SWIFTRAIN_FAULT"], let plan = parse(spec), plan.rank == rank else { return }
        lock.withLock { armed = plan }
    }

    /// At `moment` of `step`: fires the armed fault once. `kill` and `stop` happen here; `stall` never
    /// returns; `reset` is returned for the caller to drop its connection. Nil: nothing to do.
    /// `kinds` limits it to some kinds (a moment can have a point of its own per kind).
    public static func strike(_ moment: Moment, step: Int, kinds: Set<Kind>? = nil, log: (String) -> Void) -> Kind? {
        let plan: Plan? = lock.withLock {
            let atOrAfter = moment == .validation || moment == .validResult
            guard let p = armed, p.moment == moment, atOrAfter ? step >= p.step : step == p.step,
                kinds?.contains(p.kind) ?? true
            else { return nil }
            armed = nil
            return p
        }
        guard let plan else { return nil }
        log("worker \(plan.rank): SWIFTRAIN_FAULT: \(plan.kind) at step \(step), \(moment)")
        switch plan.kind {
        case .kill: raise(SIGKILL)
        case .stop, .rst: raise(SIGSTOP)
        case .stall: while true { sleep(3600) }
        case .reset: return .reset
        }
        return nil
    }
}
