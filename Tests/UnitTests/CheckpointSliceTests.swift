import Foundation
import RainModel
import RainSupport
import RainTraining
import XCTest

/// Checkpoints written as slices by several "workers" and committed by a manifest: read back whole by
/// any reader, refused with a reason when a slice is missing, damaged or from elsewhere.
final class CheckpointSliceTests: XCTestCase {
    let layout = ParameterLayout(ModelShape(cin: 2, hidden: 3, head: 2, height: 4, width: 5, relu: true))

    func buffers(_ seed: UInt64) -> (FlatBuffer, FlatBuffer, FlatBuffer) {
        let p = FlatBuffer.initialParameters(layout, seed: seed)
        let m = FlatBuffer(count: layout.count), v = FlatBuffer(count: layout.count)
        for i in 0..<layout.count {
            m.pointer[i] = Float(i) * 1e-3
            v.pointer[i] = Float(i % 7) * 1e-4
        }
        return (p, m, v)
    }

    func state(step: Int) -> TrainingState {
        var adam = Adam(lr: 1e-3)
        adam.step = step
        return TrainingState(
            layout: layout.entries, configHash: "h", epoch: 1, step: step, globalStep: step, adam: adam,
            scheduler: PlateauScheduler(), bestValLoss: 0.5)
    }

    /// Each of `parts` writers holds the same replica and writes its own range.
    func save(_ dir: String, tag: String, parts: Int, seed: UInt64, step: Int) throws -> [CheckpointSlice] {
        let (p, m, v) = buffers(seed)
        return try (0..<parts).map {
            try Checkpoint.writeSlice(
                checkpoints: dir, directory: "slices/\(tag)", part: $0, of: parts, globalStep: step, params: p, m: m,
                v: v)
        }
    }

    func testSlicesFromAnyWorkerCountReadBackWhole() throws {
        let dir = temporaryDirectory(self).path
        let (p, m, v) = buffers(3)
        for parts in [1, 3, 4, layout.count + 2] {  // more parts than parameters: some slices are empty
            let slices = try save(dir, tag: "n\(parts)", parts: parts, seed: 3, step: 9)
            XCTAssertEqual(slices.count, parts)
            let path = dir + "/last.ckpt"
            try Checkpoint.commit(
                path: path, state: state(step: 9), slices: slices.reversed(), parameters: layout.count)
            let (s, p2, m2, v2) = try Checkpoint.read(path: path, layout: layout)
            XCTAssertEqual(s.globalStep, 9)
            XCTAssertEqual(s.adam.step, 9)
            XCTAssertEqual(p2.values, p.values, "\(parts) parts")
            XCTAssertEqual(m2.values, m.values)
            XCTAssertEqual(v2.values, v.values)
        }
    }

    func testACommitNeedsEverySliceAndAReaderChecksEach() throws {
        let dir = temporaryDirectory(self).path
        let path = dir + "/last.ckpt"
        var slices = try save(dir, tag: "a", parts: 3, seed: 4, step: 2)
        // A missing part: the commit refuses, and the previous manifest (none here) stands.
        var e = errorText {
            try Checkpoint.commit(
                path: path, state: self.state(step: 2), slices: [slices[0], slices[2]], parameters: self.layout.count)
        }
        XCTAssertTrue(e.contains("do not cover the parameters once") && e.contains("starting at"), e)
        XCTAssertFalse(FileManager.default.fileExists(atPath: path))
        // A slice file gone from this host (no shared run directory).
        try FileManager.default.removeItem(atPath: dir + "/" + slices[1].file)
        e = errorText {
            try Checkpoint.commit(path: path, state: self.state(step: 2), slices: slices, parameters: self.layout.count)
        }
        XCTAssertTrue(e.contains("missing or short") && e.contains("shared"), e)

        slices = try save(dir, tag: "b", parts: 3, seed: 4, step: 2)
        try Checkpoint.commit(path: path, state: state(step: 2), slices: slices, parameters: layout.count)
        // A flipped byte in one slice's payload.
        let victim = URL(fileURLWithPath: dir + "/" + slices[2].file)
        var bytes = try Data(contentsOf: victim)
        bytes[bytes.count - 5] ^= 0x10
        try bytes.write(to: victim)
        e = errorText { _ = try Checkpoint.read(path: path, layout: self.layout) }
        XCTAssertTrue(e.contains("part-2-of-3.bin") && e.contains("checksum mismatch"), e)
        // A slice of another checkpoint put in its place (same range, other values).
        let other = try save(dir, tag: "c", parts: 3, seed: 5, step: 2)
        try FileManager.default.copyItem(atPath: dir + "/" + other[2].file, toPath: dir + "/" + slices[2].file + ".x")
        try FileManager.default.removeItem(at: victim)
        try FileManager.default.moveItem(atPath: dir + "/" + slices[2].file + ".x", toPath: victim.path)
        e = errorText { _ = try Checkpoint.read(path: path, layout: self.layout) }
        XCTAssertTrue(e.contains("checksum mismatch"), e)
    }

    func testOnlyReferencedSliceDirectoriesAreKept() throws {
        let dir = temporaryDirectory(self).path
        let a = try save(dir, tag: "g1", parts: 2, seed: 1, step: 1)
        try Checkpoint.commit(path: dir + "/best.ckpt", state: state(step: 1), slices: a, parameters: layout.count)
        _ = try save(dir, tag: "g2", parts: 2, seed: 1, step: 2)
        let c = try save(dir, tag: "g3", parts: 2, seed: 1, step: 3)
        try Checkpoint.commit(path: dir + "/last.ckpt", state: state(step: 3), slices: c, parameters: layout.count)
        Checkpoint.removeUnreferencedSlices(checkpoints: dir, keep: [dir + "/last.ckpt", dir + "/best.ckpt"])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir + "/slices").sorted(), ["g1", "g3"])
        XCTAssertNoThrow(try Checkpoint.read(path: dir + "/best.ckpt", layout: layout))
        XCTAssertNoThrow(try Checkpoint.read(path: dir + "/last.ckpt", layout: layout))
    }
}
