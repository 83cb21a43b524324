import Foundation
import RainModel
import RainTraining
import XCTest

/// Workers killed, frozen or arriving late while a real coordinator trains.
final class FailureTests: XCTestCase {
    static let data = TrainingData.make("failure")
    override class func tearDown() { try? FileManager.default.removeItem(at: data) }
    var root: URL { Self.data }

    func children(of pid: Int32) throws -> [Int32] {
        try runProcess("/usr/bin/pgrep", ["-P", "\(pid)"]).out.split(separator: "\n").compactMap { Int32($0) }
    }

    func params(_ run: String) throws -> [Float] {
        let layout = ParameterLayout(try ModelShape(config: TrainingData.config(root)))
        return try Checkpoint.read(
            path: root.appendingPathComponent("\(run)/checkpoints/last.ckpt").path, layout: layout
        ).1.values
    }

    func trainArgs(_ run: String, steps: Int, workers: Int) -> [String] {
        [
            "train", "--config", root.appendingPathComponent("c.yaml").path, "--run",
            root.appendingPathComponent(run).path,
            "--workers", "\(workers)", "--max-steps", "\(steps)", "--worker-timeout", "2", "--step-timeout", "60",
            "--blas-threads", "1", "--progress-every", "0",
        ]
    }

    /// Starts a 2-worker run, hits one worker with `signal` once training is under way, and checks the
    /// run finishes with the parameters of an uninterrupted run.
    func survive(_ signal: Int32, run: String, extra: [String] = []) throws -> String {
        let steps = 60
        let clean = try runProcess(Binaries.swiftrain, trainArgs("\(run)-clean", steps: steps, workers: 2) + extra)
        XCTAssertEqual(clean.status, 0, clean.err)
        let c = try startProcess(Binaries.swiftrain, trainArgs(run, steps: steps, workers: 2) + extra)
        var victims: [Int32] = []
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline && !c.errors().contains("step 5/") { usleep(20_000) }
        victims = try children(of: c.process.processIdentifier)
        XCTAssertEqual(victims.count, 2, c.errors())
        kill(victims[0], signal)
        c.process.waitUntilExit()
        if signal == SIGSTOP { kill(victims[0], SIGKILL) }  // it still holds the output pipe
        c.drain()
        XCTAssertEqual(c.process.terminationStatus, 0, c.errors())
        let log = c.errors()
        XCTAssertTrue(log.contains("declared dead (silent for 2 s)"), log)
        // The ring round is abandoned (survivors released through their inboxes) and redone among them.
        XCTAssertTrue(log.contains("abandoned"), log)
        let a = try params("\(run)-clean"), b = try params(run)
        let worst = zip(a, b).map { abs($0 - $1) }.max()!
        // Same batches, another summation order.
        XCTAssertLessThan(worst, 1e-5, "max |Δparam| \(worst) after recovery")
        return log
    }

    func testKilledWorkerIsRecoveredAndTheResultIsUnchanged() throws { _ = try survive(SIGKILL, run: "killed") }

    func testFrozenWorkerIsRecoveredAndTheResultIsUnchanged() throws { _ = try survive(SIGSTOP, run: "frozen") }

    func testBelowMinWorkersCheckpointsAndExplainsHowToResume() throws {
        var args = trainArgs("minw", steps: 200, workers: 2)
        args += ["--min-workers", "2"]
        let c = try startProcess(Binaries.swiftrain, args)
        while !c.errors().contains("step 3/") && c.process.isRunning { usleep(20_000) }
        let kids = try children(of: c.process.processIdentifier)
        guard kids.count == 2 else {
            c.wait()
            return XCTFail("the coordinator ended before step 3:\n\(c.errors())")
        }
        kill(kids[1], SIGKILL)
        c.wait()
        XCTAssertEqual(c.process.terminationStatus, 1)
        XCTAssertTrue(
            c.errors().contains("fewer than --min-workers 2 live worker(s)")
                && c.errors().contains("swiftrain train --resume"), c.errors())
        XCTAssertGreaterThan(
            try Checkpoint.read(
                path: root.appendingPathComponent("minw/checkpoints/last.ckpt").path,
                layout: ParameterLayout(try ModelShape(config: TrainingData.config(root)))
            ).0.globalStep, 2)
    }

    /// A worker stuck in its compute while its heartbeats go on (fault hook): past the step deadline
    /// the ring is released, the members blocked in it answer, the silent one is evicted, and the step
    /// is redone by the other two; the result equals a clean run's up to summation order.
    func testAStuckButHeartbeatingWorkerIsEvicted() throws {
        let clean = try runProcess(Binaries.swiftrain, trainArgs("stuck-clean", steps: 8, workers: 3))
        XCTAssertEqual(clean.status, 0, clean.err)
        let r = try runProcess(
            Binaries.swiftrain, trainArgs("stuck", steps: 8, workers: 3) + ["--step-timeout", "3"],
            env: ["SWIFTRAIN_FAULT": "1:4:compute:stall"])
        XCTAssertEqual(r.status, 0, r.err)
        XCTAssertTrue(r.err.contains("SWIFTRAIN_FAULT: stall at step 4"), r.err)
        XCTAssertTrue(r.err.contains("worker 1 evicted: missed its step deadline while still heartbeating"), r.err)
        XCTAssertFalse(r.err.contains("declared dead"), "it was heartbeating: \(r.err)")
        let worst = zip(try params("stuck"), try params("stuck-clean")).map { abs($0 - $1) }.max()!
        XCTAssertLessThan(worst, 1e-5)
    }

    /// A coordinator killed outright (no chance to checkpoint) loses only what came after its last
    /// time-based checkpoint (on by default; 0.6 s here): the run resumes from it.
    func testTimeBasedCheckpointsSurviveAKilledCoordinator() throws {
        let run = root.appendingPathComponent("killed-coordinator")
        let c = try startProcess(
            Binaries.swiftrain,
            [
                "train", "--config", root.appendingPathComponent("c.yaml").path, "--run", run.path, "--workers", "2",
                "--set", "epochs=100", "--checkpoint-minutes", "0.01", "--blas-threads", "1", "--progress-every", "0",
            ])
        // Wait for the first time-based checkpoint (not a step count: steps take well under the
        // 0.6 s period on a fast machine), then a few steps more so the kill lands mid-run.
        let last = run.appendingPathComponent("checkpoints/last.ckpt").path
        let deadline = Date().addingTimeInterval(60)
        while !FileManager.default.fileExists(atPath: last) && c.process.isRunning && Date() < deadline {
            usleep(20_000)
        }
        let seen = c.errors().components(separatedBy: "step ").count
        while c.errors().components(separatedBy: "step ").count < seen + 3 && c.process.isRunning && Date() < deadline {
            usleep(20_000)
        }
        XCTAssertTrue(c.process.isRunning, c.errors())
        kill(c.process.processIdentifier, SIGKILL)
        c.wait()
        let layout = ParameterLayout(try ModelShape(config: TrainingData.config(root)))
        let saved = try Checkpoint.read(
            path: run.appendingPathComponent("checkpoints/last.ckpt").path, layout: layout
        ).0.globalStep
        XCTAssertGreaterThan(saved, 0, "the time-based checkpoint holds no step")
        let r = try runProcess(
            Binaries.swiftrain,
            ["train", "--resume", run.path, "--workers", "2", "--max-steps", "2", "--blas-threads", "1"])
        XCTAssertEqual(r.status, 0, r.err)
        XCTAssertTrue(r.err.contains("resuming at epoch"), r.err)
    }

    func testLateWorkerJoinsAtTheNextStep() throws {
        let endpoint = try freeLoopbackEndpoint()
        let run = root.appendingPathComponent("late")
        // Keys issued before the run (one more than it expects at first): the late worker has its own.
        let issued = try runProcess(Binaries.swiftrain, ["keys", "--run", run.path, "--workers", "2"])
        XCTAssertEqual(issued.status, 0, issued.err)
        XCTAssertEqual(
            issued.out, "\(TrainingTests.workerKeys(run, 0))  (new)\n\(TrainingTests.workerKeys(run, 1))  (new)\n")
        let c = try startListening(
            config: root.appendingPathComponent("c.yaml"), run: run, endpoint: endpoint, workers: 1,
            ["--max-steps", "40"])
        func worker(_ k: Int) throws -> Started { try startWorker(run, k, endpoint: endpoint) }
        let first = try worker(0)
        while !c.errors().contains("step 3/") && c.process.isRunning { usleep(20_000) }
        let second = try worker(1)
        c.wait()
        first.wait()
        second.wait()
        XCTAssertEqual(c.process.terminationStatus, 0, c.errors())
        XCTAssertTrue(c.errors().contains("worker 1 ready; 2 live"), c.errors())
        // It had no model state: the first worker wrote a checkpoint, the newcomer loaded it.
        XCTAssertTrue(c.errors().contains("worker(s) [1] joined: writing a checkpoint for them to load"), c.errors())
        XCTAssertEqual(second.process.terminationStatus, 0, second.errors())
        // One worker or two: the same global batches, so the same parameters up to summation order.
        let clean = try runProcess(Binaries.swiftrain, trainArgs("late-clean", steps: 40, workers: 1))
        XCTAssertEqual(clean.status, 0, clean.err)
        XCTAssertLessThan(zip(try params("late"), try params("late-clean")).map { abs($0 - $1) }.max()!, 1e-5)
    }

    /// `--max-workers 2`: a late second worker joins, a third is refused with the reason and exits
    /// non-zero; the second is killed and one restarted by hand takes its place; the run goes on
    /// (until SIGTERM stops it with a checkpoint).
    func testMaxWorkersRefusesTheExtraWorkerWithItsReason() throws {
        let endpoint = try freeLoopbackEndpoint()
        let run = root.appendingPathComponent("full")
        let c = try startProcess(
            Binaries.swiftrain,
            [
                "train", "--config", root.appendingPathComponent("c.yaml").path, "--run", run.path, "--listen",
                endpoint, "--expect-workers", "1", "--max-workers", "2", "--set", "epochs=1000", "--step-timeout", "60",
                "--worker-timeout", "2",
                "--progress-every", "0",
            ])
        func args(_ k: Int) -> [String] { ["--connect", endpoint, "--keys", TrainingTests.workerKeys(run, k)] }
        let first = try startProcess(Binaries.worker, args(0))
        while !c.errors().contains("step 3/") && c.process.isRunning { usleep(20_000) }
        let second = try startProcess(Binaries.worker, args(1))
        while !c.errors().contains("ready; 2 live") && c.process.isRunning { usleep(20_000) }
        // A third key gets past CURVE, not past --max-workers.
        XCTAssertEqual(try runProcess(Binaries.swiftrain, ["keys", "--run", run.path, "--workers", "3"]).status, 0)
        let third = try startProcess(Binaries.worker, args(2))
        third.wait()
        // The slot of a killed worker is free again: a worker restarted by hand (with its key) rejoins.
        kill(second.process.processIdentifier, SIGKILL)
        while !c.errors().contains("declared dead") && c.process.isRunning { usleep(20_000) }
        let restarted = try startProcess(Binaries.worker, args(1))
        while c.errors().components(separatedBy: "ready; 2 live").count < 3 && c.process.isRunning {
            usleep(20_000)
        }
        let seen = c.errors().components(separatedBy: "step ").count
        while c.errors().components(separatedBy: "step ").count < seen + 3 && c.process.isRunning { usleep(20_000) }
        kill(c.process.processIdentifier, SIGTERM)  // training would go on: checkpoint and stop
        c.wait()
        first.wait()
        second.wait()
        restarted.wait()
        XCTAssertEqual(c.process.terminationStatus, 0, c.errors())
        XCTAssertEqual(restarted.process.terminationStatus, 0, restarted.errors())
        XCTAssertTrue(c.errors().contains("worker 2 ready; 2 live"), c.errors())  // the refused one got no rank
        XCTAssertEqual(third.process.terminationStatus, 1, third.errors())
        XCTAssertTrue(
            third.errors().contains("refused this worker: the run is full: it takes at most 2 worker(s)"),
            third.errors())
        XCTAssertTrue(c.errors().contains("2 worker(s) already (--max-workers)"), c.errors())
        XCTAssertFalse(c.errors().contains("3 live"), c.errors())
        XCTAssertEqual(first.process.terminationStatus, 0, first.errors())
    }

    /// A worker frozen inside the allreduce is declared dead and the run goes on; when it thaws (a
    /// partition healed, SIGCONT) it is released from its stale ring round and told to leave, so it
    /// exits instead of idling (a SLURM step would otherwise wait for it).
    func testAWorkerLeftOutIsToldToLeaveWhenItComesBack() throws {
        let endpoint = try freeLoopbackEndpoint()
        let run = root.appendingPathComponent("left-out")
        let c = try startProcess(
            Binaries.swiftrain,
            [
                "train", "--config", root.appendingPathComponent("c.yaml").path, "--run", run.path, "--listen",
                endpoint, "--expect-workers", "3", "--set", "epochs=1000", "--step-timeout", "60",
                "--worker-timeout", "2", "--progress-every", "0",
            ])
        func args(_ k: Int) -> [String] {
            ["--connect", endpoint, "--keys", TrainingTests.workerKeys(run, k), "--threads", "1"]
        }
        let first = try startProcess(Binaries.worker, args(0))
        while !c.errors().contains("worker 0 connected") && c.process.isRunning { usleep(20_000) }
        let second = try startProcess(Binaries.worker, args(1), env: ["SWIFTRAIN_FAULT": "1:4:allreduce:stop"])
        while !c.errors().contains("worker 1 connected") && c.process.isRunning { usleep(20_000) }
        // Three, so the frozen middle member's round needs pieces that the others never send.
        let third = try startProcess(Binaries.worker, args(2))
        let deadline = Date().addingTimeInterval(60)
        while !c.errors().contains("worker 1 declared dead") && c.process.isRunning && Date() < deadline {
            usleep(20_000)
        }
        kill(second.process.processIdentifier, SIGCONT)
        while second.process.isRunning && Date() < deadline { usleep(20_000) }
        let stillThere = second.process.isRunning
        if stillThere { kill(second.process.processIdentifier, SIGKILL) }
        second.wait()
        kill(c.process.processIdentifier, SIGTERM)
        c.wait()
        first.wait()
        third.wait()
        XCTAssertFalse(stillThere, "the thawed worker idled on: \(second.errors())")
        XCTAssertTrue(second.errors().contains("SWIFTRAIN_FAULT: stop at step 4, allreduce"), second.errors())
        XCTAssertTrue(second.errors().contains("this worker was left out of the run"), second.errors())
        XCTAssertEqual(second.process.terminationStatus, 0, second.errors())
        XCTAssertTrue(c.errors().contains("worker 1 is back after it was left out; told to leave"), c.errors())
        XCTAssertEqual(c.process.terminationStatus, 0, c.errors())
        for w in [first, third] { XCTAssertEqual(w.process.terminationStatus, 0, w.errors()) }
    }

    /// A coordinator killed mid-run: the workers notice its heartbeats stop and, with --rejoin-timeout
    /// 0, exit with an error (a batch job ends instead of idling to its time limit). SIGUSR1 at the
    /// coordinator while it waits in a receive first checkpoints cleanly (signals never fail a blocking call).
    func testWorkersLeaveWhenTheCoordinatorDiesAndSignalsDoNotBreakReceives() throws {
        let endpoint = try freeLoopbackEndpoint()
        let run = root.appendingPathComponent("orphans")
        let args = [
            "train", "--config", root.appendingPathComponent("c.yaml").path, "--run", run.path, "--listen", endpoint,
            "--expect-workers", "2", "--step-timeout", "60", "--progress-every", "0",
        ]
        var c = try startProcess(Binaries.swiftrain, args)
        var workers = try (0..<2).map {
            try startProcess(
                Binaries.worker,
                ["--connect", endpoint, "--coordinator-timeout", "3", "--keys", TrainingTests.workerKeys(run, $0)])
        }
        while !c.errors().contains("step 3/") && c.process.isRunning { usleep(20_000) }
        for _ in 0..<5 {
            kill(c.process.processIdentifier, SIGUSR1)
            usleep(3_000)
        }  // likely inside a receive
        c.wait()
        XCTAssertEqual(c.process.terminationStatus, 0, c.errors())
        XCTAssertTrue(c.errors().contains("checkpoint written"), c.errors())
        for w in workers {
            w.wait()
            XCTAssertEqual(w.process.terminationStatus, 0, w.errors())
        }

        c = try startProcess(Binaries.swiftrain, ["train", "--resume", run.path] + args.dropFirst(5))
        workers = try (0..<2).map {  // told not to wait for a restarted coordinator (RejoinTests)
            try startProcess(
                Binaries.worker,
                [
                    "--connect", endpoint, "--coordinator-timeout", "3", "--rejoin-timeout", "0", "--keys",
                    TrainingTests.workerKeys(run, $0),
                ])
        }
        // two steps after resuming
        while c.errors().components(separatedBy: " loss ").count < 3 && c.process.isRunning { usleep(20_000) }
        kill(c.process.processIdentifier, SIGKILL)
        // Each worker exits by itself, and says why: its heartbeats went unanswered (no clock is asserted).
        for w in workers {
            w.wait()
            XCTAssertEqual(w.process.terminationStatus, 1)
            XCTAssertTrue(w.errors().contains("the coordinator has not answered heartbeats for 3 s"), w.errors())
        }
    }
}
