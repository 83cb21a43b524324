import Foundation
import RainLaunch
import XCTest

/// Roles and addresses from SLURM's, an MPI launcher's or torchrun's environment; loopback refused across nodes.
final class LaunchEnvironmentTests: XCTestCase {
    func testSlurmNodeListsExpandAsScontrolDoes() throws {
        XCTAssertEqual(try SlurmNodeList.expand("vm"), ["vm"])
        XCTAssertEqual(
            try SlurmNodeList.expand("node[01-03,07],login5"), ["node01", "node02", "node03", "node07", "login5"])
        XCTAssertEqual(try SlurmNodeList.expand("gpu[8-10]"), ["gpu8", "gpu9", "gpu10"])
        XCTAssertEqual(try SlurmNodeList.expand("r[1-2]n[1-2]"), ["r1n1", "r1n2", "r2n1", "r2n2"])
        XCTAssertTrue(errorText { _ = try SlurmNodeList.expand("node[3-1]") }.contains("bad range"))
        XCTAssertTrue(errorText { _ = try SlurmNodeList.expand("node[1-3") }.contains("unbalanced"))
    }

    func testSlurmEnvironmentGivesRolePortThreadsAndCoordinator() throws {
        let env = [
            "SLURM_JOB_ID": "123456", "SLURM_PROCID": "2", "SLURM_NTASKS": "5", "SLURM_JOB_NODELIST": "cn[07-08]",
            "SLURM_JOB_NUM_NODES": "2", "SLURM_CPUS_PER_TASK": "4", "RANK": "9", "MASTER_ADDR": "ignored",
        ]
        let l = try XCTUnwrap(try LaunchEnvironment.detect(env))
        XCTAssertEqual(l.source, .slurm)
        XCTAssertEqual(l.rank, 2)
        XCTAssertEqual(l.workers, 4)
        XCTAssertEqual(l.cpusPerTask, 4)
        XCTAssertEqual(l.nodes, 2)
        XCTAssertEqual(l.coordinatorHost, "cn07", "the first host of the node list")
        XCTAssertEqual(l.port, 20_000 + 123_456 % 40_000)
        XCTAssertEqual(l.connectEndpoint, "tcp://cn07:23456")
        XCTAssertEqual(l.listenEndpoint, "tcp://0.0.0.0:23456")
        var pinned = env
        pinned["SWIFTRAIN_PORT"] = "31000"
        XCTAssertEqual(try LaunchEnvironment.detect(pinned)?.port, 31000)
        var broken = env
        broken["SLURM_NTASKS"] = "many"
        XCTAssertTrue(
            errorText { _ = try LaunchEnvironment.detect(broken) }.contains("SLURM_NTASKS: not a non-negative integer"))
    }

    func testTorchrunEnvironmentOutsideSlurm() throws {
        XCTAssertNil(try LaunchEnvironment.detect(["HOME": "/root"]))
        let l = try XCTUnwrap(
            try LaunchEnvironment.detect([
                "RANK": "0", "WORLD_SIZE": "3", "MASTER_ADDR": "10.0.0.5", "MASTER_PORT": "29500",
            ]))
        XCTAssertEqual(l.source, .torchrun)
        XCTAssertEqual(l.workers, 2)
        XCTAssertEqual(l.connectEndpoint, "tcp://10.0.0.5:29500")
        XCTAssertNil(l.nodes)
        XCTAssertTrue(
            errorText { _ = try LaunchEnvironment.detect(["RANK": "1", "WORLD_SIZE": "3", "MASTER_ADDR": "h"]) }
                .contains("MASTER_PORT: not set"))
    }

    func testMultiNodeJobsRefuseLoopback() throws {
        let env = [
            "SLURM_JOB_ID": "7", "SLURM_PROCID": "1", "SLURM_NTASKS": "3", "SLURM_JOB_NODELIST": "localhost,cn2",
            "SLURM_JOB_NUM_NODES": "2",
        ]
        let l = try XCTUnwrap(try LaunchEnvironment.detect(env))
        let text = errorText { try l.checkReachable(l.connectEndpoint!, role: "--connect") }
        XCTAssertTrue(text.contains("a 2-node job would use a loopback address"), text)
        XCTAssertTrue(text.contains("/etc/hosts"), text)
        XCTAssertThrowsError(try l.checkReachable("tcp://127.0.0.1:5000", role: "--listen"))
        XCTAssertNoThrow(try l.checkReachable("tcp://0.0.0.0:5000", role: "--listen"))
        XCTAssertNoThrow(try l.checkReachable("tcp://10.1.2.3:5000", role: "--connect"))
        var single = env
        single["SLURM_JOB_NUM_NODES"] = "1"
        XCTAssertNoThrow(
            try LaunchEnvironment.detect(single)!.checkReachable("tcp://127.0.0.1:5000", role: "--connect"),
            "one node: loopback is fine")
    }

    /// The variables below are what `mpirun.openmpi` 4.1 and `mpiexec.mpich` 4.0 (Hydra) set, read off this
    /// machine with `env`.
    func testOpenMPIGivesRankSizeNodesAndJobButNoAddress() throws {
        let env = [
            "OMPI_COMM_WORLD_RANK": "2", "OMPI_COMM_WORLD_SIZE": "4", "OMPI_COMM_WORLD_LOCAL_SIZE": "2",
            "OMPI_MCA_orte_num_nodes": "2", "PMIX_RANK": "2", "PMIX_NAMESPACE": "800129025",
            "OMPI_MCA_ess_base_jobid": "800129025",
        ]
        let l = try XCTUnwrap(try LaunchEnvironment.detect(env))
        XCTAssertEqual(l.source, .openMPI)
        XCTAssertEqual(l.rank, 2)
        XCTAssertEqual(l.workers, 3)
        XCTAssertEqual(l.nodes, 2)
        XCTAssertEqual(l.job, "ompi-800129025")
        XCTAssertNil(l.connectEndpoint, "MPI names no coordinator address")
        XCTAssertEqual(l.listenEndpoint, "tcp://0.0.0.0:*", "rank 0 takes a port the kernel picks")
        var pinned = env
        pinned["SWIFTRAIN_PORT"] = "31000"
        XCTAssertEqual(try LaunchEnvironment.detect(pinned)?.listenEndpoint, "tcp://0.0.0.0:31000")
        var local = env
        local["OMPI_MCA_orte_num_nodes"] = nil
        local["OMPI_COMM_WORLD_LOCAL_SIZE"] = "4"
        XCTAssertEqual(try LaunchEnvironment.detect(local)?.nodes, 1, "all ranks local: one node")
        var broken = env
        broken["OMPI_COMM_WORLD_SIZE"] = nil
        XCTAssertTrue(errorText { _ = try LaunchEnvironment.detect(broken) }.contains("OMPI_COMM_WORLD_SIZE: not set"))
    }

    func testHydraPMIAndPMIx() throws {
        let hydra = [
            "PMI_RANK": "0", "PMI_SIZE": "3", "PMI_FD": "6", "MPI_LOCALNRANKS": "3", "MPI_LOCALRANKID": "0",
            "PBS_JOBID": "42.pbs01",
        ]
        let l = try XCTUnwrap(try LaunchEnvironment.detect(hydra))
        XCTAssertEqual(l.source, .pmi)
        XCTAssertEqual([l.rank, l.worldSize, l.nodes], [0, 3, 1])
        XCTAssertEqual(l.job, "pbs-42.pbs01", "no job id of MPICH's own: the scheduler's")
        var spread = hydra
        spread["MPI_LOCALNRANKS"] = "2"
        XCTAssertEqual(try LaunchEnvironment.detect(spread)?.nodes, 2)
        let pmix = try XCTUnwrap(
            try LaunchEnvironment.detect(["PMIX_RANK": "1", "PMIX_NAMESPACE": "prte-x", "PMIX_SIZE": "5"]))
        XCTAssertEqual(pmix.source, .pmix)
        XCTAssertEqual([pmix.rank, pmix.worldSize], [1, 5])
        XCTAssertEqual(pmix.job, "pmix-prte-x")
        let text = errorText { _ = try LaunchEnvironment.detect(["PMIX_RANK": "1"]) }
        XCTAssertTrue(text.contains("SWIFTRAIN_WORLD_SIZE"), text)
    }

    /// `srun --mpi=pmix` sets both and they agree: SLURM's (which knows the address). `mpirun` inside an
    /// allocation: every rank inherits the batch script's SLURM_PROCID, so the launcher's rank wins.
    func testMPIInsideASlurmAllocation() throws {
        let slurm = [
            "SLURM_JOB_ID": "77", "SLURM_PROCID": "1", "SLURM_NTASKS": "4", "SLURM_JOB_NODELIST": "cn[1-2]",
            "SLURM_JOB_NUM_NODES": "2",
        ]
        let srun = try XCTUnwrap(
            try LaunchEnvironment.detect(slurm.merging(["PMIX_RANK": "1", "PMIX_SIZE": "4"]) { $1 }))
        XCTAssertEqual(srun.source, .slurm)
        XCTAssertEqual(srun.connectEndpoint, "tcp://cn1:20077")
        var batch = slurm
        (batch["SLURM_PROCID"], batch["SLURM_NTASKS"]) = ("0", "1")
        let mpirun = try XCTUnwrap(
            try LaunchEnvironment.detect(
                batch.merging(["OMPI_COMM_WORLD_RANK": "3", "OMPI_COMM_WORLD_SIZE": "4"]) { $1 }))
        XCTAssertEqual(mpirun.source, .openMPI)
        XCTAssertEqual(mpirun.rank, 3)
        XCTAssertNil(mpirun.connectEndpoint)
        XCTAssertEqual(mpirun.nodes, 2, "the allocation's nodes, for the loopback check")
        XCTAssertEqual(mpirun.job, "slurm-77.0")
    }

    /// A worker takes a published address only from its own launch: the same job (when known) and written
    /// after the worker started, less a minute for clocks that differ between nodes.
    func testARendezvousFileBelongsToItsOwnLaunch() {
        let now = 1_800_000_000.0
        let r = Rendezvous(endpoint: "tcp://h1:5000", job: "ompi-7", written: now + 2, pid: 10, hostname: "h1")
        XCTAssertTrue(r.belongs(toJob: "ompi-7", startedAt: now))
        XCTAssertTrue(r.belongs(toJob: nil, startedAt: now))
        XCTAssertTrue(r.belongs(toJob: "ompi-7", startedAt: now + 30), "rank 0's clock a little behind")
        XCTAssertFalse(r.belongs(toJob: "ompi-8", startedAt: now), "another launch's")
        XCTAssertFalse(r.belongs(toJob: "ompi-7", startedAt: now + 3600), "left by a killed job an hour ago")
    }

    func testLaunchNeedsALauncherAndAWorker() throws {
        XCTAssertTrue(errorText { _ = try Launch.environment(["HOME": "/root"]) }.contains("mpirun -np N+1"))
        let one = errorText { _ = try Launch.environment(["PMI_RANK": "0", "PMI_SIZE": "1"]) }
        XCTAssertTrue(one.contains("at least 2 processes"), one)
    }
}
