import Foundation
import RainConfig
import RainSupport

/// A reference fixture in the shared/fixtures/convlstm-small format: raw little-endian float32
/// tensors plus a manifest naming each file, its shape, and the model configuration.
public struct Fixture {
    public let directory: URL
    public let shape: ModelShape
    public let batch: Int, steps: Int
    public let loss: Double
    public let adamSteps: Int
    public let lr: Double, beta1: Double, beta2: Double, eps: Double
    private let tensors: [String: (file: String, shape: [Int])]

    public init(path: String) throws {
        directory = URL(fileURLWithPath: path)
        let manifestURL = directory.appendingPathComponent("manifest.json")
        guard let data = FileManager.default.contents(atPath: manifestURL.path),
            let m = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        else {
            throw SwiftRainError(
                manifestURL.path, "missing or malformed fixture manifest",
                hint: "point --fixture at a directory written by shared/reference/torch_convlstm.py --mode fixture")
        }
        func need<T>(_ v: Any?, _ key: String) throws -> T {
            guard let x = v as? T else {
                throw SwiftRainError(
                    "\(manifestURL.path): \(key)", "missing or wrong type", expected: "\(T.self)",
                    hint: "regenerate the fixture")
            }
            return x
        }
        let c: [String: Any] = try need(m["config"], "config")
        shape = ModelShape(
            cin: try need(c["Cin"], "config.Cin"), hidden: try need(c["F"], "config.F"),
            head: try need(c["F2"], "config.F2"),
            height: try need(c["H"], "config.H"), width: try need(c["W"], "config.W"),
            relu: try need(c["relu"], "config.relu"))
        batch = try need(c["B"], "config.B")
        steps = try need(c["S"], "config.S")
        loss = try need(m["loss"], "loss")
        let adam: [String: Any] = try need(c["adam"], "config.adam")
        adamSteps = try need(adam["steps"], "config.adam.steps")
        lr = try need(adam["lr"], "config.adam.lr")
        let betas: [Double] = try need(adam["betas"], "config.adam.betas")
        beta1 = betas[0]
        beta2 = betas[1]
        eps = try need(adam["eps"], "config.adam.eps")
        let t: [String: [String: Any]] = try need(m["tensors"], "tensors")
        tensors = try t.mapValues {
            (file: try need($0["file"], "tensors.*.file"), shape: try need($0["shape"], "tensors.*.shape"))
        }
    }

    /// Reads tensor `name`, checking its shape when `expect` is given.
    public func tensor(_ name: String, expect: [Int]? = nil) throws -> [Float] {
        guard let t = tensors[name] else {
            throw SwiftRainError(
                directory.path, "fixture has no tensor '\(name)'",
                hint: "regenerate the fixture with shared/reference/torch_convlstm.py")
        }
        if let expect, expect != t.shape {
            throw SwiftRainError(
                "\(directory.path): \(name)", "shape mismatch", expected: "\(expect)", found: "\(t.shape)",
                hint: "the fixture does not match this model configuration")
        }
        let url = directory.appendingPathComponent(t.file)
        guard let d = FileManager.default.contents(atPath: url.path), d.count == 4 * t.shape.reduce(1, *) else {
            throw SwiftRainError(
                url.path, "missing or truncated tensor file", expected: "\(4 * t.shape.reduce(1, *)) bytes",
                hint: "regenerate the fixture")
        }
        return d.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
    }

    /// The parameters stored under `prefix` (e.g. "param." or "adam1.param."), as a flat buffer laid out by `layout`.
    public func parameters(_ prefix: String, layout: ParameterLayout) throws -> FlatBuffer {
        let p = FlatBuffer(count: layout.count)
        for e in layout.entries {
            guard let t = tensors[prefix + e.name] else {
                throw SwiftRainError(
                    directory.path, "fixture has no tensor '\(prefix + e.name)'", hint: "regenerate the fixture")
            }
            try layout.check(e.name, shape: t.shape, source: directory.appendingPathComponent(t.file).path)
            let v = try tensor(prefix + e.name)
            _ = p[e].update(from: v)
        }
        return p
    }
}
