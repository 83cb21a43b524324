import Foundation
import RainModel
import XCTest

/// `check-gradients` on fixtures PyTorch writes here (shared/reference/torch_convlstm.py --mode fixture, float64
/// reference) for other shapes and seeds than the shipped one — odd planes, a final ReLU, more steps — in
/// both precisions, each held to the tolerances it states. CI installs torch (SWIFTRAIN_REQUIRE_PYTHON_ORACLES);
/// elsewhere this test needs `pip install torch numpy`.
final class PrecisionFixtureTests: XCTestCase {
    func testCheckGradientsPassesOnFreshPyTorchFixturesInBothPrecisions() throws {
        let torch = try runProcess("/usr/bin/env", ["python3", "-c", "import torch, numpy"])
        guard torch.status == 0 || ProcessInfo.processInfo.environment["SWIFTRAIN_REQUIRE_PYTHON_ORACLES"] != nil else {
            print("note: torch is not installed, so no fresh fixture was written (pip install torch numpy)")
            return
        }
        XCTAssertEqual(torch.status, 0, "SWIFTRAIN_REQUIRE_PYTHON_ORACLES is set but torch is missing: \(torch.err)")
        let script = Binaries.repoRoot + "/../shared/reference/torch_convlstm.py"
        let variants: [(String, [String])] = [
            (
                "odd-plane-relu",
                [
                    "--F", "12", "--F2", "5", "--Cin", "3", "--S", "4", "--B", "3", "--H", "9", "--W", "14",
                    "--relu-fixture", "--seed", "5",
                ]
            ),
            ("long", ["--F", "16", "--F2", "8", "--Cin", "7", "--S", "6", "--B", "2", "--seed", "11"]),
        ]
        let precisions = BF16Dispatch.selected == .avx512bf16 ? ["32", "bf16-mixed"] : ["32"]
        for (name, args) in variants {
            let dir = temporaryDirectory("fixture-\(name)").path
            let made = try runProcess(
                "/usr/bin/env", ["python3", script, "--mode", "fixture", "--out", dir] + args, timeout: 600)
            XCTAssertEqual(made.status, 0, "\(name): \(made.err)")
            for precision in precisions {
                let r = try runProcess(
                    Binaries.swiftrain, ["check-gradients", "--fixture", dir, "--precision", precision, "--json"])
                XCTAssertEqual(r.status, 0, "\(name) \(precision): \(r.out)\n\(r.err)")
                let rows = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [[String: Any]])
                XCTAssertGreaterThan(rows.count, 20, "\(name) \(precision)")
                // A fixture whose ReLU zeroes every output would hold nothing to compare: bf16 must show its rounding.
                if precision == "bf16-mixed" {
                    let conv = try XCTUnwrap(rows.first { $0["tensor"] as? String == "grad.conv.weight" })
                    XCTAssertGreaterThan(try XCTUnwrap(conv["max_abs"] as? Double), 0, "\(name): a degenerate fixture")
                }
                for row in rows {
                    let rel = try XCTUnwrap(row["relative"] as? Double),
                        tol = try XCTUnwrap(row["tolerance"] as? Double)
                    XCTAssertLessThanOrEqual(rel, tol, "\(name) \(precision) \(row["tensor"] ?? "?")")
                }
            }
        }
        if !precisions.contains("bf16-mixed") { print("note: this CPU has no AVX512_BF16: bf16-mixed not checked") }
    }
}
