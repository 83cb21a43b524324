import Foundation
import RainProtocol
import RainSupport

#if canImport(Glibc)
import Glibc
#endif

/// Where a process of a multi-process job learns its role and its coordinator when no flag says:
/// SLURM's environment (one `srun` starts every task; task 0 coordinates), an MPI launcher's
/// (`mpirun`/`mpiexec` of Open MPI, MPICH/Hydra, Intel MPI, PMIx: rank and size only, no address), or
/// torchrun's RANK / WORLD_SIZE / MASTER_ADDR / MASTER_PORT. Explicit flags always win.
public struct LaunchEnvironment: Equatable {
    public enum Source: String {
        case slurm = "SLURM", torchrun = "torchrun-style RANK/WORLD_SIZE", openMPI = "Open MPI",
            pmi = "MPICH/Hydra PMI", pmix = "PMIx"
    }
    public var source: Source
    /// This task's rank; 0 is the coordinator, 1… are workers.
    public var rank: Int
    /// Tasks in the job: the coordinator and WORLD_SIZE − 1 workers.
    public var worldSize: Int
    /// nil under MPI: the launcher says nothing of where rank 0 runs (it publishes its address, see `Rendezvous`).
    public var coordinatorHost: String?
    /// nil under MPI unless SWIFTRAIN_PORT is set: rank 0 then listens on a port the kernel picks.
    public var port: Int?
    /// OpenBLAS threads for a worker (SLURM_CPUS_PER_TASK).
    public var cpusPerTask: Int?
    /// Nodes in the job, when known (SLURM, Open MPI; MPICH: more than one when its local ranks are fewer than
    /// all): above 1, loopback addresses are refused.
    public var nodes: Int?
    /// Names this launch of the job (Open MPI's job id, SLURM's job id and restart count, the scheduler's job id),
    /// when the environment has one: a worker takes a published coordinator address only from its own job.
    public var job: String?

    public var workers: Int { worldSize - 1 }
    /// The coordinator listens on every interface (the workers may be on other nodes).
    public var listenEndpoint: String { "tcp://0.0.0.0:\(port.map(String.init) ?? "*")" }
    /// nil when the launcher gives no coordinator address (MPI).
    public var connectEndpoint: String? { coordinatorHost.flatMap { h in port.map { "tcp://\(h):\($0)" } } }

    /// The port of a SLURM job: fixed per job id (so a requeued job reuses it), in 20000…59999.
    public static func port(jobId: Int) -> Int { 20_000 + jobId % 40_000 }

    /// Reads `env`; nil when no launcher's variables are present. Throws when they are present but incomplete
    /// or malformed, naming the variable. An MPI launcher's rank wins over SLURM's when the two disagree
    /// (`mpirun` inside an allocation: the ranks inherit the batch script's SLURM_PROCID); when they agree
    /// (`srun --mpi=pmix`) SLURM's, which also knows the coordinator's address.
    public static func detect(_ env: [String: String] = ProcessInfo.processInfo.environment) throws
        -> LaunchEnvironment?
    {
        let read = EnvironmentReader(env: env)
        let mpi = try mpiEnvironment(read)
        if env["SLURM_PROCID"] != nil && env["SLURM_JOB_ID"] != nil {
            let list = try SlurmNodeList.expand(env["SLURM_JOB_NODELIST"] ?? env["SLURM_NODELIST"] ?? "")
            guard let first = list.first else {
                throw SwiftRainError(
                    "SLURM_JOB_NODELIST", "empty or missing", hint: "run inside a SLURM allocation (sbatch or salloc)")
            }
            let ntasks = try read.int(env["SLURM_NTASKS"] != nil ? "SLURM_NTASKS" : "SLURM_NPROCS")
            let port = try read.optional("SWIFTRAIN_PORT") ?? Self.port(jobId: try read.int("SLURM_JOB_ID"))
            let nodes = try read.optional("SLURM_JOB_NUM_NODES") ?? list.count
            let slurm = LaunchEnvironment(
                source: .slurm, rank: try read.int("SLURM_PROCID"), worldSize: ntasks, coordinatorHost: first,
                port: port, cpusPerTask: try read.optional("SLURM_CPUS_PER_TASK"), nodes: nodes,
                job: env["SLURM_JOB_ID"].map { "slurm-\($0).\(env["SLURM_RESTART_COUNT"] ?? "0")" })
            if let mpi, mpi.rank != slurm.rank || mpi.worldSize != slurm.worldSize {
                return LaunchEnvironment(
                    source: mpi.source, rank: mpi.rank, worldSize: mpi.worldSize, coordinatorHost: nil,
                    port: mpi.port, cpusPerTask: nil, nodes: mpi.nodes ?? nodes, job: mpi.job ?? slurm.job)
            }
            return slurm
        }
        if let mpi { return mpi }
        if env["RANK"] != nil || env["WORLD_SIZE"] != nil || env["MASTER_ADDR"] != nil {
            guard let host = env["MASTER_ADDR"], !host.isEmpty else {
                throw SwiftRainError(
                    "MASTER_ADDR", "not set",
                    hint: "set MASTER_ADDR to the coordinator's host (with RANK, WORLD_SIZE, MASTER_PORT)")
            }
            return LaunchEnvironment(
                source: .torchrun, rank: try read.int("RANK"), worldSize: try read.int("WORLD_SIZE"),
                coordinatorHost: host, port: try read.int("MASTER_PORT"), cpusPerTask: nil, nodes: nil, job: nil)
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
            found: "\(endpoint)" + (coordinatorHost.map { $0 == host ? "" : " (\($0) resolves to \(host))" } ?? ""),
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
