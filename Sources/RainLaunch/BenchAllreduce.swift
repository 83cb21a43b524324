import Foundation
import RainModel
import RainProtocol
import RainSupport
import RainTraining
import RainZMQ

/// `swiftrain bench allreduce`: allreduce of one gradient-sized buffer among N peer processes on
/// loopback, star (through a hub, as the coordinator does) and ring (among the peers), next to the
/// loopback bandwidth measured in the same run and the bandwidth-optimal bound 2(N−1)/N · S / B.
public enum BenchAllreduce {
    /// The ring's default pipelining piece, in KiB (what `--piece-kib` starts from).
    public static let defaultPieceKiB = RingAllreduce.defaultPieceFloats / 256
    public struct Row: Encodable {
        public var algorithm: String
        public var processes: Int
        public var medianSeconds: Double
        /// NCCL's bus bandwidth: S / t · 2(N−1)/N.
        public var busGBps: Double
        /// The bandwidth-optimal bound 2(N−1)/N · S / B, as if each process had its own link of bandwidth B.
        public var boundSeconds: Double
        /// bound / measured time (1 = at the bound).
        public var ofBound: Double
        /// On one host every process shares the same loopback (and cores): all N · 2(N−1)/N · S bytes go
        /// through it, so no allreduce here beats 2(N−1) · S / B.
        public var hostBoundSeconds: Double
        public var ofHostBound: Double
    }
    public struct Report: Encodable {
        public var bytes: Int
        public var loopbackGBps: Double
        public var rows: [Row]
    }

    /// One-direction ZeroMQ TCP loopback bandwidth: `bytes` streamed in pieces of `pieceBytes`, sent
    /// and received without copies (the ring's own path, minus its arithmetic), median of `reps`.
    public static func loopbackGBps(bytes: Int, pieceBytes: Int, reps: Int) throws -> Double {
        let ctx = try ZMQContext()
        let pull = try ZMQSocket(ctx, .pull, receiveTimeoutMs: 30_000)
        try pull.setMaxMessageSize(-1)
        try pull.bind("tcp://127.0.0.1:*")
        let push = try ZMQSocket(ctx, .push)
        try push.connect(try pull.lastEndpoint())
        let payload = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes, alignment: 64)
        defer { payload.deallocate() }
        payload.initializeMemory(as: UInt8.self, repeating: 7)
        let tracker = ZMQSendTracker()
        func once() throws {
            for start in stride(from: 0, to: bytes, by: pieceBytes) {
                try push.send(
                    [],
                    noCopyPayload: UnsafeRawBufferPointer(rebasing: payload[start..<min(start + pieceBytes, bytes)]),
                    tracker: tracker)
            }
            for _ in stride(from: 0, to: bytes, by: pieceBytes) { _ = try pull.receiveFrames(timeoutMs: 30_000) }
            _ = tracker.waitAll(timeoutMs: 30_000)
        }
        try once()
        var times: [Double] = []
        for _ in 0..<reps {
            let t = DispatchTime.now().uptimeNanoseconds
            try once()
            times.append(Double(DispatchTime.now().uptimeNanoseconds - t) / 1e9)
        }
        return Double(bytes) / times.sorted()[times.count / 2] / 1e9
    }

    public static func run(
        floats: Int, processes: [Int], algorithms: [String] = ["star", "ring"],
        pieceFloats: Int = RingAllreduce.defaultPieceFloats, reps: Int, binary: String, log: (String) -> Void
    ) throws -> Report {
        let bytes = 4 * floats
        let b = try loopbackGBps(bytes: bytes, pieceBytes: 4 * pieceFloats, reps: max(reps, 5))
        log(
            """
            loopback TCP (ZeroMQ, zero-copy, \(bytes >> 20) MiB in \(pieceFloats >> 8) KiB pieces): \
            \(String(format: "%.2f", b)) GB/s
            """
        )
        var rows: [Row] = []
        for n in processes {
            for algorithm in algorithms {
                let t = try measure(
                    algorithm: algorithm, n: n, floats: floats, pieceFloats: pieceFloats, reps: reps, binary: binary)
                let factor = 2 * Double(n - 1) / Double(n)
                let bound = factor * Double(bytes) / (b * 1e9)
                let hostBound = Double(n) * bound
                rows.append(
                    Row(
                        algorithm: algorithm, processes: n, medianSeconds: t, busGBps: Double(bytes) / t * factor / 1e9,
                        boundSeconds: bound, ofBound: bound / t, hostBoundSeconds: hostBound, ofHostBound: hostBound / t
                    ))
                log("\(algorithm) N=\(n): \(String(format: "%.1f", t * 1000)) ms")
            }
        }
        return Report(bytes: bytes, loopbackGBps: b, rows: rows)
    }

    /// Median seconds of one allreduce among `n` peer processes (the first repetition is a warm-up).
    static func measure(algorithm: String, n: Int, floats: Int, pieceFloats: Int, reps: Int, binary: String) throws
        -> Double
    {
        let ctx = try ZMQContext()
        let hub = try ZMQSocket(ctx, .router, lingerMs: 1000, receiveTimeoutMs: 60_000)
        try hub.setMaxMessageSize(-1)
        try hub.bind("tcp://127.0.0.1:*")
        let endpoint = try hub.lastEndpoint()
        let children = try (0..<n).map { r -> Process in
            let p = Process()
            p.executableURL = URL(fileURLWithPath: binary)
            p.arguments = [
                "bench", "allreduce", "--peer-of", endpoint, "--rank", "\(r)", "--floats", "\(floats)", "--algorithms",
                algorithm, "--piece-kib", "\(pieceFloats / 256)",
            ]
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
            ids[r] = m[0]
            addresses[r] = String(decoding: m[2], as: UTF8.self)
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
            for id in ids { try hub.send([id, Array("fill".utf8)]) }
            for _ in 0..<n { _ = try hub.receive() }  // "filled"
        }
        for id in ids { try hub.send([id, Array("quit".utf8)]) }
        for c in children { c.waitUntilExit() }
        return times.dropFirst().sorted()[(times.count - 1) / 2]
    }

    /// A peer process of the benchmark.
    public static func peer(hub endpoint: String, rank: Int, floats: Int, algorithm: String, pieceFloats: Int) throws {
        let ctx = try ZMQContext()
        let control = try ZMQSocket(ctx, .dealer, lingerMs: 1000, receiveTimeoutMs: 60_000)
        try control.setMaxMessageSize(-1)
        try control.connect(endpoint)
        let ring = try RingAllreduce(
            context: ctx, bind: "tcp://127.0.0.1:*", advertiseHost: "127.0.0.1", runId: 1, curve: nil, floats: floats,
            pieceFloats: pieceFloats)
        defer { ring.close() }
        try control.send([Array("\(rank)".utf8), Array(ring.address.utf8)])
        let members = String(decoding: try control.receive()[1], as: UTF8.self).split(separator: " ").map(String.init)
        let buffer = FlatBuffer(count: floats)
        // Refilled between repetitions, outside the timed part: summing in place doubles the values each
        // time, and after ~130 repetitions they would overflow to Inf (which the ring rejects).
        func fill() { for i in 0..<floats { buffer.pointer[i] = Float(rank + 1) * 1e-3 } }
        fill()
        var rep = 0
        while true {
            let cmd = String(decoding: try control.receive()[0], as: UTF8.self)
            if cmd == "quit" { return }
            if cmd == "fill" {
                fill()
                try control.send([Array("filled".utf8)])
                continue
            }
            rep += 1
            if algorithm == "star" {
                try control.send([Array("grad".utf8), [UInt8](UnsafeRawBufferPointer(buffer.buffer))])
                _ = try control.receive()
            } else {
                try ring.allreduce(
                    buffer.buffer, ring: members, position: rank, step: rep, round: rep, timeoutMs: 60_000)
            }
            try control.send([Array("done".utf8)])
        }
    }

    public static func table(_ r: Report) -> String {
        var out =
            """
            allreduce of \(r.bytes >> 20) MiB (\(r.bytes / 4) floats); loopback bandwidth B = \
            \(String(format: "%.2f", r.loopbackGBps)) GB/s\n
            """
        out += "algorithm  N   median ms   bus GB/s   bound ms   of bound   host bound ms   of host bound\n"
        for x in r.rows {
            out +=
                x.algorithm.padding(toLength: 9, withPad: " ", startingAt: 0) + String(x.processes).leftPad(3)
                + String(
                    format: "%12.1f%11.2f%11.1f%10.0f%%%16.1f%15.0f%%\n", x.medianSeconds * 1000, x.busGBps,
                    x.boundSeconds * 1000,
                    100 * x.ofBound, x.hostBoundSeconds * 1000, 100 * x.ofHostBound)
        }
        out +=
            """
            bound: 2(N−1)/N·S/B, each process on its own link; host bound: 2(N−1)·S/B, all N processes sharing \
            this host's loopback\n
            """
        return out
    }
}
