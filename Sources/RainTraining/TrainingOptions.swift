import ArgumentParser

/// The order in which workers read the train samples.
public enum SampleOrder: String, CaseIterable, Codable, ExpressibleByArgument {
    /// One seeded permutation per epoch, cut into global batches: results independent of N.
    case global
    /// Each worker reads one contiguous block of sample times per epoch, rotated every epoch.
    case locality
}

/// How the workers' gradients are summed.
public enum Hierarchy: String, CaseIterable, Codable, ExpressibleByArgument {
    /// By host with two hosts that each have several workers; else one ring (grouped by host).
    case auto
    /// One ring over every worker.
    case flat
    /// A chain within each host onto its leader, the ring among leaders, a chain back out.
    case hosts
}

/// Every `swiftrain train` option that shapes a run beyond its configuration: parsed once by the
/// command line and passed whole to the launcher and the coordinator.
public struct TrainingOptions: ParsableArguments {
    @Option(help: "Local worker processes (default: one per core).")
    public var workers: Int?
    @Option(help: "Listen on tcp://ADDR:PORT for workers started elsewhere instead of spawning them.")
    public var listen: String?
    @Option(name: .customLong("expect-workers"), help: "With --listen: how many workers to wait for.")
    public var expectWorkers: Int?
    @Option(
        name: .customLong("blas-threads"),
        help: "Threads per worker for the model's products (default: cores / workers); any value gives the same bits.")
    public var blasThreads: Int?
    @Option(name: .customLong("checkpoint-every"), help: "Also write last.ckpt every N steps.")
    public var checkpointEvery = 0
    @Option(
        name: .customLong("checkpoint-failures"),
        help: """
            Checkpoints in a row that may fail to be written (full disk, quota, I/O error) before the run stops; \
            each failure is retried at the next checkpoint time while training goes on.
            """)
    public var checkpointFailures = 3
    @Option(
        name: .customLong("checkpoint-minutes"),
        help: "Also write last.ckpt when this many minutes have passed since the last one (0: off).")
    public var checkpointMinutes = 10.0
    @Option(name: .customLong("max-steps"), help: "Stop with a checkpoint after N steps (0: train to the end).")
    public var maxSteps = 0
    @Option(name: .customLong("step-timeout"), help: "Seconds to wait for a step's results while workers are alive.")
    public var stepTimeout = 600.0
    @Option(
        name: .customLong("worker-timeout"),
        help: "Seconds without a heartbeat after which a worker owing work is declared dead.")
    public var workerTimeout = 10.0
    @Option(name: .customLong("join-timeout"), help: "Seconds to wait for the expected workers to join.")
    public var joinTimeout = 120.0
    @Option(name: .customLong("min-workers"), help: "Below this many live workers, checkpoint and exit non-zero.")
    public var minWorkers = 1
    @Option(
        name: .customLong("max-workers"),
        help: "At most this many workers at once; later ones are refused with that reason (default: no limit).")
    public var maxWorkers: Int?
    @Option(
        help: """
            Sample order: global (one seeded permutation, results independent of N) or locality (each worker \
            reads one contiguous block of sample times, rotated every epoch).
            """)
    public var sharding = SampleOrder.global
    @Option(
        name: .customLong("batch-per-worker"),
        help: """
            Samples per worker per step: the global batch becomes B × workers and the learning rate scales \
            with it (linear scaling rule, reached over --warmup-steps). Default: batch_size whatever N is.
            """)
    public var batchPerWorker: Int?
    @Option(
        name: .customLong("warmup-steps"),
        help: "Steps over which a scaled learning rate is reached (default: one epoch).")
    public var warmupSteps: Int?
    @Option(
        help: """
            Gradient sums: auto (by host with two hosts sharing workers, else one ring), flat (one ring, workers \
            grouped by host), hosts (within each host onto a leader, a ring among the leaders, back out).
            """)
    public var hierarchy = Hierarchy.auto
    @Flag(help: "Encrypt and authenticate with CURVE even on loopback (always on beyond loopback).")
    public var curve = false
    @Option(
        name: .customLong("progress-every"),
        help: "Seconds between progress lines when stderr is not a terminal (0: every step).")
    public var progressEvery = 30.0
    @Option(
        name: .customLong("log-every"),
        help: "Steps between TensorBoard's per-step scalars in RUN/tensorboard (0: none; epochs are always logged).")
    public var logEvery = 1
    @Option(
        name: .customLong("log-maps-every"),
        help: "Epochs between TensorBoard's truth-vs-forecast maps of a fixed validation sample (0: none).")
    public var logMapsEvery = 1
    @Flag(name: .customLong("no-tensorboard"), help: "Write no TensorBoard event files (metrics.jsonl stays).")
    public var noTensorBoard = false

    /// ArgumentParser's requirement; the fields hold no values until parsed, so build options with
    /// `from(_:)` (or let a command parse them).
    public init() {}

    /// Options from command-line words (tests and benchmarks build them the way users do).
    public static func from(_ arguments: [String]) throws -> TrainingOptions { try parse(arguments) }
}
