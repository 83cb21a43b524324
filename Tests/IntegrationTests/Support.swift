import Foundation
import RainConfig
import RainData
import RainProtocol
import RainSupport
import RainZMQ
import XCTest

/// Synthetic data (2016-04 … 2016-05), its normalisation, and a tiny model's configuration (`c.yaml`),
/// made afresh for each test class that trains: no class uses another's files, so they pass in any order.
enum TrainingData {
    static func make(_ name: String) -> URL {
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("swiftrain-\(name)-\(ProcessInfo.processInfo.processIdentifier)")
        try? FileManager.default.removeItem(at: url)
        var o = SyntheticDataset.Options(out: url.appendingPathComponent("data").path)
        o.from = UTCTime.make(2016, 4, 1)
        o.to = UTCTime.make(2016, 5, 31, 23)
        o.datasets = ["era", "imerg", "simsat"]
        o.eraFill = TimeSpan(first: 1, last: 0)
        try! SyntheticDataset.write(o)
        let c = config(url)
        try! Normalisation.compute(spec: try! SampleSpec(c), catalog: try! DataCatalog(paths: c.data)).write(
            path: c.normalisation)
        try! c.yaml().write(to: url.appendingPathComponent("c.yaml"), atomically: true, encoding: .utf8)
        return url
    }

    static func config(_ root: URL) -> Config {
        var c = Config()
        c.data = ["era5625", "imerg5625", "simsat5625"].map { root.appendingPathComponent("data/\($0)").path }
        c.normalisation = root.appendingPathComponent("norm.json").path
        c.sources = .simsat
        c.imerg = true
        c.incTime = true
        c.noRelu = true
        c.trainStart = UTCTime.make(2016, 4, 1)
        c.trainEnd = UTCTime.make(2016, 4, 20, 23)
        c.validStart = UTCTime.make(2016, 5, 1)
        c.validEnd = UTCTime.make(2016, 5, 10, 23)
        c.testStart = UTCTime.make(2016, 5, 11)
        c.testEnd = UTCTime.make(2016, 5, 31, 23)
        c.hidden1 = 8
        c.hidden2 = 4
        c.batchSize = 8
        c.microBatch = 4
        c.epochs = 2
        c.lr = 1e-3
        return c
    }
}

extension XCTestCase {
    /// A fresh directory, removed when the test ends.
    func temporaryDirectory(_ prefix: String) -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent(
            "swiftrain-\(prefix)-\(UUID().uuidString.prefix(8))")
        try! FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return url
    }
}

enum Binaries {
    static var dir: String {
        if let b = ProcessInfo.processInfo.environment["SWIFTRAIN_BIN"] { return b }
        let here = Bundle.main.bundleURL
        return [here, here.deletingLastPathComponent()].map(\.path)
            .first { FileManager.default.isExecutableFile(atPath: $0 + "/swiftrain") } ?? "."
    }
    /// The checkout these tests belong to (tools/ are run from it).
    static var repoRoot: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../..").standardized.path
    }
    static var swiftrain: String { dir + "/swiftrain" }
    static var worker: String { dir + "/swiftrain-worker" }
}

/// Runs a command to completion, returning its status and output.
@discardableResult
func runProcess(
    _ path: String, _ args: [String], cwd: URL? = nil, env: [String: String] = [:], unsetting: [String] = [],
    timeout: TimeInterval = 300
) throws -> (status: Int32, out: String, err: String) {
    let p = try startProcess(path, args, cwd: cwd, env: env, unsetting: unsetting)
    let deadline = Date().addingTimeInterval(timeout)
    while p.process.isRunning && Date() < deadline { usleep(20_000) }
    if p.process.isRunning {
        p.process.terminate()
        XCTFail("\(path) \(args) timed out")
    }
    p.wait()
    return (p.process.terminationStatus, p.output(), p.errors())
}

/// A started process whose output is collected in the background (pipes never fill up).
final class Started {
    let process = Process()
    private var out = Data(), err = Data()
    private var pipes: [(Pipe, Bool)] = []
    private let lock = NSLock()

    /// After the process has exited: reads what the background handlers have not delivered yet (they
    /// run asynchronously, so output can still be in the pipe when `waitUntilExit` returns).
    /// Waits for the process to exit, then for its last output.
    func wait() {
        process.waitUntilExit()
        drain()
    }

    /// Bounded: a grandchild that inherited the pipe may keep it open a little longer.
    func drain() {
        let group = DispatchGroup()
        for (pipe, isErr) in pipes {
            pipe.fileHandleForReading.readabilityHandler = nil
            group.enter()
            DispatchQueue.global().async {
                let rest = pipe.fileHandleForReading.readDataToEndOfFile()
                self.lock.lock()
                if isErr { self.err += rest } else { self.out += rest }
                self.lock.unlock()
                group.leave()
            }
        }
        _ = group.wait(timeout: .now() + 10)
        pipes = []
    }
    func output() -> String {
        lock.lock()
        defer { lock.unlock() }
        return String(decoding: out, as: UTF8.self)
    }
    func errors() -> String {
        lock.lock()
        defer { lock.unlock() }
        return String(decoding: err, as: UTF8.self)
    }
    fileprivate func collect(_ pipe: Pipe, stderr: Bool) {
        pipes.append((pipe, stderr))
        pipe.fileHandleForReading.readabilityHandler = { [weak self] h in
            let d = h.availableData
            guard let self, !d.isEmpty else { return }
            self.lock.lock()
            if stderr { self.err += d } else { self.out += d }
            self.lock.unlock()
        }
    }
}

/// `env` is added to this process's environment; the variables named in `unsetting` are removed first
/// (a machine may export, say, OPENBLAS_CORETYPE, and a test of the default must not inherit it).
func startProcess(
    _ path: String, _ args: [String], cwd: URL? = nil, env: [String: String] = [:], unsetting: [String] = [],
    input: Pipe? = nil
) throws -> Started {
    let s = Started()
    s.process.executableURL = URL(fileURLWithPath: path)
    s.process.arguments = args
    if !env.isEmpty || !unsetting.isEmpty {
        s.process.environment = ProcessInfo.processInfo.environment.filter { !unsetting.contains($0.key) }
            .merging(env) { $1 }
    }
    if let cwd { s.process.currentDirectoryURL = cwd }
    if let input { s.process.standardInput = input }
    let o = Pipe(), e = Pipe()
    s.process.standardOutput = o
    s.process.standardError = e
    s.collect(o, stderr: false)
    s.collect(e, stderr: true)
    try s.process.run()
    return s
}

/// A loopback TCP endpoint free at the moment of the call (bound once, then released).
func freeLoopbackEndpoint() throws -> String {
    let ctx = try ZMQContext()
    let probe = try ZMQSocket(ctx, .router)
    try probe.bind("tcp://127.0.0.1:*")
    defer { probe.close() }
    return try probe.lastEndpoint()
}

/// A coordinator for `run` listening on `endpoint` for `workers` workers started by hand (CURVE: worker K
/// holds `run/keys/workers/wK`), with the tests' usual step deadline and no progress lines.
func startListening(config: URL, run: URL, endpoint: String, workers: Int, _ extra: [String]) throws -> Started {
    try startProcess(
        Binaries.swiftrain,
        [
            "train", "--config", config.path, "--run", run.path, "--listen", endpoint, "--expect-workers",
            "\(workers)", "--step-timeout", "60", "--progress-every", "0",
        ] + extra)
}

/// Worker `k` of `run`, started by hand with its own key directory.
func startWorker(_ run: URL, _ k: Int, endpoint: String, _ extra: [String] = [], env: [String: String] = [:]) throws
    -> Started
{
    try startProcess(
        Binaries.worker, ["--connect", endpoint, "--keys", TrainingTests.workerKeys(run, k)] + extra, env: env)
}

/// A process's state letter from /proc (T: stopped), nil once it is gone.
func procState(_ pid: Int32) -> Character? {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
        let close = stat.lastIndex(of: ")")
    else { return nil }
    return stat[stat.index(close, offsetBy: 2)]
}
