import Foundation
import RainData
import RainModel
import RainSupport
import XCTest

/// The runner assembles micro-batch k + 1 on another thread while k computes, into two alternating
/// buffers. The oracle is the same runner fed one sample per call (one micro-batch, nothing prefetched):
/// a buffer handed out too early, or the wrong one, shows up as another sample's numbers.
final class ModelRunnerTests: XCTestCase {
    func runner(_ tiny: TinyDataset, microBatch: Int) throws -> ModelRunner {
        var c = tiny.config()
        c.normalisation = tiny.root.appendingPathComponent("norm.json").path
        c.hidden1 = 4
        c.hidden2 = 2
        c.microBatch = microBatch
        try tiny.normalisation.write(path: c.normalisation)
        let r = try ModelRunner(config: c)
        FlatBuffer.initialParameters(r.layout, seed: 7).values.withUnsafeBufferPointer { r.load(parameters: $0) }
        return r
    }

    func testPrefetchedMicroBatchesMatchOneSampleAtATime() throws {
        let tiny = try TinyDataset(root: temporaryDirectory(self))
        let r = try runner(tiny, microBatch: 1)
        let count = r.index.samples(.train).count
        // Samples far apart in time, in no order, so neighbouring buffers hold different numbers.
        let samples = [0, count - 1, count / 2, 3, count / 3, count - 5, 1]

        let (all, allLoss) = try r.forecast(samples: samples, partition: .train)
        var one: [Float] = [], oneLoss = 0.0
        for s in samples {
            let (f, l) = try r.forecast(samples: [s], partition: .train)
            one += f
            oneLoss += l
        }
        XCTAssertEqual(all, one, "forecasts over 7 prefetched micro-batches = 7 single calls, bit for bit")
        XCTAssertEqual(allLoss, oneLoss, accuracy: 1e-9 * abs(oneLoss))
        XCTAssertNotEqual(Array(all[0..<8]), Array(all[8..<16]), "the samples differ, so a mix-up would show")

        _ = try r.train(samples: samples, globalBatch: samples.count)
        let together = r.grads.values
        var summed = [Double](repeating: 0, count: together.count)
        for s in samples {
            _ = try r.train(samples: [s], globalBatch: samples.count)
            for (i, g) in r.grads.values.enumerated() { summed[i] += Double(g) }
        }
        let scale = summed.map(abs).max()!
        XCTAssertGreaterThan(scale, 0)
        let worst = zip(together, summed).map { abs(Double($0) - $1) }.max()!
        XCTAssertLessThan(worst, 1e-5 * scale, "gradients over prefetched micro-batches = the sum of single ones")
    }
}
