import Foundation
import RainSupport

/// Integer variables of a launcher's environment, with errors that name the variable.
struct EnvironmentReader {
    var env: [String: String]

    func int(_ name: String) throws -> Int {
        guard let v = try optional(name) else {
            throw SwiftRainError(
                name, "not set",
                hint:
                    """
                    run under mpirun/mpiexec, inside `srun` (SLURM), or set RANK, WORLD_SIZE, MASTER_ADDR and \
                    MASTER_PORT, or pass --connect/--listen explicitly
                    """
            )
        }
        return v
    }

    func optional(_ name: String) throws -> Int? {
        guard let v = env[name] else { return nil }
        guard let i = Int(v.trimmingCharacters(in: .whitespaces)), i >= 0 else {
            throw SwiftRainError(name, "not a non-negative integer", found: v, hint: "check the job's environment")
        }
        return i
    }
}

extension LaunchEnvironment {
    /// The rank and size an MPI launcher gives every process it starts, without linking MPI: Open MPI's
    /// `OMPI_COMM_WORLD_*`, PMIx's `PMIX_RANK` (size from PMIX_SIZE or SWIFTRAIN_WORLD_SIZE), and
    /// the PMI-1/2 `PMI_RANK`/`PMI_SIZE` of MPICH's Hydra and Intel MPI. No address: rank 0 publishes its own.
    static func mpiEnvironment(_ read: EnvironmentReader) throws -> LaunchEnvironment? {
        let env = read.env
        let port = try read.optional("SWIFTRAIN_PORT")
        // The scheduler's job id names the launch when the launcher has none of its own (MPICH).
        let schedulerJob =
            [("PBS_JOBID", "pbs"), ("LSB_JOBID", "lsf"), ("JOB_ID", "sge")].lazy
            .compactMap { name, tag in env[name].map { "\(tag)-\($0)" } }.first
        if env["OMPI_COMM_WORLD_RANK"] != nil {
            let size = try read.int("OMPI_COMM_WORLD_SIZE")
            let local = try read.optional("OMPI_COMM_WORLD_LOCAL_SIZE")
            let nodes = try read.optional("OMPI_MCA_orte_num_nodes") ?? local.map { $0 < size ? 2 : 1 }
            return LaunchEnvironment(
                source: .openMPI, rank: try read.int("OMPI_COMM_WORLD_RANK"), worldSize: size, coordinatorHost: nil,
                port: port, cpusPerTask: nil, nodes: nodes,
                job: (env["PMIX_NAMESPACE"] ?? env["OMPI_MCA_ess_base_jobid"]).map { "ompi-\($0)" } ?? schedulerJob)
        }
        if env["PMIX_RANK"] != nil {
            guard let size = try read.optional("PMIX_SIZE") ?? read.optional("SWIFTRAIN_WORLD_SIZE") else {
                throw SwiftRainError(
                    "PMIX_RANK", "set, but nothing gives the job's size",
                    expected: "OMPI_COMM_WORLD_SIZE, PMIX_SIZE or SWIFTRAIN_WORLD_SIZE",
                    hint: "export SWIFTRAIN_WORLD_SIZE=<processes in the job> to every process")
            }
            return LaunchEnvironment(
                source: .pmix, rank: try read.int("PMIX_RANK"), worldSize: size, coordinatorHost: nil, port: port,
                cpusPerTask: nil, nodes: nil, job: env["PMIX_NAMESPACE"].map { "pmix-\($0)" } ?? schedulerJob)
        }
        if env["PMI_RANK"] != nil {
            let size = try read.int("PMI_SIZE")
            let local = try read.optional("MPI_LOCALNRANKS")
            return LaunchEnvironment(
                source: .pmi, rank: try read.int("PMI_RANK"), worldSize: size, coordinatorHost: nil, port: port,
                cpusPerTask: nil, nodes: local.map { $0 < size ? 2 : 1 }, job: schedulerJob)
        }
        return nil
    }
}
