import ArgumentParser
import Foundation
import RainConfig
import RainLaunch
import RainModel
import RainSupport

struct CheckGradientsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-gradients",
        abstract: "Compare forward, backward and Adam steps with a PyTorch fixture; exit non-zero past tolerance.")
    @Option(help: "Fixture directory (shared/fixtures/convlstm-small format).") var fixture: String
    @Flag(help: "Print JSON instead of a table.") var json = false
    @Option(help: "32, or bf16-mixed (tolerances for bfloat16 GEMM operands: see the README).")
    var precision: Precision = .fp32

    func run() throws {
        try SwiftRain.run {
            let rows = try CheckGradients.run(fixture: fixture, precision: precision)
            if json {
                try printJSON(rows)
            } else {
                print(CheckGradients.table(rows))
            }
            let bad = rows.filter { !$0.ok }
            if !bad.isEmpty {
                stderr("error: \(bad.count) tensor(s) past tolerance: " + bad.map(\.tensor).joined(separator: ", "))
                throw ExitCode(1)
            }
        }
    }
}

struct BenchStepCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "step",
        abstract: "Training step (forward + backward + Adam) against the sgemm ceiling, 1 and 2 threads.")
    @Option(help: "Measured steps per configuration (after one warm-up).") var steps = 3
    @Option(help: "Thread counts, comma-separated.") var threads = "1,2"
    @Flag(help: "The small model at B = 8 only (a smoke run); the same as --model quick.") var quick = false
    @Option(help: "Rows to run: all, full (F = 384, B = 1 and 4), small (F = 32, B = 8 and 32), quick.")
    var model: BenchStep.Selection = .all
    @Option(help: "The 3×3 convolution: winograd (the default) or direct (im2col).")
    var conv: ConvAlgorithm = .standard
    @Option(
        help: """
            Precisions, comma-separated: 32, bf16-mixed (bf16 GEMM operands, fp32 sums; needs AVX512_BF16). \
            With --pytorch, each row's peer runs the same precision.
            """)
    var precision = "32"
    @Flag(help: "Time PyTorch's step (tools/bench_pytorch.py; pip install torch) in turns with each row.")
    var pytorch = false
    @Flag(help: "With --pytorch: the peer runs torch.compile(model) (inductor) too.") var pytorchCompile = false
    @Option(help: "The PyTorch script (default: tools/bench_pytorch.py of this checkout).") var pytorchScript: String?
    @Option(help: "The Python that has torch.") var python = "python3"
    @Flag(help: "Print JSON too.") var json = false

    func run() throws {
        try SwiftRain.run {
            let counts = threads.split(separator: ",").compactMap { Int($0) }
            let script = pytorch ? try PyTorchPeer.findScript(pytorchScript) : nil
            let precisions = try precision.split(separator: ",").map { name -> Precision in
                guard let p = Precision(name: String(name)) else {
                    throw SwiftRainError(
                        "--precision", "unknown precision '\(name)'", expected: "32 or bf16-mixed (comma-separated)",
                        hint: "e.g. --precision 32,bf16-mixed")
                }
                return p
            }
            let compile = pytorchCompile
            let report = try BenchStep.run(
                steps: steps, threadCounts: counts, models: quick ? .quick : model, conv: conv, precisions: precisions,
                peer: script.map { script in
                    { shape, batch, threads, precision in
                        try PyTorchPeer(
                            script: script, python: python, shape: shape, batch: batch, threads: threads,
                            precision: precision, compile: compile)
                    }
                }, note: { stderr($0) })
            try printTable(BenchStep.table(report), report, json: json)
        }
    }
}

struct BenchAllreduceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "allreduce",
        abstract:
            """
            Allreduce of a gradient-sized buffer among N processes on loopback: star and ring against the \
            bandwidth bound.
            """
    )
    @Option(help: "Floats per buffer (8.1 M ≈ the full model's 32 MB gradient).") var floats = 8_123_969
    @Option(help: "Process counts, comma-separated.") var processes = "2,3,4"
    @Option(help: "Algorithms, comma-separated: star, ring.") var algorithms = "star,ring"
    @Option(name: .customLong("piece-kib"), help: "Ring pipelining: KiB per piece.") var pieceKiB = BenchAllreduce
        .defaultPieceKiB
    @Option(help: "Measured repetitions (after one warm-up).") var reps = 5
    @Flag(help: "Print JSON too.") var json = false
    @Option(name: .customLong("peer-of"), help: .hidden) var peerOf: String?
    @Option(help: .hidden) var rank = 0

    func run() throws {
        try SwiftRain.run {
            if let peerOf {
                try BenchAllreduce.peer(
                    hub: peerOf, rank: rank, floats: floats, algorithm: algorithms, pieceFloats: pieceKiB * 256)
                return
            }
            let report = try BenchAllreduce.run(
                floats: floats, processes: processes.split(separator: ",").compactMap { Int($0) },
                algorithms: algorithms.split(separator: ",").map(String.init), pieceFloats: pieceKiB * 256,
                reps: reps, binary: ThisProcess.executable, log: { stderr($0) })
            try printTable(BenchAllreduce.table(report), report, json: json)
        }
    }
}

struct BenchScalingCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scaling",
        abstract:
            """
            Training samples/s: 2 workers × 1 thread vs 1 worker × 2 threads at the same global batch, and time \
            waiting on communication.
            """
    )
    @Option(help: "Configuration to train (its data, model and batch).") var config: String
    @Option(help: "Measured steps per run (after two warm-up steps).") var steps = 10
    @Option(help: "Where the benchmark's runs go.") var scratch = "runs/bench"
    @Flag(help: "Print JSON too.") var json = false

    func run() throws {
        try SwiftRain.run {
            let report = try BenchScaling.run(
                configPath: config, steps: steps, binary: ThisProcess.executable, scratch: scratch, log: { stderr($0) })
            try printTable(BenchScaling.table(report), report, json: json)
        }
    }
}

struct BenchKernelCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kernel",
        abstract: "The OpenBLAS kernel in use and why, the CPU's features, an sgemm self-check, the FP32 peak.")

    func run() throws {
        let flags = BLASKernel.cpuFlags()
        let best = ["avx512_bf16", "avx512f", "avx2", "fma", "avx"].filter(flags.contains)
        print(BLASKernel.note.isEmpty ? "OpenBLAS kernel \(BLAS.coreName)" : BLASKernel.note)
        print("cpu features: \(best.isEmpty ? "none of AVX, AVX2/FMA, AVX-512" : best.joined(separator: " "))")
        print("self-check (sgemm against a plain loop): \(BLASKernel.selfCheck() ? "ok" : "WRONG PRODUCTS")")
        let native = BF16Dispatch.nativePrecisions.map(\.rawValue).joined(separator: ", ")
        let bf16 =
            BF16Dispatch.selected == .avx512bf16
            ? "bf16 kernel: AVX512_BF16 (VDPBF16PS micro-kernels)"
            : "bf16 kernel: none (lacks "
                + BF16Dispatch.missing(cpuFlags: BF16Dispatch.cpuFlags).joined(separator: ", ") + ")"
        print("precisions run natively: \(native); \(bf16)")
        if BF16Dispatch.selected == .avx512bf16 { print(BF16Dispatch.backendNote) }
        for t in Set([1, ProcessInfo.processInfo.activeProcessorCount]).sorted() {
            let g = MachinePeak.gflops(threads: t)
            print("machine FP32 peak, \(t) thread(s): \(String(format: "%.1f", g)) GFLOP/s (\(MachinePeak.isa))")
            if BF16Dispatch.selected == .avx512bf16 {
                let b = MachinePeak.bf16GFlops(threads: t)
                print("machine bf16 peak, \(t) thread(s): \(String(format: "%.1f", b)) GFLOP/s (VDPBF16PS)")
            }
        }
    }
}

extension BenchStep.Selection: ExpressibleByArgument {}
extension ConvAlgorithm: ExpressibleByArgument {}
extension Precision: ExpressibleByArgument {
    public init?(argument: String) { self.init(name: argument) }
}
