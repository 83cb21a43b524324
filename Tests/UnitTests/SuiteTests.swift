import Foundation
import RainSuite
import XCTest

/// The suite's grid and its choice of configuration, on values written here.
final class SuiteSpecTests: XCTestCase {
    func base() throws -> String {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("suite-base-\(UUID().uuidString).yaml")
        try "seed: 7\nepochs: 1\n".write(to: url, atomically: true, encoding: .utf8)
        addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return url.path
    }

    func testCellsAreTheGridsProductWithSeedsAndNames() throws {
        let spec = try SuiteSpec(
            base: try base(), grid: ["sources=simsat,era", "lr=1e-4,5e-5"], seeds: 2, workers: 1, trainArguments: [])
        let cells = spec.cells()
        XCTAssertEqual(cells.count, 8)
        XCTAssertEqual(cells[0].name, "sources-simsat_lr-1e-4_seed-7")
        XCTAssertEqual(cells[1].assignments, ["sources=simsat", "lr=1e-4", "seed=8"])
        XCTAssertEqual(cells[2].setting, ["sources=simsat", "lr=5e-5"])
        XCTAssertEqual(cells[7].name, "sources-era_lr-5e-5_seed-8")
        XCTAssertEqual(try spec.config(of: cells[7]).lr, 5e-5)
        XCTAssertEqual(try spec.config(of: cells[7]).seed, 8)
    }

    func testBadGridsAreRefusedUpFront() throws {
        let b = try base()
        func message(_ grid: [String], seeds: Int = 1) -> String {
            do {
                _ = try SuiteSpec(base: b, grid: grid, seeds: seeds, workers: 1, trainArguments: [])
                return "accepted"
            } catch { return "\(error)" }
        }
        XCTAssertTrue(message(["sources"]).contains("key=value1,value2"))
        XCTAssertTrue(message(["lr=1e-4", "lr=2e-4"]).contains("the same key twice"))
        XCTAssertTrue(
            message(["sources=simsat,radar"]).contains("cell sources-radar"), message(["sources=simsat,radar"]))
        XCTAssertTrue(message(["no_such_key=1"]).contains("no_such_key"))
        XCTAssertTrue(message(["seed=1,2"], seeds: 2).contains("both --seeds"))
    }

    /// The configuration with the lower validation loss wins even where its test RMSE is worse;
    /// its scores are the mean ± sample std of its seeds (by hand: 1.0 and 1.4 → 1.2 ± 0.2828).
    func testTheChoiceIsByValidationLossAndScoresAreOverSeeds() {
        func cell(_ lr: String, _ seed: Int, val: Double, test: Double) -> SuiteReport.CellResult {
            SuiteReport.CellResult(
                name: "lr\(lr)-\(seed)", setting: ["sources=simsat", "lr=\(lr)"], seed: seed, sources: "simsat",
                imerg: true, status: "finished", bestValLoss: val, testRMSE: ["24": test], unit: "mm/h")
        }
        let entries = SuiteReport.entries(
            [
                cell("1e-4", 0, val: 0.50, test: 1.0), cell("1e-4", 1, val: 0.52, test: 1.4),
                cell("5e-5", 0, val: 0.60, test: 0.1), cell("5e-5", 1, val: 0.44, test: 0.1),  // mean 0.52
                cell("1e-3", 0, val: 0.70, test: 0.05),
            ], reports: [:])
        XCTAssertEqual(entries.count, 1)
        let e = entries[0]
        XCTAssertEqual(e.chosen, ["lr=1e-4"])
        XCTAssertEqual(e.validLoss, 0.51, accuracy: 1e-12)
        XCTAssertEqual(e.rmse["24"]?.mean ?? 0, 1.2, accuracy: 1e-12)
        XCTAssertEqual(e.rmse["24"]?.std ?? 0, 0.2828427, accuracy: 1e-6)
        XCTAssertEqual(e.alternatives["lr=1e-3"] ?? 0, 0.70, accuracy: 1e-12)
    }
}
