import Foundation
import RainConfig
import RainModel
import RainProtocol
import XCTest

/// The `swiftrain` executable, really started: exit codes, output, files written.
final class CLITests: XCTestCase {
    @discardableResult
    func run(_ args: [String], expect code: Int32 = 0, file: StaticString = #filePath, line: UInt = #line) throws -> (
        out: String, err: String
    ) {
        let r = try runProcess(Binaries.swiftrain, args)
        XCTAssertEqual(r.status, code, "swiftrain \(args.joined(separator: " "))\n\(r.err)", file: file, line: line)
        return (r.out, r.err)
    }

    func tmp() -> URL { temporaryDirectory("cli") }

    func testSynthInspectNormalizeSample() throws {
        let dir = tmp()
        try run(["synth", "--out", dir.path + "/data", "--from", "2016-04-01", "--to", "2016-05-31"])
        let config = dir.appendingPathComponent("c.yaml")
        try """
        data: [\(dir.path)/data/era5625, \(dir.path)/data/imerg5625, \(dir.path)/data/simsat5625]
        normalisation: \(dir.path)/norm.json
        sources: simsat_era
        imerg: true
        inc_time: true
        train_end: 2016-05-10
        valid_start: 2016-05-11
        valid_end: 2016-05-20
        test_start: 2016-05-21
        test_end: 2016-05-31
        """.write(to: config, atomically: true, encoding: .utf8)
        let norm = try run(["normalize", "--config", config.path])
        XCTAssertTrue(norm.out.contains("wrote"))
        let stats =
            try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("norm.json")))
            as! [String: [String: Double]]
        // Exactly PyRain's keys (its file for 2016–2017 is in ../shared/fixtures).
        let pyrain = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../../shared/fixtures/pyrain-normalisation-2016-2017.json").standardized
        let reference = try JSONSerialization.jsonObject(with: Data(contentsOf: pyrain)) as! [String: Any]
        XCTAssertEqual(Set(stats.keys), Set(reference.keys))
        XCTAssertEqual(stats["era5625/lat2d"]!["mean"]!, 0, accuracy: 1e-9)  // a symmetric grid, as PyRain's 0.0

        let text = try run(["inspect", "--config", config.path]).out
        XCTAssertTrue(text.contains("dataset era5625") && text.contains("32 input channels"), text)
        let json =
            try JSONSerialization.jsonObject(
                with: Data(try run(["inspect", "--config", config.path, "--json"]).out.utf8)) as! [String: Any]
        let parts = (json["samples"] as! [String: Any])["partitions"] as! [[String: Any]]
        // train 2016-04-01 … 2016-05-10 23:00, lead 24 h: (39 d 23 h − 36 h)/3 h + 1 = 308 samples.
        XCTAssertEqual(((parts[0]["leads"] as! [[String: Any]])[0]["kept"] as! Int), 308)

        let out = dir.appendingPathComponent("sample")
        try run([
            "sample", "--config", config.path, "--partition", "valid", "--lead", "24", "--time", "2016-05-12T06:00:00Z",
            "--out", out.path,
        ])
        let manifest =
            try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("manifest.json")))
            as! [String: Any]
        XCTAssertEqual((manifest["input"] as! [String: Any])["shape"] as! [Int], [5, 32, 32, 64])
        XCTAssertEqual(try Data(contentsOf: out.appendingPathComponent("input.f32")).count, 4 * 5 * 32 * 32 * 64)
        let reads = manifest["reads"] as! [[String: String]]
        XCTAssertEqual(reads.first?["time"], "2016-05-11T18:00:00Z")
        XCTAssertEqual(reads.last?["time"], "2016-05-13T06:00:00Z")

        // A time off the sample grid is refused with a reason.
        let bad = try run(
            [
                "sample", "--config", config.path, "--partition", "valid", "--lead", "24", "--time",
                "2016-05-12T07:00:00Z",
                "--out", out.path,
            ], expect: 1)
        XCTAssertTrue(
            bad.err.contains("not a kept sample") && bad.err.contains("off the partition's sample grid"), bad.err)
    }

    func testBrokenDataExitsWithAClearMessage() throws {
        let dir = tmp()
        try run([
            "synth", "--out", dir.path, "--from", "2016-04-01", "--to", "2016-04-03", "--datasets", "imerg,simsat",
        ])
        let file = dir.appendingPathComponent("simsat5625/simsat5625__simsat5625.mmap")
        let h = try FileHandle(forWritingTo: file)
        try h.truncate(atOffset: 1000)
        try h.close()
        let r = try run(["inspect", dir.path + "/imerg5625", dir.path + "/simsat5625"], expect: 1)
        XCTAssertTrue(
            r.err.contains("problems in the data") && r.err.contains("truncated") && r.err.contains(file.path)
                && r.err.contains("this configuration reads simsat5625/clbt from it"),
            r.err)
        // The report still shows the table of files, with the broken one marked.
        XCTAssertTrue(r.out.contains("files this configuration reads:") && r.out.contains("broken"), r.out)
        let missing = try run(["inspect", dir.path + "/nope"], expect: 1)
        XCTAssertTrue(
            missing.err.contains("dataset directory not found") && missing.err.contains("swiftrain synth"), missing.err)
        let unknown = try run(["inspect", dir.path + "/imerg5625", "--set", "lr=fast"], expect: 1)
        XCTAssertTrue(unknown.err.contains("--set: lr") && unknown.err.contains("a finite number"), unknown.err)
    }
}

/// A process on a fallback kernel re-executes itself with a better one, for real.
final class BLASKernelReexecTests: XCTestCase {
    /// `bench kernel`'s report with `env`; a kernel chosen in this machine's own environment is not
    /// inherited (these tests are about what happens when the user has not chosen one).
    func kernel(_ env: [String: String]) throws -> String {
        let r = try runProcess(Binaries.swiftrain, ["bench", "kernel"], env: env, unsetting: ["OPENBLAS_CORETYPE"])
        XCTAssertEqual(r.status, 0, r.err)
        return r.out
    }

    func testFallbackIsReplacedAndTheUsersChoiceWins() throws {
        // The test's own reading of the CPU: AVX2 and FMA (every x86-64 CI machine of this decade).
        let cpuinfo = try String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)
        let flags = Set(cpuinfo.split(separator: "\n").first { $0.hasPrefix("flags") }!.split(separator: " "))
        let pretend = try kernel(["SWIFTRAIN_BLAS_ASSUME_CORENAME": "Prescott"])
        if flags.contains("avx2") && flags.contains("fma") {
            XCTAssertTrue(pretend.contains("SwiftRain's choice: OpenBLAS picked Prescott on this CPU"), pretend)
            XCTAssertFalse(pretend.hasPrefix("OpenBLAS kernel Prescott"), pretend)
        } else {
            XCTAssertTrue(pretend.hasPrefix("OpenBLAS kernel"), pretend)
        }
        XCTAssertTrue(pretend.contains("self-check (sgemm against a plain loop): ok"), pretend)
        let user = try kernel(["OPENBLAS_CORETYPE": "Prescott", "SWIFTRAIN_BLAS_ASSUME_CORENAME": "Prescott"])
        XCTAssertTrue(user.hasPrefix("OpenBLAS kernel Prescott (OPENBLAS_CORETYPE=Prescott)"), user)
    }

    /// The better kernel fails its check in the re-executed process: the process goes back to
    /// OpenBLAS's own choice (a second re-execution, without OPENBLAS_CORETYPE), says so, and works.
    func testAKernelThatFailsItsCheckIsNotUsed() throws {
        let cpuinfo = try String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)
        let flags = Set(cpuinfo.split(separator: "\n").first { $0.hasPrefix("flags") }!.split(separator: " "))
        let pretend = ["SWIFTRAIN_BLAS_ASSUME_CORENAME": "Prescott"]
        let chosen = try kernel(pretend)
        guard flags.contains("avx2") && flags.contains("fma"),
            let open = chosen.range(of: "OpenBLAS kernel "), let space = chosen[open.upperBound...].firstIndex(of: " ")
        else { return XCTAssertFalse(chosen.contains("SwiftRain's choice"), chosen) }
        let better = chosen[open.upperBound..<space]
        let r = try kernel(pretend.merging(["SWIFTRAIN_BLAS_FAIL_CHECK": "1"]) { $1 })
        XCTAssertTrue(r.contains("own choice (OPENBLAS_CORETYPE=\(better) gave wrong products"), r)
        XCTAssertFalse(r.contains("SwiftRain's choice"), r)
        XCTAssertTrue(r.contains("self-check (sgemm against a plain loop): ok"), r)
    }
}

/// bf16-mixed on a CPU without bf16 instructions: a clear error, never an emulated run. The CPU is made to
/// look older with SWIFTRAIN_HIDE_CPU_FLAGS (its flags less avx512_bf16), which is all the table reads.
final class PrecisionCLITests: XCTestCase {
    static let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../../shared/fixtures/convlstm-small").standardized.path

    func testBF16WithoutTheInstructionsSaysWhatTheCPULacksAndWhatToUse() throws {
        let older = ["SWIFTRAIN_HIDE_CPU_FLAGS": "avx512_bf16"]
        let runs = [
            ["check-gradients", "--fixture", Self.fixture, "--precision", "bf16-mixed"],
            ["bench", "step", "--model", "quick", "--threads", "1", "--steps", "1", "--precision", "bf16-mixed"],
            [
                "train", "--workers", "1", "--run", temporaryDirectory("bf16").path + "/run", "--set",
                "precision=bf16-mixed",
            ],
        ]
        for args in runs {
            let r = try runProcess(Binaries.swiftrain, args, env: older)
            XCTAssertEqual(r.status, 1, "\(args): \(r.err)")
            for words in ["bf16-mixed needs bfloat16 dot-product instructions", "lacks avx512_bf16", "precision: 32"] {
                XCTAssertTrue(r.err.contains(words), "\(args): '\(words)' in \(r.err)")
            }
            XCTAssertFalse(r.out.contains("s/step") || r.out.contains("grad."), "nothing ran: \(r.out)")
        }
        // A value that is not a precision names the key and the choices.
        let bad = try runProcess(
            Binaries.swiftrain, ["check-gradients", "--fixture", Self.fixture, "--precision", "16"])
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.err.contains("precision"), bad.err)
    }

    func testBenchKernelListsThePrecisionsThisCPURunsNatively() throws {
        let older = try runProcess(
            Binaries.swiftrain, ["bench", "kernel"], env: ["SWIFTRAIN_HIDE_CPU_FLAGS": "avx512_bf16"])
        XCTAssertEqual(older.status, 0, older.err)
        XCTAssertTrue(
            // Named first; a CPU without AVX-512 at all lacks avx512bw, avx512f and avx512vl too.
            older.out.contains("precisions run natively: 32; bf16 kernel: none (lacks avx512_bf16"), older.out)
        let cpuinfo = try String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)
        let flags = Set(cpuinfo.split(separator: "\n").first { $0.hasPrefix("flags") }!.split(separator: " "))
        let here = try runProcess(Binaries.swiftrain, ["bench", "kernel"])
        XCTAssertEqual(here.status, 0, here.err)
        if ["avx512f", "avx512bw", "avx512vl", "avx512_bf16"].allSatisfy({ flags.contains(Substring($0)) }) {
            XCTAssertTrue(
                here.out.contains("precisions run natively: 32, bf16-mixed; bf16 kernel: AVX512_BF16"), here.out)
            XCTAssertTrue(here.out.contains("machine bf16 peak"), here.out)
        } else {
            XCTAssertTrue(here.out.contains("precisions run natively: 32;"), here.out)
        }
    }
}

/// `bench step --pytorch` against stand-in peers: real processes speaking the script's protocol.
final class BenchPeerTests: XCTestCase {
    func testAPeerRunsInTurnsOnTheSameShapeAndItsRatioIsReported() throws {
        let dir = temporaryDirectory("peer")
        let script = dir.appendingPathComponent("peer.py"), log = dir.appendingPathComponent("peer.log")
        // Answers 0.5 s per step and records its arguments and how many steps it was asked for.
        try """
        import sys
        log = open("\(log.path)", "a")
        log.write(" ".join(sys.argv[1:]) + "\\n")
        threads = sys.argv[sys.argv.index("--threads") + 1]
        print(f"ready 9.9 {threads} stand-in", flush=True)
        for line in sys.stdin:
            log.write(line)
            print("0.5", flush=True)
        """.write(to: script, atomically: true, encoding: .utf8)
        let r = try runProcess(
            Binaries.swiftrain,
            [
                "bench", "step", "--model", "quick", "--threads", "1", "--steps", "2", "--pytorch", "--pytorch-script",
                script.path, "--json",
            ])
        XCTAssertEqual(r.status, 0, r.err)
        let lines = try String(contentsOf: log, encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.count, 3, "started once, then asked for 2 steps: \(lines)")
        for flag in ["--serve", "--hidden 32", "--head 16", "--batch 8", "--threads 1", "--seq 5", "--height 32"] {
            XCTAssertTrue(lines[0].contains(flag), "\(flag) in \(lines[0])")
        }
        XCTAssertEqual(lines.dropFirst().map(String.init), ["step", "step"])
        XCTAssertTrue(r.out.contains("Side by side with PyTorch 9.9 (1 threads, stand-in)"), r.out)
        let json = try XCTUnwrap(r.out.range(of: "\n{").map { String(r.out[$0.lowerBound...]) })
        let report = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        let row = try XCTUnwrap((report["rows"] as? [[String: Any]])?.first)
        let ours = try XCTUnwrap(row["seconds_per_step"] as? Double)
        XCTAssertEqual(row["peer_seconds_per_step"] as? Double, 0.5)
        XCTAssertEqual(try XCTUnwrap(row["speedup_over_peer"] as? Double), 0.5 / ours, accuracy: 1e-9)
        XCTAssertEqual(report["conv"] as? String, "winograd")
    }

    /// Each precision's rows are compared with the same precision: bf16-mixed rows start the peer with --bf16.
    func testThePeerRunsTheRowsPrecision() throws {
        guard BF16Dispatch.selected == .avx512bf16 else {
            throw XCTSkip("this CPU has no AVX512_BF16: bf16-mixed rows cannot run here")
        }
        let dir = temporaryDirectory("peer")
        let script = dir.appendingPathComponent("peer.py"), log = dir.appendingPathComponent("peer.log")
        try """
        import sys
        open("\(log.path)", "a").write(" ".join(sys.argv[1:]) + "\\n")
        print("ready 9.9 1 stand-in", flush=True)
        for line in sys.stdin:
            print("0.5", flush=True)
        """.write(to: script, atomically: true, encoding: .utf8)
        let r = try runProcess(
            Binaries.swiftrain,
            [
                "bench", "step", "--model", "quick", "--threads", "1", "--steps", "1", "--precision", "32,bf16-mixed",
                "--pytorch", "--pytorch-script", script.path, "--pytorch-compile",
            ])
        XCTAssertEqual(r.status, 0, r.err)
        let lines = try String(contentsOf: log, encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.count, 2, "one peer per precision: \(lines)")
        XCTAssertFalse(lines[0].contains("--bf16"), String(lines[0]))
        XCTAssertTrue(lines[1].contains("--bf16") && lines[1].contains("--compile"), String(lines[1]))
        XCTAssertTrue(r.out.contains("bf16-mixed") && r.out.contains("torch.compile"), r.out)
    }

    func testAPeerWithoutTorchSaysHowToInstallIt() throws {
        let script = temporaryDirectory("peer").appendingPathComponent("peer.py")
        try "raise ModuleNotFoundError(\"No module named 'torch'\")\n".write(
            to: script, atomically: true, encoding: .utf8)
        let r = try runProcess(
            Binaries.swiftrain,
            [
                "bench", "step", "--model", "quick", "--threads", "1", "--steps", "1", "--pytorch", "--pytorch-script",
                script.path,
            ])
        XCTAssertEqual(r.status, 1, r.err)
        XCTAssertTrue(r.err.contains("PyTorch did not start") && r.err.contains("pip install torch"), r.err)
    }
}
