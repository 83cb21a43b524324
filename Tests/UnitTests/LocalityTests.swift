import Foundation
import RainData
import RainProtocol
import XCTest

/// Data slices (issue 4 item 8): windowed mappings with offsets, and the locality sample plan.
final class LocalityTests: XCTestCase {
    func testMappedFileMapsOnlyTheWindowsItReads() throws {
        let dir = temporaryDirectory(self)
        let url = dir.appendingPathComponent("x.mmap")
        let rows = 100, perRow = 24  // (T, C, H, W) = (100, 2, 3, 4): 96 bytes a row
        try writeFloats((0..<(rows * perRow)).map(Float.init), to: url)
        let f = try MappedFile(
            path: url.path, expectedBytes: rows * perRow * 4, shape: [rows, 2, 3, 4], windowBytes: 1000)
        XCTAssertEqual(f.rowBytes, 96)
        XCTAssertEqual(f.windowRows, 10)
        XCTAssertEqual(f.mappedBytes, 0, "opening maps nothing")
        for row in [35, 36, 72] {
            let p = try f.floats(at: row * perRow + 12)
            for i in 0..<12 { XCTAssertEqual(p[i], Float(row * perRow + 12 + i)) }  // the rest of the row is contiguous
        }
        XCTAssertEqual(f.mappedRanges, [(30 * 96)..<(40 * 96), (70 * 96)..<(80 * 96)])
        _ = try f.floats(at: 40 * perRow)
        XCTAssertEqual(f.mappedRanges, [(30 * 96)..<(50 * 96), (70 * 96)..<(80 * 96)], "adjacent windows merge")
        _ = try f.floats(at: 99 * perRow + 23)
        XCTAssertEqual(f.mappedRanges.last, (90 * 96)..<(100 * 96), "the last window stops at the end of the file")
        f.releaseResidentPages()
        XCTAssertEqual(try f.floats(at: 36 * perRow)[0], Float(36 * perRow), "pages fault back in after a release")
        // A constant file (C, H, W) is one row: one window whatever its size.
        let c = try MappedFile(
            path: url.path, expectedBytes: rows * perRow * 4, shape: [rows * 2, 3, 4], windowBytes: 1000)
        XCTAssertEqual(try c.floats(at: 2000)[0], 2000)
        XCTAssertEqual(c.mappedRanges, [0..<(rows * perRow * 4)])
    }

    func testLocalityPlanGivesEachWorkerOneStretchOfTimeRotatingEveryEpoch() {
        let segments = [100, 97, 95], batch = 8, w = 3
        let starts = [0, 100, 197]
        func block(_ b: Int) -> Set<Int> {
            var out = Set<Int>()
            for (s, n) in zip(starts, segments) { out.formUnion((s + n * b / w)..<(s + n * (b + 1) / w)) }
            return out
        }
        for epoch in 0..<4 {
            let plan = Sharding.LocalityPlan(segments: segments, workers: w, batch: batch, seed: 2020, epoch: epoch)
            XCTAssertEqual(
                plan, Sharding.LocalityPlan(segments: segments, workers: w, batch: batch, seed: 2020, epoch: epoch))
            var seen: [Int] = []
            for step in 0..<plan.stepsPerEpoch {
                let shards = plan.shards(step: step, batch: batch)
                XCTAssertLessThanOrEqual(shards.reduce(0) { $0 + $1.count }, batch)
                for (worker, shard) in shards.enumerated() {
                    XCTAssertTrue(
                        Set(shard).isSubset(of: block((worker + epoch) % w)),
                        "epoch \(epoch) worker \(worker) left its block")
                    seen += shard
                }
            }
            XCTAssertEqual(seen.sorted(), Array(0..<292), "epoch \(epoch) covers every sample exactly once")
            XCTAssertEqual(Set(plan.orders[0]), block(epoch % w), "worker 0 reads block \(epoch % w) in epoch \(epoch)")
        }
        XCTAssertNotEqual(
            Sharding.LocalityPlan(segments: segments, workers: w, batch: batch, seed: 2020, epoch: 0).orders[0],
            Sharding.LocalityPlan(segments: segments, workers: w, batch: batch, seed: 2020, epoch: 3).orders[0],
            "the order inside a block changes from epoch to epoch")
    }
}
