import Foundation
import RainProtocol
import RainSupport

#if canImport(Glibc)
import Glibc
#endif

/// How the workers of an MPI job find rank 0, since MPI's launchers say nothing of addresses: rank 0 writes
/// `RUN/coordinator.json` (the run directory is shared by every rank anyway: checkpoints live there) once it
/// listens, and removes it when it exits; each worker waits for a file of its own launch. A file left by an
/// earlier launch of the same run (a killed job) is told apart by the launcher's job id when there is one, and
/// always by its age: written before this worker started (less a minute for clocks that differ between nodes).
public struct Rendezvous: Codable, Equatable {
    /// tcp://HOST:PORT, where the workers connect.
    public var endpoint: String
    public var job: String?
    /// Seconds since 1970 (the coordinator's clock) when it was written.
    public var written: Double
    public var pid: Int32
    public var hostname: String

    public init(endpoint: String, job: String?, written: Double, pid: Int32, hostname: String) {
        (self.endpoint, self.job, self.written, self.pid, self.hostname) = (endpoint, job, written, pid, hostname)
    }

    public static let fileName = "coordinator.json"
    public static func path(run: String) -> String { URL(fileURLWithPath: run).appendingPathComponent(fileName).path }

    /// Written atomically (a temporary file renamed over it): a worker never reads half of it.
    public static func publish(run: String, endpoint: String, job: String?) throws -> Rendezvous {
        let r = Rendezvous(
            endpoint: endpoint, job: job, written: Date().timeIntervalSince1970, pid: getpid(),
            hostname: ProcessInfo.processInfo.hostName)
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        do {
            try enc.encode(r).write(to: URL(fileURLWithPath: path(run: run)), options: .atomic)
        } catch {
            throw SwiftRainError(
                path(run: run), "cannot publish the coordinator's address", found: "\(error)",
                hint: "the run directory must be writable by rank 0 and shared with every node (a shared file system)")
        }
        return r
    }

    /// Removes the file if this process wrote it (a newer coordinator's stays).
    public static func withdraw(run: String) {
        let p = path(run: run)
        if let r = read(p), r.pid == getpid(), r.hostname == ProcessInfo.processInfo.hostName {
            try? FileManager.default.removeItem(atPath: p)
        }
    }

    static func read(_ path: String) -> Rendezvous? {
        FileManager.default.contents(atPath: path).flatMap { try? JSONDecoder().decode(Rendezvous.self, from: $0) }
    }

    /// Whether a worker of launch `job`, started at `start` (seconds since 1970), takes this address.
    public func belongs(toJob job: String?, startedAt start: Double) -> Bool {
        if let mine = job, let theirs = self.job, mine != theirs { return false }
        return written >= start - 60
    }

    /// Waits up to `timeout` seconds for rank 0's address in `run`; the error says what was found and what to do.
    public static func wait(
        run: String, job: String?, startedAt start: Double, timeout: Double, log: (String) -> Void
    ) throws -> Rendezvous {
        let p = path(run: run), clock = MonotonicClock(), deadline = clock.now + timeout
        var stale: Rendezvous? = nil
        while true {
            if let r = read(p) {
                if r.belongs(toJob: job, startedAt: start) { return r }
                if stale != r {
                    log("worker: \(p) is from an earlier launch (\(r.describe)); waiting for this launch's rank 0")
                    stale = r
                }
            }
            guard clock.now < deadline else { break }
            usleep(200_000)
        }
        throw SwiftRainError(
            p, "rank 0 published no coordinator address within \(Int(timeout)) s",
            expected: "the address of this launch's rank 0" + (job.map { " (job \($0))" } ?? ""),
            found: stale.map { "only an earlier launch's: \($0.describe)" } ?? "no file",
            hint:
                """
                check rank 0's output; the run directory must be the same shared directory on every node; or pass \
                --coordinator HOST:PORT to every rank
                """
        )
    }

    var describe: String {
        let t = UTCTime.iso(EpochSeconds(written))
        return "\(endpoint) of pid \(pid) on \(hostname), written \(t)" + (job.map { ", job \($0)" } ?? "")
    }

    /// The host rank 0 advertises: its name, unless that resolves to loopback in a job of several nodes
    /// (Debian maps a machine's own name to 127.0.1.1), then its first non-loopback IPv4 address.
    public static func advertisedHost(nodes: Int?) -> String {
        let name = ProcessInfo.processInfo.hostName
        guard (nodes ?? 1) > 1, Endpoint.isLoopbackHost(LaunchEnvironment.resolve(name) ?? name) else { return name }
        return interfaceAddresses().first ?? name
    }

    /// This machine's IPv4 addresses outside 127/8, in interface order.
    static func interfaceAddresses() -> [String] {
        var list: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&list) == 0 else { return [] }
        defer { freeifaddrs(list) }
        var out: [String] = []
        var p = list
        while let a = p {
            defer { p = a.pointee.ifa_next }
            guard let sa = a.pointee.ifa_addr, sa.pointee.sa_family == UInt16(AF_INET) else { continue }
            var buf = [CChar](repeating: 0, count: Int(NI_MAXHOST))
            guard
                getnameinfo(
                    sa, socklen_t(MemoryLayout<sockaddr_in>.size), &buf, socklen_t(buf.count), nil, 0, NI_NUMERICHOST)
                    == 0
            else { continue }
            let s = String(cString: buf)
            if !Endpoint.isLoopbackHost(s) { out.append(s) }
        }
        return out
    }
}
