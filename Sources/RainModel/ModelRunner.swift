import Dispatch
import RainConfig
import RainData
import RainSupport

/// Sums over a shard of samples: what a worker returns for a step or a validation share, and what
/// evaluation adds up. Summing shards' sums gives the sums over their union.
public struct ShardSums: Equatable {
    public var count: Int
    /// Σ over samples of the transformed-space loss.
    public var lossSum: Double
    /// Per lead time: Σ latitude-weighted squared error in physical units, and Σ pixel weights.
    public var leadSquaredError: [Double] = []
    public var leadWeight: [Double] = []
    public init(count: Int, lossSum: Double, leadSquaredError: [Double] = [], leadWeight: [Double] = []) {
        self.count = count
        self.lossSum = lossSum
        self.leadSquaredError = leadSquaredError
        self.leadWeight = leadWeight
    }
}

/// Samples through the model (DESIGN.md §5 "workers own compute"): maps the data itself, assembles
/// the samples named by index, and runs them a micro-batch at a time: gradient sums for training,
/// loss and per-lead errors for validation, forecasts for evaluation and export.
public final class ModelRunner {
    public let config: Config
    public let catalog: DataCatalog
    public let index: SampleIndex
    public let assembler: SampleAssembler
    public let shape: ModelShape
    public let layout: ParameterLayout
    public let params: FlatBuffer
    public let grads: FlatBuffer
    private var models: [Int: ConvLSTMForecaster] = [:]
    /// Two micro-batches of inputs and targets: the next is assembled while the current one computes.
    private let buffers: [ChunkBuffer]
    /// Where the next micro-batch is assembled (one at a time, in order).
    private let assembly = DispatchQueue(label: "swiftrain.assembly")

    /// Maps `config`'s data and builds the index and assembler; parameters start at zero (load them
    /// with `load(parameters:)`).
    public init(config: Config) throws {
        try ConvLSTMForecaster.check(precision: config.precision, algorithm: .standard)
        self.config = config
        catalog = try DataCatalog(paths: config.data)
        let spec = try SampleSpec(config)
        index = try SampleIndex(spec: spec, catalog: catalog)
        assembler = try SampleAssembler(
            spec: spec, catalog: catalog, normalisation: try Normalisation.load(path: config.normalisation),
            config: config)
        shape = ModelShape(assembler.layout, config)
        layout = ParameterLayout(shape)
        params = FlatBuffer(count: layout.count)
        grads = FlatBuffer(count: layout.count)
        let mb = max(1, config.microBatch)
        let (ic, tc) = (mb * assembler.inputCount, mb * assembler.targetCount)
        buffers = (0..<2).map { _ in ChunkBuffer(input: ic, target: tc) }
    }

    /// Copies `values` (laid out by `layout`) into the runner's parameters.
    public func load(parameters values: UnsafeBufferPointer<Float>) {
        _ = params.buffer.update(from: values)
    }

    /// How much of each data file this worker mapped (DESIGN §5: workers map only what their shards need).
    public func mappedSummary() -> String {
        let files = catalog.datasets.flatMap { $0.files.values }.filter(\.isTemporal).sorted { $0.name < $1.name }
        let parts = files.map { f -> String in
            let rows = f.mapped.mappedRanges.map {
                "\($0.lowerBound / f.mapped.rowBytes)..<\(($0.upperBound + f.mapped.rowBytes - 1) / f.mapped.rowBytes)"
            }
            return
                """
                \(f.name) rows \(rows.isEmpty ? "none" : rows.joined(separator: ",")) of \
                \(f.mapped.byteCount / f.mapped.rowBytes)
                """
        }
        let mapped = files.reduce(0) { $0 + $1.mapped.mappedBytes },
            total = files.reduce(0) { $0 + $1.mapped.byteCount }
        return "mapped \(mapped >> 10) KiB of \(total >> 10) KiB of temporal data: " + parts.joined(separator: "; ")
    }

    func model(_ b: Int) -> ConvLSTMForecaster {
        if let m = models[b] { return m }
        let m = ConvLSTMForecaster(shape: shape, batch: b, steps: assembler.steps, precision: config.precision)
        models[b] = m
        return m
    }

    /// Assembles `samples` of `partition` into `buffer`; a failure is kept in the buffer, to be thrown
    /// by the step that uses it.
    private func assemble(_ part: PartitionSamples, _ samples: ArraySlice<Int>, into buffer: ChunkBuffer) {
        let ic = assembler.inputCount, tc = assembler.targetCount
        do {
            for (j, s) in samples.enumerated() {
                try assembler.assemble(part.sample(s), input: buffer.input + j * ic, target: buffer.target + j * tc)
            }
            buffer.error = nil
        } catch {
            buffer.error = error
        }
    }

    private func check(_ samples: [Int], _ part: PartitionSamples) throws {
        if let bad = samples.first(where: { $0 < 0 || $0 >= part.count }) {
            throw SwiftRainError(
                "step",
                "sample index \(bad) outside the \(part.partition.name.rawValue) partition (\(part.count) samples)",
                hint: "the coordinator and this worker see different data; give every host the same dataset")
        }
    }

    /// Gradient of the global-batch mean loss restricted to `samples` (accumulated into `grads`):
    /// summing every worker's `grads` gives the gradient over the whole global batch.
    public func train(samples: [Int], globalBatch: Int) throws -> ShardSums {
        grads.zero()
        let lossSum = try forwardInChunks(samples, index.samples(.train), backwardOver: globalBatch) { _, _, _, _ in }
        return ShardSums(count: samples.count, lossSum: lossSum)
    }

    /// Runs `samples` of `part` through the model a micro-batch at a time; `each` sees every chunk's
    /// outputs (transformed space, in the model) while the targets are still in `target`. With
    /// `backwardOver` (the global batch), also backpropagates each chunk's share of the mean loss into
    /// `grads`. Returns Σ loss.
    private func forwardInChunks(
        _ samples: [Int], _ part: PartitionSamples, backwardOver globalBatch: Int? = nil,
        _ each: (_ start: Int, _ chunk: ArraySlice<Int>, ConvLSTMForecaster, _ target: UnsafePointer<Float>) -> Void
    ) throws -> Double {
        try check(samples, part)
        var lossSum = 0.0
        let mb = max(1, config.microBatch)
        let chunks = stride(from: 0, to: samples.count, by: mb).map { samples[$0..<min(samples.count, $0 + mb)] }
        // Micro-batch k + 1 is assembled on `assembly` while k computes here (its page faults and copies
        // overlap the GEMMs); `ready` is signalled once per assembled chunk.
        let ready = DispatchSemaphore(value: 0)
        func prefetch(_ k: Int) {
            let buffer = buffers[k % 2], chunk = chunks[k]
            assembly.async {
                self.assemble(part, chunk, into: buffer)
                ready.signal()
            }
        }
        if !chunks.isEmpty { prefetch(0) }
        for (k, chunk) in chunks.enumerated() {
            ready.wait()
            let buffer = buffers[k % 2]
            // Nothing of this pass is pending here (k + 1 starts below), so throwing leaves no work behind.
            if let error = buffer.error { throw error }
            if k + 1 < chunks.count { prefetch(k + 1) }
            let m = model(chunk.count)
            m.forward(params: params, input: buffer.input)
            let scale = Float(chunk.count) / Float(globalBatch ?? chunk.count)
            lossSum += m.loss(target: buffer.target, gradientScale: scale) * Double(chunk.count)
            if globalBatch != nil { m.backward(params: params, grads: grads, input: buffer.input) }
            each(chunk.startIndex - samples.startIndex, chunk, m, buffer.target)
        }
        return lossSum
    }

    /// Loss and per-lead-time squared errors in physical units (latitude-weighted) over `samples` of `partition`.
    public func evaluate(samples: [Int], partition: Partition.Name = .valid) throws -> ShardSums {
        let part = index.samples(partition)
        let leads = index.spec.leads.count, hw = shape.plane, std = assembler.targetStd,
            scale = Double(index.spec.targetUnits.scale)
        var sq = [Double](repeating: 0, count: leads), wsum = [Double](repeating: 0, count: leads)
        let lossSum = try forwardInChunks(samples, part) { _, chunk, m, target in
            for (j, s) in chunk.enumerated() {
                let l = index.spec.leadIndex(part.sample(s).lead)!
                for q in 0..<hw {
                    let w = Double(m.latWeights[q / shape.width])
                    let d =
                        scale
                        * Double(
                            Normalisation.inverse(m.output.pointer[j * hw + q], std: std)
                                - Normalisation.inverse(target[j * hw + q], std: std))
                    sq[l] += w * d * d
                    wsum[l] += w
                }
            }
        }
        return ShardSums(count: samples.count, lossSum: lossSum, leadSquaredError: sq, leadWeight: wsum)
    }

    /// Forecasts for `samples` of `partition` in the target file's units (the transform inverted), and
    /// the summed transformed-space loss against their targets.
    public func forecast(samples: [Int], partition: Partition.Name) throws -> (forecast: [Float], lossSum: Double) {
        let hw = shape.plane, std = assembler.targetStd
        var out = [Float](repeating: 0, count: samples.count * hw)
        let lossSum = try forwardInChunks(samples, index.samples(partition)) { start, chunk, m, _ in
            for q in 0..<(chunk.count * hw) {
                out[start * hw + q] = Normalisation.inverse(m.output.pointer[q], std: std)
            }
        }
        return (out, lossSum)
    }
}

extension ModelRunner {
    /// Forecasts for `count` assembled inputs (`assembler.inputCount` floats each), in the target file's
    /// units (the transform inverted), a micro-batch at a time: for inputs outside every partition.
    public func forecast(inputs: UnsafePointer<Float>, count: Int) -> [Float] {
        let hw = shape.plane, ic = assembler.inputCount, std = assembler.targetStd, mb = max(1, config.microBatch)
        var out = [Float](repeating: 0, count: count * hw)
        for start in stride(from: 0, to: count, by: mb) {
            let n = min(mb, count - start)
            let m = model(n)
            m.forward(params: params, input: inputs + start * ic)
            for q in 0..<(n * hw) { out[start * hw + q] = Normalisation.inverse(m.output.pointer[q], std: std) }
        }
        return out
    }
}

/// One micro-batch's inputs and targets, and the error its assembly met, if any.
final class ChunkBuffer {
    let input: UnsafeMutablePointer<Float>, target: UnsafeMutablePointer<Float>
    private let counts: (Int, Int)
    var error: Error?
    init(input: Int, target: Int) {
        counts = (max(1, input), max(1, target))
        self.input = .allocate(capacity: counts.0)
        self.input.initialize(repeating: 0, count: counts.0)
        self.target = .allocate(capacity: counts.1)
        self.target.initialize(repeating: 0, count: counts.1)
    }
    deinit {
        input.deallocate()
        target.deallocate()
    }
}
