import Foundation
import RainLaunch
import XCTest

/// Roles and addresses from SLURM's or torchrun's environment; loopback refused across nodes.
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
        let text = errorText { try l.checkReachable(l.connectEndpoint, role: "--connect") }
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
}
