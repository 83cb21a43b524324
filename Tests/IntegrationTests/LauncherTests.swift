import Foundation
import RainLaunch
import RainModel
import RainProtocol
import RainTraining
import XCTest

/// `swiftrain launch` under Debian's real MPI launchers (openmpi-bin's `mpirun`, mpich's `mpiexec`, installed by
/// `make deps`): every rank runs the same command, rank 0 coordinates and publishes its address in the run
/// directory, the others are CURVE-keyed workers. Held to `swiftrain train --workers 3` on the same data.
final class LauncherTests: XCTestCase {
    static let root = TrainingData.make("launch")
    override class func tearDown() { try? FileManager.default.removeItem(at: root) }

    /// The launchers: Open MPI as root needs --allow-run-as-root, and 4 ranks on 2 cores --oversubscribe. Each is
    /// preempted as a scheduler does it: Open MPI as PBS or a deletion does, SIGTERM to every process of the job's
    /// session (Open MPI puts each rank in a process group of its own, and SIGKILLs the ranks
    /// `odls_base_sigkill_timeout` after its own SIGTERM: cluster/mpi-job.sh says 30, here 10); MPICH with SIGUSR1
    /// to the launcher, which forwards it.
    static let launchers: [(name: String, argv: [String], preempt: Int32)] = [
        (
            "Open MPI",
            [
                "/usr/bin/mpirun.openmpi", "--allow-run-as-root", "--oversubscribe", "--bind-to", "none", "--mca",
                "odls_base_sigkill_timeout", "10", "-np", "4",
            ], SIGTERM
        ),
        ("MPICH/Hydra PMI", ["/usr/bin/mpiexec.mpich", "-n", "4"], SIGUSR1),
    ]

    func launchArgs(_ launcher: [String], run: String, _ extra: [String]) -> (String, [String]) {
        let args =
            Array(launcher.dropFirst()) + [
                Binaries.swiftrain, "launch", "--config", Self.root.appendingPathComponent("c.yaml").path,
                "--run", Self.root.appendingPathComponent(run).path, "--blas-threads", "1", "--step-timeout", "60",
                "--progress-every", "0",
            ] + extra
        return (launcher[0], args)
    }

    func launch(
        _ launcher: [String], run: String, _ extra: [String], file: StaticString = #filePath, line: UInt = #line
    )
        throws -> String
    {
        XCTAssertTrue(
            FileManager.default.isExecutableFile(atPath: launcher[0]),
            "\(launcher[0]) missing: `make deps` installs openmpi-bin and mpich", file: file, line: line)
        let (path, args) = launchArgs(launcher, run: run, extra)
        let r = try runProcess(path, args, timeout: 240)
        XCTAssertEqual(r.status, 0, r.out + r.err, file: file, line: line)
        return r.err
    }

    func parameters(_ run: String) throws -> (TrainingState, [Float], [Float], [Float]) {
        let layout = ParameterLayout(try ModelShape(config: TrainingData.config(Self.root)))
        let (s, p, m, v) = try Checkpoint.read(
            path: Self.root.appendingPathComponent("\(run)/checkpoints/last.ckpt").path, layout: layout)
        return (s, p.values, m.values, v.values)
    }

    /// `mpirun -np 4` and `mpiexec -n 4` each train 3 workers to the parameters of `train --workers 3`.
    func testMPILaunchersTrainAsTrainWithThreeWorkers() throws {
        let t = try runProcess(
            Binaries.swiftrain,
            [
                "train", "--config", Self.root.appendingPathComponent("c.yaml").path, "--run",
                Self.root.appendingPathComponent("local3").path, "--workers", "3", "--max-steps", "6",
                "--blas-threads", "1", "--step-timeout", "60",
            ])
        XCTAssertEqual(t.status, 0, t.err)
        let want = try parameters("local3")
        XCTAssertEqual(want.0.globalStep, 6)
        for (i, l) in Self.launchers.enumerated() {
            let log = try launch(l.argv, run: "mpi\(i)", ["--max-steps", "6"])
            XCTAssertTrue(log.contains("\(l.name): rank 0 of 4, new run"), log)
            XCTAssertTrue(log.contains("CURVE on"), log)
            XCTAssertTrue(log.contains("coordinator.json"), "the address went through the run directory: \(log)")
            // Each worker rank took its own key: w0, w1, w2 (rank − 1).
            for k in 0..<3 { XCTAssertTrue(log.contains("key w\(k))"), "\(l.name): key w\(k) not used\n\(log)") }
            XCTAssertFalse(
                FileManager.default.fileExists(
                    atPath: Self.root.appendingPathComponent("mpi\(i)/coordinator.json").path),
                "rank 0 withdraws its address when it exits")
            let got = try parameters("mpi\(i)")
            XCTAssertEqual(got.0.globalStep, 6)
            let worst = zip(got.1, want.1).map { abs($0 - $1) }.max()!
            XCTAssertLessThan(worst, 1e-5, "\(l.name): max |Δparam| \(worst) against train --workers 3")
        }
    }

    /// Preempted (a signal to the launcher, which forwards it to every rank), then submitted again with the same
    /// command line over a stale address file: the second job resumes and ends bit for bit where an
    /// uninterrupted one does; a third submission finds the run finished and exits 0 at once.
    func testAPreemptedLaunchResumesBitForBit() throws {
        for (i, l) in Self.launchers.enumerated() {
            _ = try launch(l.argv, run: "straight\(i)", [])
            let straight = try parameters("straight\(i)")
            let run = Self.root.appendingPathComponent("preempted\(i)")
            let (path, args) = launchArgs(l.argv, run: "preempted\(i)", [])
            // A session of its own, as a batch job has: setsid forks the launcher as the session's leader and waits.
            let job = try startProcess("/usr/bin/setsid", ["--wait", path] + args)
            var launcher = ""
            while launcher.isEmpty && job.process.isRunning {
                launcher = try runProcess("/usr/bin/pgrep", ["-P", "\(job.process.processIdentifier)"]).out
                    .trimmingCharacters(in: .whitespacesAndNewlines)
            }
            let metrics = run.appendingPathComponent("metrics.jsonl").path
            let deadline = Date().addingTimeInterval(120)
            while Date() < deadline && job.process.isRunning {
                let steps =
                    ((try? String(contentsOfFile: metrics, encoding: .utf8)) ?? "")
                    .components(separatedBy: "\"kind\":\"step\"").count - 1
                if steps >= 10 { break }
                usleep(20_000)
            }
            if l.preempt == SIGTERM {
                _ = try runProcess("/usr/bin/pkill", ["-TERM", "-s", launcher])
            } else {
                _ = try runProcess("/bin/kill", ["-USR1", launcher])
            }
            job.wait()
            // Open MPI reports a SIGTERM'd job as aborted (status 1) even when every rank exits 0.
            if l.preempt == SIGUSR1 { XCTAssertEqual(job.process.terminationStatus, 0, job.errors()) }
            XCTAssertTrue(job.errors().contains("signal \(l.preempt): checkpointing after this step"), job.errors())
            XCTAssertTrue(job.errors().contains("stopped at epoch"), "the checkpoint was written: \(job.errors())")
            let stopped = try parameters("preempted\(i)").0.globalStep
            XCTAssertFalse(FileManager.default.fileExists(atPath: run.appendingPathComponent("finished.json").path))
            XCTAssertLessThan(stopped, straight.0.globalStep, "\(l.name): preempted before the end")
            // A coordinator killed outright leaves its address behind: the next job must not follow it.
            let stale = Rendezvous(
                endpoint: "tcp://127.0.0.1:9", job: nil, written: Date().timeIntervalSince1970 - 3600, pid: 1,
                hostname: "gone")
            try JSONEncoder().encode(stale).write(to: run.appendingPathComponent("coordinator.json"))
            let log = try launch(l.argv, run: "preempted\(i)", [])
            XCTAssertTrue(log.contains("\(l.name): rank 0 of 4, resuming"), log)
            XCTAssertTrue(log.contains("resuming at epoch 0, step \(stopped)"), log)
            let resumed = try parameters("preempted\(i)")
            XCTAssertEqual(resumed.0.globalStep, straight.0.globalStep)
            XCTAssertTrue(resumed.1 == straight.1, "\(l.name): parameters differ after the resumed job")
            XCTAssertTrue(resumed.2 == straight.2 && resumed.3 == straight.3, "\(l.name): Adam moments differ")
            let again = try launch(l.argv, run: "preempted\(i)", [])
            XCTAssertEqual(again.components(separatedBy: "has finished training").count - 1, 4, again)
        }
    }

    /// `--coordinator HOST:PORT` on every rank: rank 0 listens on PORT, the workers connect there, no file.
    func testAnAddressGivenToEveryRankNeedsNoFile() throws {
        let port = Endpoint.port(try freeLoopbackEndpoint())!
        let log = try launch(
            ["/usr/bin/mpiexec.mpich", "-n", "3"], run: "given",
            ["--coordinator", "127.0.0.1:\(port)", "--max-steps", "3"])
        XCTAssertTrue(log.contains("coordinator at tcp://0.0.0.0:\(port)"), log)
        XCTAssertFalse(log.contains("coordinator.json"), "no address published: \(log)")
        XCTAssertTrue(log.contains("2 live"), log)
        XCTAssertEqual(try parameters("given").0.globalStep, 3)
    }

    /// A worker rank whose rank 0 never shows up says where it looked and what to do, after --wait-timeout;
    /// an address an earlier launch left behind is named, not followed.
    func testAWorkerRankWithoutRankZeroSaysWhatToDo() throws {
        let run = Self.root.appendingPathComponent("alone")
        try FileManager.default.createDirectory(at: run, withIntermediateDirectories: true)
        let args = ["launch", "--config", Self.root.appendingPathComponent("c.yaml").path, "--run", run.path]
        let env = ["PMI_RANK": "1", "PMI_SIZE": "2"]
        let none = try runProcess(Binaries.swiftrain, args + ["--wait-timeout", "1"], env: env)
        XCTAssertEqual(none.status, 1, none.err)
        XCTAssertTrue(
            none.err.contains("\(run.path)/coordinator.json: rank 0 published no coordinator address"), none.err)
        XCTAssertTrue(none.err.contains("--coordinator HOST:PORT"), none.err)
        let stale = Rendezvous(
            endpoint: "tcp://127.0.0.1:9", job: nil, written: Date().timeIntervalSince1970 - 7200, pid: 1,
            hostname: "gone")
        try JSONEncoder().encode(stale).write(to: run.appendingPathComponent("coordinator.json"))
        let old = try runProcess(Binaries.swiftrain, args + ["--wait-timeout", "1"], env: env)
        XCTAssertEqual(old.status, 1, old.err)
        XCTAssertTrue(old.err.contains("is from an earlier launch"), old.err)
        XCTAssertTrue(old.err.contains("only an earlier launch's: tcp://127.0.0.1:9 of pid 1 on gone"), old.err)
        let bad = try runProcess(Binaries.swiftrain, args + ["--coordinator", "node1"], env: env)
        XCTAssertTrue(bad.err.contains("--coordinator: not HOST:PORT"), bad.err)
    }
}
