import Foundation
import RainConfig
import RainModel
import RainSupport

/// PyTorch's training step in its own process (`tools/bench_pytorch.py --serve`), for `bench step
/// --pytorch`: one `step` line in, its seconds out, so PyTorch and SwiftRain take turns on the CPU.
public final class PyTorchPeer: BenchStep.Peer {
    public let label: String
    private let process = Process()
    private let input: FileHandle
    private var reader: LineReader

    /// Where the script is: `explicit`, else tools/bench_pytorch.py under the working directory or
    /// beside the build directory of this executable (.build/release/swiftrain → tools/).
    public static func findScript(_ explicit: String?) throws -> String {
        if let explicit { return explicit }
        let exe = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        let candidates = [
            FileManager.default.currentDirectoryPath + "/tools/bench_pytorch.py",
            exe.deletingLastPathComponent().appendingPathComponent("../../tools/bench_pytorch.py").standardized.path,
        ]
        guard let found = candidates.first(where: { FileManager.default.fileExists(atPath: $0) }) else {
            throw SwiftRainError(
                "--pytorch", "tools/bench_pytorch.py not found", expected: "the script in the SwiftRain checkout",
                found: candidates.joined(separator: ", "),
                hint: "run from the repository's root or pass --pytorch-script PATH")
        }
        return found
    }

    /// Starts the script for one row and waits until it has warmed up.
    public init(
        script: String, python: String = "python3", shape: ModelShape, batch: Int, threads: Int,
        precision: Precision = .fp32, compile: Bool = false
    ) throws {
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments =
            [
                python, script, "--serve", "--cin", "\(shape.cin)", "--hidden", "\(shape.hidden)", "--head",
                "\(shape.head)", "--height", "\(shape.height)", "--width", "\(shape.width)", "--batch", "\(batch)",
                "--seq", "5", "--threads", "\(threads)",
            ] + (precision == .bf16Mixed ? ["--bf16"] : []) + (compile ? ["--compile"] : [])
        var env = ProcessInfo.processInfo.environment
        env["OMP_NUM_THREADS"] = "\(threads)"
        process.environment = env
        let toPeer = Pipe(), fromPeer = Pipe()
        // Its standard error goes to a file, so no amount of warnings can fill a pipe and stall it.
        let errorPath = NSTemporaryDirectory() + "swiftrain-pytorch-\(getpid())-\(batch)-\(threads).log"
        guard FileManager.default.createFile(atPath: errorPath, contents: nil) else {
            throw SwiftRainError(errorPath, "cannot create the PyTorch peer's log", hint: "check TMPDIR is writable")
        }
        // Removed once the peer is up (or has failed): it keeps writing to the open file, unnamed.
        defer { try? FileManager.default.removeItem(atPath: errorPath) }
        process.standardInput = toPeer
        process.standardOutput = fromPeer
        process.standardError = FileHandle(forWritingAtPath: errorPath)
        input = toPeer.fileHandleForWriting
        reader = LineReader(fromPeer.fileHandleForReading)
        try process.run()
        guard let ready = reader.next(), ready.hasPrefix("ready ") else {
            process.waitUntilExit()
            let why = (try? String(contentsOfFile: errorPath, encoding: .utf8)) ?? ""
            let last = why.split(separator: "\n").last.map(String.init) ?? "no output"
            throw SwiftRainError(
                script, "PyTorch did not start", expected: "a line `ready <version> <threads> <backend>`",
                found: last,
                hint: why.contains("No module named 'torch'")
                    ? "install it for \(python) (pip install torch) or run bench step without --pytorch"
                    : "run `\(python) \(script) --serve` by hand to see the whole error")
        }
        let f = ready.split(separator: " ")
        label =
            "PyTorch \(f.count > 1 ? f[1] : "?") (\(f.count > 2 ? f[2] : "?") threads, \(f.count > 3 ? f[3] : "?")"
            + (compile ? ", torch.compile" : "") + ")"
    }

    public func step() throws -> Double {
        input.write(Data("step\n".utf8))
        guard let line = reader.next(), let seconds = Double(line) else {
            throw SwiftRainError("PyTorch peer", "stopped answering in the middle of a benchmark", hint: label)
        }
        return seconds
    }

    deinit {
        try? input.close()
        process.waitUntilExit()
    }
}

/// Lines from a pipe, read as they come.
struct LineReader {
    private let handle: FileHandle
    private var buffer = Data()
    init(_ handle: FileHandle) { self.handle = handle }

    mutating func next() -> String? {
        while true {
            if let nl = buffer.firstIndex(of: 10) {
                let line = String(decoding: buffer[buffer.startIndex..<nl], as: UTF8.self)
                buffer.removeSubrange(buffer.startIndex...nl)
                return line
            }
            let chunk = handle.availableData
            if chunk.isEmpty { return nil }
            buffer.append(chunk)
        }
    }
}
