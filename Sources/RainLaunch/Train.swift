import Foundation
import RainConfig
import RainModel
import RainProtocol
import RainSupport
import RainTraining
import RainZMQ

/// `swiftrain train`: a coordinator plus N local worker processes, or a coordinator listening for
/// workers started elsewhere (by hand, by srun, by torchrun-style variables).
public enum Train {
    /// Where the workers come from, resolved from the flags first, then SLURM's or torchrun's environment.
    public struct Plan: Equatable {
        /// nil: spawn `workers` local processes on loopback.
        public var listen: String?
        public var workers: Int
        public var blasThreadsPerWorker: Int
        public var local: Bool { listen == nil }
    }

    /// The plan for `options` in `environment` (flags win; `--workers N` without `--listen` stays local
    /// even inside an allocation).
    public static func plan(
        _ options: TrainingOptions, environment: [String: String] = ProcessInfo.processInfo.environment,
        log: (String) -> Void = { _ in }
    ) throws -> Plan {
        let cores = max(1, ProcessInfo.processInfo.activeProcessorCount)
        let launch = options.listen == nil && options.workers != nil ? nil : try LaunchEnvironment.detect(environment)
        var listen: String? = nil, workers = options.workers ?? cores
        if let l = options.listen {
            listen = l
            workers = options.expectWorkers ?? launch?.workers ?? 1
        } else if options.workers == nil, let launch {
            guard launch.rank == 0 else {
                throw SwiftRainError(
                    "\(launch.source.rawValue) rank \(launch.rank)", "this task is a worker, not the coordinator",
                    hint:
                        """
                        start every task with `swiftrain launch` (rank 0 coordinates), or task 0 with \
                        `swiftrain train` and the others with `swiftrain-worker`
                        """
                )
            }
            guard launch.workers >= 1 else {
                throw SwiftRainError(
                    "\(launch.source.rawValue) tasks", "no worker tasks",
                    expected: "at least 2 tasks (1 coordinator + workers)",
                    found: "\(launch.worldSize)", hint: "ask for more tasks (sbatch --ntasks)")
            }
            listen = launch.listenEndpoint
            workers = options.expectWorkers ?? launch.workers
            log(
                """
                \(launch.source.rawValue): coordinator of \(launch.workers) worker(s) on \
                \(launch.listenEndpoint); workers connect to \(launch.connectEndpoint ?? "the address rank 0 publishes")
                """
            )
        }
        if let launch, let listen { try launch.checkReachable(listen, role: "--listen") }
        workers = max(1, workers)
        if let most = options.maxWorkers, most < workers {
            throw SwiftRainError(
                "--max-workers", "below the workers expected at the start", expected: "at least \(workers)",
                found: "\(most)", hint: "raise --max-workers or lower --workers/--expect-workers")
        }
        let threads = options.blasThreads ?? (listen == nil ? max(1, cores / workers) : 0)
        return Plan(listen: listen, workers: workers, blasThreadsPerWorker: threads)
    }

    public static func run(
        config: Config, runPath: String, resume: Bool, options: TrainingOptions, workerBinary: String? = nil,
        epochImages: ((String) throws -> (png: [UInt8], width: Int, height: Int))? = nil,
        listening: ((String) throws -> Void)? = nil, log: @escaping (String) -> Void
    ) throws -> TrainingCoordinator.Summary {
        let plan = try plan(options, log: log)
        // Local workers run on this CPU: say at once if it cannot run the precision (remote ones say it themselves).
        if plan.local { try ConvLSTMForecaster.check(precision: config.precision, algorithm: .standard) }
        let run = try RunDirectory(path: runPath)
        let context = try ZMQContext()
        // Local: Unix sockets in a directory only this user can enter (no TCP listener at all).
        let sockets = plan.local ? try LocalSockets.directory(for: run.url) : nil
        defer { if let s = sockets, s.temporary { try? FileManager.default.removeItem(atPath: s.path) } }
        let address = plan.listen ?? "ipc://\(sockets!.path)/control"
        var keys: RunKeys? = nil
        var keyring: WorkerKeyring? = nil  // admits the workers' keys, and names them in the log
        var zap: ZAPHandler? = nil
        defer { zap?.stop() }
        // Every TCP listener, loopback included: any user of this machine can reach 127.0.0.1, and only
        // the run's own Unix sockets (0700) keep others out by themselves.
        if options.curve || address.hasPrefix("tcp://") {
            let k = try RunKeys.load(dir: run.url.appendingPathComponent("keys").path, create: true)
            let made = try k.issue(workers: max(plan.workers, options.maxWorkers ?? 0))
            keyring = WorkerKeyring(k)
            zap = try ZAPHandler(context: context, admit: keyring!.name(of:), log: log)
            keys = k
            log(
                """
                CURVE on: one key per worker in \(k.workersDir.path)/wK\(made.isEmpty ? "" : " (\(made.count) new)"): \
                copy wK alone to the host of worker K and start it with --keys DIR (keys/ itself, with the \
                coordinator's secret, stays here); `swiftrain keys --run RUN --workers N` issues more
                """
            )
        }
        let server = try ZMQServer(context: context, bind: address, curveSecretKey: keys?.serverSecret)
        let coordinator = TrainingCoordinator(
            config: config, run: run, transport: server, options: options, expectedWorkers: plan.workers,
            blasThreadsPerWorker: plan.blasThreadsPerWorker,
            ringAbandoner: ZMQRingAbandoner(context: context, keys: keys), log: log)
        if let keyring { coordinator.keyName = keyring.name(of:) }
        coordinator.epochImages = epochImages
        // SIGTERM (a time limit, PBS), SIGUSR1 (SLURM, LSF, Grid Engine s_rt) or SIGUSR2 (Grid Engine -notify):
        // checkpoint after the current step, then exit.
        let stop = StopSignal()
        stop.install(signals: [SIGTERM, SIGUSR1, SIGUSR2], log: log)
        coordinator.stopRequested = { stop.isSet }
        log("run \(run.url.path); coordinator at \(server.endpoint)")
        try listening?(server.endpoint)  // `swiftrain launch` publishes the address here

        var children: [Process] = []
        defer {
            // Workers were told to shut down: give them a moment to log their last lines and exit on
            // their own (a dead-worker's slot is already gone), then stop any straggler.
            let clock = MonotonicClock(), deadline = clock.now + 5  // deadlines never follow the wall clock
            while children.contains(where: \.isRunning) && clock.now < deadline { usleep(20_000) }
            for c in children where c.isRunning { c.terminate() }
        }
        if plan.local {
            let binary = workerBinary ?? ThisProcess.sibling("swiftrain-worker")
            guard FileManager.default.isExecutableFile(atPath: binary) else {
                throw SwiftRainError(
                    binary, "swiftrain-worker not found",
                    hint: "build both products (swift build -c release) and run swiftrain from the build directory")
            }
            for r in 0..<plan.workers {
                let p = Process()
                p.executableURL = URL(fileURLWithPath: binary)
                p.arguments =
                    ["--connect", server.endpoint, "--rank", "\(r)", "--exit-with-parent"]
                    + (keys.map { ["--keys", $0.workersDir.appendingPathComponent(RunKeys.name(r)).path] } ?? [])
                var env = ProcessInfo.processInfo.environment
                env["OPENBLAS_NUM_THREADS"] = "\(plan.blasThreadsPerWorker)"
                p.environment = env
                try p.run()  // posix_spawn: exec, never fork
                children.append(p)
            }
        } else {
            log(
                """
                waiting for \(plan.workers) worker(s): swiftrain-worker --connect \
                \(server.endpoint.replacingOccurrences(of: "0.0.0.0", with: ProcessInfo.processInfo.hostName))
                """
            )
        }
        return try coordinator.train(resume: resume)
    }
}

extension Train {
    /// `swiftrain keys`: makes sure the run has worker keys w0 … w(workers−1) (and its coordinator's
    /// keypair), before or during the run; a running coordinator admits new ones within a second.
    /// Returns every worker key directory and whether it is new.
    public static func issueKeys(runPath: String, workers: Int) throws -> [(path: String, new: Bool)] {
        guard workers >= 1 else {
            throw SwiftRainError("--workers", "must be at least 1", found: "\(workers)", hint: "pass a worker count")
        }
        let keys = try RunKeys.load(
            dir: URL(fileURLWithPath: runPath).appendingPathComponent("keys").path, create: true)
        let made = Set(try keys.issue(workers: workers))
        return (0..<workers).map {
            (keys.workersDir.appendingPathComponent(RunKeys.name($0)).path, made.contains(RunKeys.name($0)))
        }
    }
}
