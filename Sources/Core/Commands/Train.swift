import Foundation

/// `swiftrain train`: a coordinator plus N local worker processes, or a coordinator listening for
/// workers started elsewhere.
public enum Train {
    public struct Options {
        public var config: Config
        public var runPath: String
        public var resume: Bool = false
        public var workers: Int = max(1, ProcessInfo.processInfo.activeProcessorCount)
        /// `tcp://ADDR:PORT` to wait for remote workers instead of spawning local ones.
        public var listen: String? = nil
        public var blasThreads: Int? = nil
        public var checkpointEvery = 0
        public var maxSteps = 0
        public var stepTimeoutMs = 600_000
        public var workerTimeoutMs = 10_000
        public var minWorkers = 1
        public var progressEverySeconds = 30.0
        /// CURVE on even on loopback (it is always on when listening beyond loopback).
        public var curve = false
        /// `ring` (among workers) or `star` (through the coordinator).
        public var ring = false
        /// `--sharding locality`: contiguous blocks of sample times per worker.
        public var locality = false
        public var workerBinary: String? = nil
        public init(config: Config, runPath: String) { self.config = config; self.runPath = runPath }
    }

    public static func run(_ o: Options, log: @escaping (String) -> Void) throws -> TrainingCoordinator.Summary {
        let run = try RunDirectory(path: o.runPath)
        let context = try ZMQContext()
        let cores = max(1, ProcessInfo.processInfo.activeProcessorCount)
        let local = o.listen == nil
        let n = max(1, o.workers)
        let address = o.listen ?? "tcp://127.0.0.1:*"
        let loopback = address.hasPrefix("tcp://127.") || address.hasPrefix("tcp://localhost:") || address.hasPrefix("tcp://[::1]") || address.hasPrefix("ipc://")
        var keys: CurveKeys? = nil
        var zap: ZAPHandler? = nil
        defer { zap?.stop() }
        if o.curve || !loopback {
            let k = try CurveKeys.load(dir: run.url.appendingPathComponent("keys").path, create: true)
            zap = try ZAPHandler(context: context, allowedPublicKey: k.workerPublic, log: log)
            keys = k
            log("CURVE on: workers need --keys \(run.url.appendingPathComponent("keys").path) (copy it to the worker hosts)")
        }
        let server = try ZMQServer(context: context, bind: address, maxMessageBytes: Int64(64 << 20) + 4 * 16_000_000, curveSecretKey: keys?.serverSecret)
        var opts = TrainingCoordinator.Options(workers: n)
        opts.blasThreadsPerWorker = o.blasThreads ?? (local ? max(1, cores / n) : 0)
        opts.checkpointEvery = o.checkpointEvery
        opts.maxSteps = o.maxSteps
        opts.stepTimeoutMs = o.stepTimeoutMs
        opts.workerTimeoutMs = o.workerTimeoutMs
        opts.minWorkers = o.minWorkers
        opts.progressEverySeconds = o.progressEverySeconds
        opts.ring = o.ring
        opts.locality = o.locality
        opts.ringContext = context
        opts.curve = keys
        let coordinator = TrainingCoordinator(config: o.config, run: run, transport: server, options: opts, log: log)
        // SIGTERM (e.g. SLURM's time limit) or SIGUSR1: checkpoint after the current step, then exit.
        let stop = StopSignal()
        stop.install(signals: [SIGTERM, SIGUSR1], log: log)
        coordinator.stopRequested = { stop.isSet }
        log("run \(run.url.path); coordinator at \(server.endpoint)")

        var children: [Process] = []
        defer {
            // Workers were told to shut down: give them a moment to log their last lines and exit on
            // their own (a dead-worker's slot is already gone), then stop any straggler.
            let deadline = Date().addingTimeInterval(5)
            while children.contains(where: \.isRunning) && Date() < deadline { usleep(20_000) }
            for c in children where c.isRunning { c.terminate() }
        }
        if local {
            let binary = o.workerBinary ?? workerBinaryPath()
            guard FileManager.default.isExecutableFile(atPath: binary) else {
                throw SwiftRainError(binary, "swiftrain-worker not found", hint: "build both products (swift build -c release) and run swiftrain from the build directory")
            }
            for r in 0..<n {
                let p = Process()
                p.executableURL = URL(fileURLWithPath: binary)
                p.arguments = ["--connect", server.endpoint, "--rank", "\(r)", "--exit-with-parent"] + (keys != nil ? ["--keys", run.url.appendingPathComponent("keys").path] : [])
                var env = ProcessInfo.processInfo.environment
                env["OPENBLAS_NUM_THREADS"] = "\(opts.blasThreadsPerWorker)"
                p.environment = env
                try p.run()  // posix_spawn: exec, never fork
                children.append(p)
            }
        } else {
            log("waiting for \(n) worker(s): swiftrain-worker --connect \(server.endpoint.replacingOccurrences(of: "0.0.0.0", with: ProcessInfo.processInfo.hostName))")
        }
        return try coordinator.train(resume: o.resume)
    }

    /// The running executable (benchmarks re-run it as their peer processes).
    public static var currentExecutable: String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }

    /// `swiftrain-worker` next to the running `swiftrain`.
    static func workerBinaryPath() -> String {
        URL(fileURLWithPath: currentExecutable).deletingLastPathComponent().appendingPathComponent("swiftrain-worker").path
    }
}
