import Foundation

/// `swiftrain bench allreduce`: allreduce of one gradient-sized buffer among N peer processes on
/// loopback, star (through a hub, as the coordinator does) and ring (among the peers), next to the
/// loopback bandwidth measured in the same run and the bandwidth-optimal bound 2(N−1)/N · S / B.
public enum BenchAllreduce {
    public struct Row: Encodable {
        public var algorithm: String
        public var processes: Int
        public var medianSeconds: Double
        /// NCCL's bus bandwidth: S / t · 2(N−1)/N.
        public var busGBps: Double
        public var boundSeconds: Double
        /// bound / measured time (1 = at the bound).
        public var ofBound: Double
    }
    public struct Report: Encodable {
        public var bytes: Int
        public var loopbackGBps: Double
        public var rows: [Row]
    }

    /// One-direction ZeroMQ TCP loopback bandwidth with `bytes` messages, median of `reps`.
    public static func loopbackGBps(bytes: Int, reps: Int) throws -> Double {
        let ctx = try ZMQContext()
        let pull = try ZMQSocket(ctx, .pull, receiveTimeoutMs: 30_000)
        try pull.setMaxMessageSize(-1)
        try pull.bind("tcp://127.0.0.1:*")
        let push = try ZMQSocket(ctx, .push)
        try push.connect(try pull.lastEndpoint())
        let payload = [UInt8](repeating: 7, count: bytes)
        try push.send([payload]); _ = try pull.receive()
        var times: [Double] = []
        for _ in 0..<reps {
            let t = DispatchTime.now().uptimeNanoseconds
            try push.send([payload]); _ = try pull.receive()
            times.append(Double(DispatchTime.now().uptimeNanoseconds - t) / 1e9)
        }
        return Double(bytes) / times.sorted()[times.count / 2] / 1e9
    }

    public static func run(floats: Int, processes: [Int], reps: Int, binary: String, log: (String) -> Void) throws -> Report {
        let bytes = 4 * floats
        let b = try loopbackGBps(bytes: bytes, reps: reps)
        log("loopback TCP (ZeroMQ, \(bytes >> 20) MiB messages): \(String(format: "%.2f", b)) GB/s")
        var rows: [Row] = []
        for n in processes {
            for algorithm in ["star", "ring"] {
                let t = try measure(algorithm: algorithm, n: n, floats: floats, reps: reps, binary: binary)
                let factor = 2 * Double(n - 1) / Double(n)
                let bound = factor * Double(bytes) / (b * 1e9)
                rows.append(Row(algorithm: algorithm, processes: n, medianSeconds: t, busGBps: Double(bytes) / t * factor / 1e9,
                                boundSeconds: bound, ofBound: bound / t))
                log("\(algorithm) N=\(n): \(String(format: "%.1f", t * 1000)) ms")
            }
        }
        return Report(bytes: bytes, loopbackGBps: b, rows: rows)
    }

    /// Median seconds of one allreduce among `n` peer processes (the first repetition is a warm-up).
    static func measure(algorithm: String, n: Int, floats: Int, reps: Int, binary: String) throws -> Double {
        let ctx = try ZMQContext()
        let hub = try ZMQSocket(ctx, .router, lingerMs: 1000, receiveTimeoutMs: 60_000)
        try hub.setMaxMessageSize(-1)
        try hub.bind("tcp://127.0.0.1:*")
        let endpoint = try hub.lastEndpoint()
        let children = try (0..<n).map { r -> Process in
            let p = Process()
            p.executableURL = URL(fileURLWithPath: binary)
            p.arguments = ["bench", "allreduce", "--peer-of", endpoint, "--rank", "\(r)", "--floats", "\(floats)", "--algorithm", algorithm]
            var env = ProcessInfo.processInfo.environment
            env["OPENBLAS_NUM_THREADS"] = "1"
            p.environment = env
            try p.run()
            return p
        }
        defer { for c in children where c.isRunning { c.terminate() } }
        var ids = [[UInt8]](repeating: [], count: n), addresses = [String](repeating: "", count: n)
        for _ in 0..<n {
            let m = try hub.receive()  // identity, rank, ring address
            let r = Int(String(decoding: m[1], as: UTF8.self))!
            ids[r] = m[0]; addresses[r] = String(decoding: m[2], as: UTF8.self)
        }
        let ring = Array(addresses.joined(separator: " ").utf8)
        for id in ids { try hub.send([id, Array("ring".utf8), ring]) }
        var sum = [Float](repeating: 0, count: floats)
        var times: [Double] = []
        for _ in 0...reps {
            let t = DispatchTime.now().uptimeNanoseconds
            for id in ids { try hub.send([id, Array("go".utf8)]) }
            if algorithm == "star" {
                // The coordinator's part: receive every gradient, add, send the result back to each.
                for i in 0..<floats { sum[i] = 0 }
                for _ in 0..<n {
                    let m = try hub.receive()
                    m[2].withUnsafeBytes { raw in
                        let g = raw.bindMemory(to: Float.self)
                        for i in 0..<floats { sum[i] += g[i] }
                    }
                }
                let bytes = sum.withUnsafeBytes { [UInt8]($0) }
                for id in ids { try hub.send([id, Array("sum".utf8), bytes]) }
            }
            for _ in 0..<n { _ = try hub.receive() }  // "done"
            times.append(Double(DispatchTime.now().uptimeNanoseconds - t) / 1e9)
        }
        for id in ids { try hub.send([id, Array("quit".utf8)]) }
        for c in children { c.waitUntilExit() }
        return times.dropFirst().sorted()[(times.count - 1) / 2]
    }

    /// A peer process of the benchmark.
    public static func peer(hub endpoint: String, rank: Int, floats: Int, algorithm: String) throws {
        let ctx = try ZMQContext()
        let control = try ZMQSocket(ctx, .dealer, lingerMs: 1000, receiveTimeoutMs: 60_000)
        try control.setMaxMessageSize(-1)
        try control.connect(endpoint)
        let ring = try RingAllreduce(context: ctx, bind: "tcp://127.0.0.1:*", advertiseHost: "127.0.0.1", runId: 1, curve: nil)
        defer { ring.close() }
        try control.send([Array("\(rank)".utf8), Array(ring.address.utf8)])
        let members = String(decoding: try control.receive()[1], as: UTF8.self).split(separator: " ").map(String.init)
        let buffer = FlatBuffer(count: floats)
        for i in 0..<floats { buffer.pointer[i] = Float(rank + 1) * 1e-3 }
        var rep = 0
        while true {
            let cmd = String(decoding: try control.receive()[0], as: UTF8.self)
            if cmd == "quit" { return }
            rep += 1
            if algorithm == "star" {
                try control.send([Array("grad".utf8), [UInt8](UnsafeRawBufferPointer(buffer.buffer))])
                _ = try control.receive()
            } else {
                try ring.allreduce(buffer.buffer, ring: members, position: rank, step: rep, round: rep, timeoutMs: 60_000)
            }
            try control.send([Array("done".utf8)])
        }
    }

    public static func table(_ r: Report) -> String {
        var out = "allreduce of \(r.bytes >> 20) MiB (\(r.bytes / 4) floats); loopback bandwidth B = \(String(format: "%.2f", r.loopbackGBps)) GB/s\n"
        out += "algorithm  N   median ms   bus GB/s   bound ms   of bound\n"
        for x in r.rows {
            out += x.algorithm.padding(toLength: 9, withPad: " ", startingAt: 0) + String(x.processes).leftPad(3)
                + String(format: "%12.1f%11.2f%11.1f%10.0f%%\n", x.medianSeconds * 1000, x.busGBps, x.boundSeconds * 1000, 100 * x.ofBound)
        }
        return out
    }
}
