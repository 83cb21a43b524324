import Foundation
import RainModel
import RainTraining
import XCTest

/// `mpirun` of Open MPI across two "hosts" (network namespaces from ../shared/tools/netns-hosts.sh, each with its
/// own address and host name): its `plm_rsh_agent` is a script that runs the daemon's command inside the named
/// host's namespace instead of over ssh, as a cluster's ssh would on another node. 2 hosts × 2 ranks: rank 0
/// coordinates on h1 and publishes h1's address; workers on h1 and h2 connect over TCP with CURVE.
///
/// Needs root (namespaces); `make test-hosts` runs it, `make test` does not.
final class MPIHostsTests: XCTestCase {
    static let root = TrainingData.make("mpi-hosts")
    override class func tearDown() { try? FileManager.default.removeItem(at: root) }
    let tool = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../../shared/tools/netns-hosts.sh").standardized.path

    func hosts(_ args: [String]) throws {
        let r = try runProcess("/bin/bash", [tool] + args)
        XCTAssertEqual(r.status, 0, r.err)
    }

    func parameters(_ run: String) throws -> (TrainingState, [Float]) {
        let layout = ParameterLayout(try ModelShape(config: TrainingData.config(Self.root)))
        let (s, p, _, _) = try Checkpoint.read(
            path: Self.root.appendingPathComponent("\(run)/checkpoints/last.ckpt").path, layout: layout)
        return (s, p.values)
    }

    func testOpenMPIOnTwoHostsTrainsAsThreeLocalWorkers() throws {
        guard getuid() == 0 else { return XCTFail("network namespaces need root: run `make test-hosts` as root") }
        try hosts(["up", "2"])
        defer { try? hosts(["down"]) }
        let config = Self.root.appendingPathComponent("c.yaml").path
        let local = try runProcess(
            Binaries.swiftrain,
            [
                "train", "--config", config, "--run", Self.root.appendingPathComponent("local3").path, "--workers",
                "3", "--max-steps", "6", "--blas-threads", "1", "--step-timeout", "60",
            ])
        XCTAssertEqual(local.status, 0, local.err)

        // What ssh would do on a cluster: run Open MPI's daemon command line on host $1.
        let agent = Self.root.appendingPathComponent("netns-agent.sh")
        try "#!/bin/sh\nh=$1; shift\nexec bash \(tool) run \"$h\" sh -c \"$*\"\n".write(
            to: agent, atomically: true, encoding: .utf8)
        chmod(agent.path, 0o755)
        let run = Self.root.appendingPathComponent("two-hosts")
        let r = try runProcess(
            "/usr/bin/mpirun.openmpi",
            [
                "--allow-run-as-root", "--oversubscribe", "--bind-to", "none", "--mca", "plm_rsh_agent", agent.path,
                "--mca", "oob_tcp_if_include", "10.202.0.0/24", "--host", "h1:2,h2:2", "-np", "4",
                Binaries.swiftrain, "launch", "--config", config, "--run", run.path, "--max-steps", "6",
                "--blas-threads", "1", "--step-timeout", "60", "--progress-every", "0",
            ], timeout: 240)
        XCTAssertEqual(r.status, 0, r.out + r.err)
        let log = r.err
        XCTAssertTrue(log.contains("Open MPI: rank 0 of 4; workers find tcp://h1:"), log)
        XCTAssertTrue(log.contains("CURVE on"), log)
        let from = log.split(separator: "\n").filter { $0.contains(" connected from ") }
        XCTAssertEqual(from.filter { $0.contains("connected from h1 ") }.count, 1, "rank 1 on h1: \(from)")
        XCTAssertEqual(from.filter { $0.contains("connected from h2 ") }.count, 2, "ranks 2 and 3 on h2: \(from)")
        let (state, got) = try parameters("two-hosts"), want = try parameters("local3").1
        XCTAssertEqual(state.globalStep, 6)
        let worst = zip(got, want).map { abs($0 - $1) }.max()!
        XCTAssertLessThan(worst, 1e-5, "max |Δparam| \(worst) against train --workers 3 on one host")
    }
}
