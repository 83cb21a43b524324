import Foundation
import RainProtocol
import RainSupport

#if canImport(Glibc)
import Glibc
#endif

/// Where a process of a multi-process job learns its role and its coordinator when no flag says:
/// SLURM's environment (one `srun` starts every task; task 0 coordinates), or, outside SLURM,
/// torchrun's RANK / WORLD_SIZE / MASTER_ADDR / MASTER_PORT. Explicit flags always win.
public struct LaunchEnvironment: Equatable {
    public enum Source: String { case slurm = "SLURM", torchrun = "torchrun-style RANK/WORLD_SIZE" }
    public var source: Source
    /// This task's rank; 0 is the coordinator, 1… are workers.
    public var rank: Int
    /// Tasks in the job: the coordinator and WORLD_SIZE − 1 workers.
    public var worldSize: Int
    public var coordinatorHost: String
    public var port: Int
    /// OpenBLAS threads for a worker (SLURM_CPUS_PER_TASK).
    public var cpusPerTask: Int?
    /// Nodes in the job, when known (SLURM): above 1, loopback addresses are refused.
    public var nodes: Int?

    public var workers: Int { worldSize - 1 }
    /// The coordinator listens on every interface (the workers may be on other nodes).
    public var listenEndpoint: String { "tcp://0.0.0.0:\(port)" }
    public var connectEndpoint: String { "tcp://\(coordinatorHost):\(port)" }

    /// The port of a SLURM job: fixed per job id (so a requeued job reuses it), in 20000…59999.
    public static func port(jobId: Int) -> Int { 20_000 + jobId % 40_000 }

    /// Reads `env`; nil when neither SLURM nor torchrun variables are present. Throws when they are
    /// present but incomplete or malformed, naming the variable.
    public static func detect(_ env: [String: String] = ProcessInfo.processInfo.environment) throws
        -> LaunchEnvironment?
    {
        func int(_ name: String) throws -> Int {
            guard let v = env[name] else {
                throw SwiftRainError(
                    name, "not set",
                    hint:
                        """
                        run inside `srun` (SLURM) or set RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT, or pass \
                        --connect/--listen explicitly
                        """
                )
            }
            guard let i = Int(v.trimmingCharacters(in: .whitespaces)), i >= 0 else {
                throw SwiftRainError(name, "not a non-negative integer", found: v, hint: "check the job's environment")
            }
            return i
        }
        if env["SLURM_PROCID"] != nil && env["SLURM_JOB_ID"] != nil {
            let list = try SlurmNodeList.expand(env["SLURM_JOB_NODELIST"] ?? env["SLURM_NODELIST"] ?? "")
            guard let first = list.first else {
                throw SwiftRainError(
                    "SLURM_JOB_NODELIST", "empty or missing", hint: "run inside a SLURM allocation (sbatch or salloc)")
            }
            let ntasks = try int(env["SLURM_NTASKS"] != nil ? "SLURM_NTASKS" : "SLURM_NPROCS")
            let port =
                try env["SWIFTRAIN_PORT"] != nil ? int("SWIFTRAIN_PORT") : Self.port(jobId: try int("SLURM_JOB_ID"))
            let nodes = try env["SLURM_JOB_NUM_NODES"] != nil ? int("SLURM_JOB_NUM_NODES") : list.count
            return LaunchEnvironment(
                source: .slurm, rank: try int("SLURM_PROCID"), worldSize: ntasks, coordinatorHost: first, port: port,
                cpusPerTask: try env["SLURM_CPUS_PER_TASK"] != nil ? int("SLURM_CPUS_PER_TASK") : nil, nodes: nodes)
        }
        if env["RANK"] != nil || env["WORLD_SIZE"] != nil || env["MASTER_ADDR"] != nil {
            guard let host = env["MASTER_ADDR"], !host.isEmpty else {
                throw SwiftRainError(
                    "MASTER_ADDR", "not set",
                    hint: "set MASTER_ADDR to the coordinator's host (with RANK, WORLD_SIZE, MASTER_PORT)")
            }
            return LaunchEnvironment(
                source: .torchrun, rank: try int("RANK"), worldSize: try int("WORLD_SIZE"), coordinatorHost: host,
                port: try int("MASTER_PORT"), cpusPerTask: nil, nodes: nil)
        }
        return nil
    }

    /// Refuses a loopback endpoint in a job that spans several nodes: workers on the other nodes
    /// could never reach it. Typical cause: the first node's name maps to 127.0.1.1 in /etc/hosts.
    public func checkReachable(_ endpoint: String, role: String) throws {
        guard let nodes, nodes > 1 else { return }
        let host = Self.resolvedHost(of: endpoint)
        guard Endpoint.isLoopbackHost(host) else { return }
        throw SwiftRainError(
            role, "a \(nodes)-node job would use a loopback address",
            expected: "an address the other nodes can reach",
            found: "\(endpoint)" + (host == coordinatorHost ? "" : " (\(coordinatorHost) resolves to \(host))"),
            hint:
                """
                fix the node's entry in /etc/hosts, or pass --connect tcp://ADDRESS:PORT (workers) and --listen \
                tcp://0.0.0.0:PORT (coordinator) with a routable address
                """
        )
    }

    /// The host part of tcp://HOST:PORT, resolved to an address when it is a name.
    static func resolvedHost(of endpoint: String) -> String {
        let h = Endpoint.host(endpoint) ?? endpoint
        return resolve(h) ?? h
    }

    /// The first IPv4/IPv6 address of `name` (nil if it does not resolve).
    static func resolve(_ name: String) -> String? {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(name, nil, &hints, &result) == 0, let first = result else { return nil }
        defer { freeaddrinfo(result) }
        var buf = [CChar](repeating: 0, count: Int(NI_MAXHOST))
        guard
            getnameinfo(
                first.pointee.ai_addr, first.pointee.ai_addrlen, &buf, socklen_t(buf.count), nil, 0, NI_NUMERICHOST)
                == 0
        else { return nil }
        return String(cString: buf)
    }
}

/// SLURM's compressed host lists, e.g. `node[01-03,07],login5`, expanded in order (what
/// `scontrol show hostnames` prints), without needing scontrol.
public enum SlurmNodeList {
    public static func expand(_ list: String) throws -> [String] {
        var out: [String] = [], token = "", depth = 0
        for ch in list {
            if ch == "[" { depth += 1 } else if ch == "]" { depth -= 1 }
            if ch == "," && depth == 0 {
                out += try expandOne(token)
                token = ""
            } else {
                token.append(ch)
            }
        }
        if !token.isEmpty { out += try expandOne(token) }
        return out
    }

    private static func expandOne(_ token: String) throws -> [String] {
        guard let open = token.firstIndex(of: "[") else { return token.isEmpty ? [] : [token] }
        guard let close = token[open...].firstIndex(of: "]") else {
            throw SwiftRainError(
                "SLURM_JOB_NODELIST", "unbalanced brackets", found: token, hint: "check the job's environment")
        }
        let prefix = String(token[..<open]), rest = String(token[token.index(after: close)...])
        var names: [String] = []
        for part in token[token.index(after: open)..<close].split(separator: ",") {
            let bounds = part.split(separator: "-", maxSplits: 1).map(String.init)
            guard let lo = Int(bounds[0]), let hi = Int(bounds.count == 2 ? bounds[1] : bounds[0]), lo <= hi else {
                throw SwiftRainError(
                    "SLURM_JOB_NODELIST", "bad range", found: String(part), hint: "check the job's environment")
            }
            let width = bounds[0].count  // zero padding, as in node[01-10]
            for i in lo...hi {
                let digits = String(i)
                names.append(prefix + String(repeating: "0", count: max(0, width - digits.count)) + digits)
            }
        }
        // Anything after the bracket (e.g. a second bracket group) applies to every name.
        return try names.flatMap { n in try rest.isEmpty ? [n] : expandOne(n + rest) }
    }
}
