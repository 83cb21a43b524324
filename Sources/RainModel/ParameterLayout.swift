import RainConfig
import RainData
import RainSupport

/// Shape of PyRain's ConvLSTMForecaster.
public struct ModelShape: Equatable, Codable {
    /// Input channels C_in, hidden channels F, head channels F2, grid H×W.
    public var cin: Int, hidden: Int, head: Int, height: Int, width: Int
    /// Final ReLU (PyRain's default; `no_relu` turns it off).
    public var relu: Bool
    public init(cin: Int, hidden: Int, head: Int, height: Int, width: Int, relu: Bool) {
        self.cin = cin
        self.hidden = hidden
        self.head = head
        self.height = height
        self.width = width
        self.relu = relu
    }
    public var plane: Int { height * width }
}

extension ModelShape {
    /// PyRain's forecaster for `config` on `input`: C_in and the grid from the input layout, F, F2 and
    /// the ReLU from `hidden_1`, `hidden_2` and `no_relu`.
    public init(_ input: InputLayout, _ config: Config) {
        self.init(
            cin: input.channels, hidden: config.hidden1, head: config.hidden2, height: input.height, width: input.width,
            relu: !config.noRelu)
    }

    /// The shape from the configuration alone (the coordinator knows it before any worker has data).
    public init(config: Config) throws { self.init(try InputLayout(config: config), config) }
}

/// One named tensor of the flat parameter buffer.
public struct ParameterEntry: Equatable, Codable {
    public var name: String
    public var shape: [Int]
    public var offset: Int
    public var count: Int { shape.reduce(1, *) }
}

/// ConvLSTMForecaster's tensors, in the flat buffer's order; the raw value is SwiftRain's name (in
/// checkpoints), `pyrainName` PyRain's.
public enum ParameterTensor: String, CaseIterable, Codable {
    case wci = "Wci", wcf = "Wcf", wco = "Wco"
    case convWeight = "conv.weight", convBias = "conv.bias"
    case head1Weight = "head1.weight", head1Bias = "head1.bias"
    case head2Weight = "head2.weight", head2Bias = "head2.bias"

    /// The name in PyRain's own `ConvLSTMForecaster.state_dict()` (src/benchmark/models.py): the cell is
    /// the submodule `rnn`, its convolution `_conv`, the head `out_layer1` / `out_layer2` (DESIGN.md §4).
    public var pyrainName: String {
        switch self {
        case .wci, .wcf, .wco: return "rnn.\(rawValue)"
        case .convWeight: return "rnn._conv.weight"
        case .convBias: return "rnn._conv.bias"
        case .head1Weight: return "out_layer1.weight"
        case .head1Bias: return "out_layer1.bias"
        case .head2Weight: return "out_layer2.weight"
        case .head2Bias: return "out_layer2.bias"
        }
    }

    /// The prefix a PyRain Lightning checkpoint's `state_dict` puts before every name (its module `net`).
    public static let lightningPrefix = "net."
}

/// The flat parameter layout (DESIGN.md §4), in PyTorch `state_dict()` order of ConvLSTMForecaster.
/// Parameters, gradients and Adam's m and v are each one buffer laid out by this table.
public struct ParameterLayout: Equatable, Codable {
    public var entries: [ParameterEntry]
    public var count: Int { entries.last.map { $0.offset + $0.count } ?? 0 }

    public init(_ s: ModelShape) {
        func shape(_ t: ParameterTensor) -> [Int] {
            switch t {
            case .wci, .wcf, .wco: return [1, s.hidden, s.height, s.width]
            case .convWeight: return [4 * s.hidden, s.cin + s.hidden, 3, 3]
            case .convBias: return [4 * s.hidden]
            case .head1Weight: return [s.head, s.hidden, 1, 1]
            case .head1Bias: return [s.head]
            case .head2Weight: return [1, s.head, 1, 1]
            case .head2Bias: return [1]
            }
        }
        var offset = 0
        entries = ParameterTensor.allCases.map { t in
            defer { offset += shape(t).reduce(1, *) }
            return ParameterEntry(name: t.rawValue, shape: shape(t), offset: offset)
        }
    }

    /// The entry of `tensor` (entries follow `ParameterTensor`'s order).
    public subscript(_ tensor: ParameterTensor) -> ParameterEntry {
        entries[ParameterTensor.allCases.firstIndex(of: tensor)!]
    }

    /// Checks that `shape` of tensor `name` from `source` matches this layout.
    public func check(_ name: String, shape: [Int], source: String) throws {
        guard let e = entries.first(where: { $0.name == name }) else {
            throw SwiftRainError(
                "\(source): \(name)", "unknown parameter tensor",
                expected: entries.map(\.name).joined(separator: ", "),
                hint: "the file was not written for ConvLSTMForecaster")
        }
        guard e.shape == shape else {
            throw SwiftRainError(
                "\(source): \(name)", "shape mismatch", expected: "\(e.shape) (from the model configuration)",
                found: "\(shape)",
                hint:
                    """
                    set hidden_1, hidden_2, the sources/inc_time (C_in) and the grid to the values the file was \
                    made with
                    """
            )
        }
    }
}

/// A contiguous Float32 buffer (parameters, gradients, Adam moments), owned and zero-initialised.
public final class FlatBuffer {
    public let count: Int
    public let pointer: UnsafeMutablePointer<Float>

    public init(count: Int) {
        self.count = count
        pointer = .allocate(capacity: max(1, count))
        pointer.initialize(repeating: 0, count: max(1, count))
    }
    deinit { pointer.deallocate() }

    public subscript(_ e: ParameterEntry) -> UnsafeMutableBufferPointer<Float> {
        UnsafeMutableBufferPointer(start: pointer + e.offset, count: e.count)
    }
    /// A view of the storage; valid only while this buffer is alive (use `values` for a copy).
    public var buffer: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: pointer, count: count) }
    /// A copy of the contents.
    public var values: [Float] { Array(buffer) }
    public func zero() { pointer.update(repeating: 0, count: count) }
    public func copy(from other: FlatBuffer) { pointer.update(from: other.pointer, count: min(count, other.count)) }
}

extension FlatBuffer {
    /// PyTorch's default initialisation for ConvLSTMForecaster from a seeded generator: conv weights
    /// kaiming_uniform(a = √5), i.e. U(±1/√fan_in), biases U(±1/√fan_in), peepholes 0.
    /// (Same distributions as torch; not torch's random stream.)
    public static func initialParameters(_ layout: ParameterLayout, seed: UInt64) -> FlatBuffer {
        let p = FlatBuffer(count: layout.count)
        var rng = SplitMix(seed ^ 0xC0_4F15_7A11)
        let pairs: [(ParameterTensor, ParameterTensor)] = [
            (.convWeight, .convBias), (.head1Weight, .head1Bias), (.head2Weight, .head2Bias),
        ]
        for (weight, bias) in pairs {
            let w = layout[weight]
            let fanIn = w.shape.dropFirst().reduce(1, *)
            let bound = Float(1 / Double(fanIn).squareRoot())
            for e in [w, layout[bias]] {
                let b = p[e]
                for i in 0..<b.count { b[i] = Float(rng.uniform() * 2 - 1) * bound }
            }
        }
        return p
    }
}
