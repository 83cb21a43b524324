import Foundation
import RainModel
import RainProtocol
import RainSupport
import RainZMQ
import XCTest

/// The ring over real ZeroMQ sockets on loopback (one thread per member, each with its own context, as
/// separate processes would have): exact sums with uneven, pipelined pieces; rejection of non-finite
/// gradients; the ring's own ZAP handler in CURVE mode. Also the eight-lane checksum against its definition.
final class RingAllreduceTests: XCTestCase {
    /// One member per context (as separate processes would have), each bound on loopback; with `keys`,
    /// member p serves under keys[p] and every member knows the others' public keys (as the coordinator's
    /// step message tells them).
    func makeRings(_ n: Int, floats: Int, pieceFloats: Int, keys: [CurveKeys]? = nil) throws -> (
        contexts: [ZMQContext], rings: [RingAllreduce]
    ) {
        let contexts = try (0..<n).map { _ in try ZMQContext() }
        let rings = try contexts.enumerated().map {
            try RingAllreduce(
                context: $1, bind: "tcp://127.0.0.1:*", advertiseHost: "127.0.0.1", runId: 9, curve: keys?[$0],
                floats: floats, pieceFloats: pieceFloats)
        }
        if let keys {
            for r in rings {
                r.admit(Dictionary(uniqueKeysWithValues: zip(rings.map(\.address), keys.map(\.workerPublic))))
            }
        }
        return (contexts, rings)
    }

    /// A run's keys with `n` worker keys, in a directory removed after the test.
    func runKeys(_ n: Int) throws -> (run: RunKeys, workers: [CurveKeys]) {
        let run = try RunKeys.load(dir: temporaryDirectory(self).path, create: true)
        try run.issue(workers: n)
        return (run, try (0..<n).map { try CurveKeys.loadForWorker(dir: run.workersDir.path, rank: $0) })
    }

    /// Runs one allreduce among `buffers.count` members; returns each member's error, if any.
    func ringRound(
        _ buffers: [UnsafeMutableBufferPointer<Float>], pieceFloats: Int, keys: [CurveKeys]? = nil,
        timeoutMs: Int = 20_000
    ) throws -> [Error?] {
        var finite: [Bool?] = []
        return try ringRound(buffers, pieceFloats: pieceFloats, keys: keys, timeoutMs: timeoutMs, finite: &finite)
    }

    /// Runs one round, a thread per member; `finite` gets each member's verdict (nil if it failed).
    func ringRound(
        _ buffers: [UnsafeMutableBufferPointer<Float>], pieceFloats: Int, keys: [CurveKeys]? = nil,
        timeoutMs: Int = 20_000, finite: inout [Bool?], rings given: [RingAllreduce]? = nil
    ) throws -> [Error?] {
        let n = buffers.count
        let rings = try given ?? makeRings(n, floats: buffers[0].count, pieceFloats: pieceFloats, keys: keys).rings
        defer { if given == nil { rings.forEach { $0.close() } } }
        let addresses = rings.map(\.address)
        final class Shared: @unchecked Sendable {  // each thread writes only its own slot
            var errors: [Error?]
            var finite: [Bool?]
            let buffers: [UnsafeMutableBufferPointer<Float>]
            init(_ b: [UnsafeMutableBufferPointer<Float>]) {
                buffers = b
                errors = Array(repeating: nil, count: b.count)
                finite = Array(repeating: nil, count: b.count)
            }
        }
        let shared = Shared(buffers), group = DispatchGroup()
        for p in 0..<n {
            group.enter()
            Thread.detachNewThread {
                do {
                    shared.finite[p] = try rings[p].allreduce(
                        shared.buffers[p], ring: addresses, position: p, step: 1, round: 1, timeoutMs: timeoutMs)
                } catch {
                    shared.errors[p] = error
                }
                group.leave()
            }
        }
        group.wait()
        finite = shared.finite
        return shared.errors
    }

    func testRingSumsWithUnevenPipelinedPieces() throws {
        for (n, count, piece) in [(2, 1001, 7), (3, 1000, 64), (4, 37, 1000)] {
            let buffers = (0..<n).map { p in
                let b = UnsafeMutableBufferPointer<Float>.allocate(capacity: count)
                for i in 0..<count { b[i] = Float((i * 7 + p * 13) % 101) * 0.01 - 0.5 }
                return b
            }
            defer { buffers.forEach { $0.deallocate() } }
            let expected = (0..<count).map { i in (0..<n).reduce(0.0) { $0 + Double(buffers[$1][i]) } }
            let errors = try ringRound(buffers, pieceFloats: piece)
            XCTAssertTrue(errors.allSatisfy { $0 == nil }, "\(errors)")
            for i in 0..<count {
                XCTAssertEqual(Double(buffers[0][i]), expected[i], accuracy: 1e-5, "N=\(n) element \(i)")
                for p in 1..<n {
                    XCTAssertEqual(
                        buffers[p][i].bitPattern, buffers[0][i].bitPattern, "members disagree (N=\(n), element \(i))")
                }
            }
        }
    }

    /// `grad_wire: bf16` at N = 1…4: pieces travel as bfloat16 (half the payload bytes of the fp32 ring), every
    /// hop adds in fp32, and every member ends with the same bits. Oracle: the exact sum in Double. A value
    /// passes at most N − 1 rounded partial sums and one rounded final sum, each off by at most u = 2⁻⁸ (bf16's
    /// unit roundoff: 8 significant bits) of a partial sum's magnitude, so |error| ≤ N · 2⁻⁸ · Σ|x| (plus fp32
    /// additions, far smaller).
    func testBF16WireSumsWithinBF16ToleranceAndEveryMemberAgrees() throws {
        let count = 10_007, piece = 1000
        var rng = SplitMix(77)
        for n in 1...4 {
            let inputs = (0..<n).map { _ in (0..<count).map { _ in Float(rng.uniform() * 2 - 1) * 1e-3 } }
            var results: [GradientWire: [[Float]]] = [:], bytes: [GradientWire: Int] = [:]
            for wire in GradientWire.allCases {
                let buffers = inputs.map { values in
                    let b = UnsafeMutableBufferPointer<Float>.allocate(capacity: count)
                    _ = b.initialize(from: values)
                    return b
                }
                defer { buffers.forEach { $0.deallocate() } }
                let rings = try makeRings(n, floats: count, pieceFloats: piece).rings
                defer { rings.forEach { $0.close() } }
                for r in rings { r.wire = wire }
                var finite: [Bool?] = []
                let errors = try ringRound(buffers, pieceFloats: piece, finite: &finite, rings: rings)
                XCTAssertTrue(errors.allSatisfy { $0 == nil }, "N=\(n) \(wire): \(errors)")
                XCTAssertTrue(finite.allSatisfy { $0 == true }, "N=\(n) \(wire)")
                results[wire] = buffers.map { Array($0) }
                bytes[wire] = rings.reduce(0) { $0 + $1.bytesSent }
            }
            let half = try XCTUnwrap(results[.bf16]), full = try XCTUnwrap(results[.fp32])
            for p in 1..<n {
                XCTAssertEqual(half[p].map(\.bitPattern), half[0].map(\.bitPattern), "N=\(n) member \(p)")
            }
            var worst = 0.0
            for i in 0..<count {
                let exact = inputs.reduce(0.0) { $0 + Double($1[i]) },
                    mag = inputs.reduce(0.0) { $0 + abs(Double($1[i])) }
                let err = abs(Double(half[0][i]) - exact)
                worst = max(worst, err / mag)
                XCTAssertLessThanOrEqual(err, Double(n) / 256 * mag + 1e-12, "N=\(n) element \(i)")
                XCTAssertEqual(Double(full[0][i]), exact, accuracy: 1e-6 * mag + 1e-12, "fp32 ring, N=\(n)")
            }
            if n == 1 {
                XCTAssertEqual(half[0], inputs[0], "N = 1: nothing travels, nothing is rounded")
                continue
            }
            // It really was rounded (the fp32 ring's sums differ), and the payload halved (headers aside).
            XCTAssertGreaterThan(worst, 1e-5, "N=\(n): no bf16 rounding seen")
            let pieces = n * (n - 1) * 2 * ((count / n + piece) / piece)
            XCTAssertLessThan(Double(bytes[.bf16]!), 0.5 * Double(bytes[.fp32]!) + Double(pieces * 200), "N=\(n) bytes")
            XCTAssertGreaterThan(Double(bytes[.bf16]!), 0.45 * Double(bytes[.fp32]!), "N=\(n) bytes")
        }
    }

    /// Swift's bfloat16 rounding (the ring's wire) is the model kernels' (C) bit for bit.
    func testWireRoundingIsTheKernelsRounding() {
        var rng = SplitMix(5)
        for _ in 0..<100_000 {
            let x = Float(bitPattern: UInt32(truncatingIfNeeded: rng.next()))
            XCTAssertEqual(BFloat16.round(x), BF16.round(x), "\(x) \(String(x.bitPattern, radix: 16))")
        }
    }

    /// Five workers on two "hosts" (3 + 2): chains onto the leaders, the leaders' ring, chains back.
    /// Every member ends with the same bits, the sum of all five (float64 oracle), and a NaN anywhere is
    /// every member's verdict.
    func testHierarchicalSumOverHostsIsTheSameOnEveryMember() throws {
        let count = 1003, hosts = [0, 0, 0, 1, 1]
        for poison in [false, true] {
            let buffers = (0..<5).map { p in
                let b = UnsafeMutableBufferPointer<Float>.allocate(capacity: count)
                for i in 0..<count { b[i] = Float(p + 1) * 0.001 * Float(i % 97) + Float(p) * 1e-7 }
                return b
            }
            defer { buffers.forEach { $0.deallocate() } }
            if poison { buffers[4][700] = .nan }
            let expected = (0..<count).map { i in (0..<5).reduce(0.0) { $0 + Double(buffers[$1][i]) } }
            let rings = try makeRings(5, floats: count, pieceFloats: 64).rings
            defer { rings.forEach { $0.close() } }
            let chains = [[0, 1, 2], [3, 4]].map { $0.map { rings[$0].address } }
            let leaders = [rings[0].address, rings[3].address]
            final class Shared: @unchecked Sendable {  // each thread writes only its own slot
                var errors = [Error?](repeating: nil, count: 5), finite = [Bool?](repeating: nil, count: 5)
                let buffers: [UnsafeMutableBufferPointer<Float>]
                init(_ b: [UnsafeMutableBufferPointer<Float>]) { buffers = b }
            }
            let shared = Shared(buffers), group = DispatchGroup()
            for p in 0..<5 {
                let host = hosts[p], link = p - (host == 0 ? 0 : 3)
                group.enter()
                Thread.detachNewThread {
                    do {
                        shared.finite[p] = try rings[p].hierarchicalAllreduce(
                            shared.buffers[p], chain: chains[host], link: link, leaders: leaders, leaderPosition: host,
                            step: 1, round: 1, timeoutMs: 20_000)
                    } catch { shared.errors[p] = error }
                    group.leave()
                }
            }
            group.wait()
            XCTAssertTrue(shared.errors.allSatisfy { $0 == nil }, "\(shared.errors)")
            XCTAssertEqual(shared.finite, [Bool?](repeating: !poison, count: 5))
            for i in 0..<count where !(poison && i == 700) {
                XCTAssertEqual(Double(buffers[0][i]), expected[i], accuracy: 1e-5, "element \(i)")
                for p in 1..<5 {
                    XCTAssertEqual(buffers[p][i].bitPattern, buffers[0][i].bitPattern, "member \(p), \(i)")
                }
            }
        }
    }

    /// A NaN in one member's gradient: the round completes and every member reports the same verdict
    /// (so all of them skip the update together and none diverges).
    func testNonFiniteGradientIsReportedByEveryMember() throws {
        for n in [2, 3] {
            let buffers = (0..<n).map { _ in UnsafeMutableBufferPointer<Float>.allocate(capacity: 100) }
            defer { buffers.forEach { $0.deallocate() } }
            for b in buffers { for i in 0..<100 { b[i] = 1 } }
            buffers[1][60] = .nan  // member 1's own chunk for N = 2 (its last add makes it final)
            buffers[n - 1][3] = .infinity
            var finite: [Bool?] = []
            let errors = try ringRound(buffers, pieceFloats: 16, timeoutMs: 2000, finite: &finite)
            XCTAssertTrue(errors.allSatisfy { $0 == nil }, "\(errors)")
            XCTAssertEqual(finite, [Bool?](repeating: false, count: n), "N=\(n)")
            for b in buffers {
                XCTAssertTrue(b[60].isNaN)
                XCTAssertEqual(b[3], .infinity)
                XCTAssertEqual(b[0], Float(n))
            }
        }
    }

    /// A ring inbox admits the coordinator and the members the coordinator named, nobody else: not a
    /// stranger's key, and not a worker key of the same run that is not in the ring.
    func testCurveRingAdmitsOnlyTheRingsMembers() throws {
        let (run, keys) = try runKeys(3)
        let ctx = try ZMQContext()
        let ring = try RingAllreduce(
            context: ctx, bind: "tcp://127.0.0.1:*", advertiseHost: "127.0.0.1", runId: 9, curve: keys[0])
        defer { ring.close() }
        ring.admit(["tcp://127.0.0.1:1": keys[1].workerPublic])
        let own = try ZMQSocket.curveKeypair()
        let strangerContext = try ZMQContext()
        for (n, (pub, sec)) in [(own.publicKey, own.secretKey), (keys[2].workerPublic, keys[2].workerSecret)]
            .enumerated()
        {
            let stranger = try ZMQSocket(strangerContext, .push)
            try stranger.makeCurveClient(serverKey: keys[0].workerPublic, publicKey: pub, secretKey: sec)
            try stranger.connect(ring.address)
            let deadline = Date().addingTimeInterval(10)
            while ring.refused <= n && Date() < deadline { usleep(20_000) }
            XCTAssertEqual(ring.refused, n + 1, "the ring admitted a key it was not given (\(n))")
            stranger.close()
        }
        _ = run

        // The members get through, encrypted, each under its own key.
        let buffers = (0..<2).map { _ in UnsafeMutableBufferPointer<Float>.allocate(capacity: 50) }
        defer { buffers.forEach { $0.deallocate() } }
        for (p, b) in buffers.enumerated() { for i in 0..<50 { b[i] = Float(p + 1) } }
        let errors = try ringRound(buffers, pieceFloats: 8, keys: Array(keys[0..<2]))
        XCTAssertTrue(errors.allSatisfy { $0 == nil }, "\(errors)")
        XCTAssertTrue(buffers.allSatisfy { b in b.allSatisfy { $0 == 3 } })
    }

    /// A member holding its own (admitted) key sends member 1 a well-formed piece in member 0's name (its
    /// left neighbour's: the right round, stage, chunk and piece, a valid checksum, poisoned values) and
    /// an abandon in the coordinator's name, before the round starts. Both are dropped for the key they
    /// came under, and the round's sums are exact.
    func testPiecesAndAbandonsCountOnlyUnderTheirSendersKey() throws {
        let (_, keys) = try runKeys(3)
        let (floats, piece) = (48, 8)
        let (_, rings) = try makeRings(3, floats: floats, pieceFloats: piece, keys: keys)
        defer { rings.forEach { $0.close() } }
        let forgerContext = try ZMQContext()
        let forger = try ZMQSocket(forgerContext, .push, lingerMs: 1000)
        try forger.makeCurveClient(
            serverKey: keys[1].workerPublic, publicKey: keys[2].workerPublic, secretKey: keys[2].workerSecret)
        try forger.connect(rings[1].address)
        // Member 1 first adds chunk (1 − 0 − 1) mod 3 = 0 from member 0 (stage 0, k 0); its piece 0.
        let poison = [Float](repeating: 1e6, count: piece)
        try poison.withUnsafeBufferPointer {
            try forger.send(
                Message.frames(
                    .ring, phase: .train, runId: 9, step: 1, round: 1,
                    body: Body.encode(Body.RingChunk(round: 1, stage: 0, k: 0, chunk: 0, piece: 0)), payload: $0))
        }
        try forger.send(
            Message.frames(
                .ring, phase: .train, runId: 9, step: 1, round: 1,
                body: Body.encode(Body.RingChunk(round: 1, stage: -1, k: 0, chunk: 0))))
        usleep(500_000)  // both wait in member 1's inbox, ahead of the real pieces
        let buffers = (0..<3).map { _ in UnsafeMutableBufferPointer<Float>.allocate(capacity: floats) }
        defer { buffers.forEach { $0.deallocate() } }
        for (p, b) in buffers.enumerated() { for i in 0..<floats { b[i] = Float(p + 1) * Float(i) } }
        var finite: [Bool?] = []
        let errors = try ringRound(buffers, pieceFloats: piece, finite: &finite, rings: rings)
        XCTAssertTrue(errors.allSatisfy { $0 == nil }, "\(errors)")
        for b in buffers { for i in 0..<floats { XCTAssertEqual(b[i], 6 * Float(i), "element \(i)") } }
        XCTAssertEqual(rings[1].misattributed, 1)
        forger.close()
    }

    /// A right neighbour that stopped reading (a frozen process: its socket accepts, nothing is read)
    /// leaves a member's sends queued; the coordinator's abandon must reach that member while it waits
    /// for them, not after the ring's timeout. Member 0's ring is [0, black hole]; member 1 (left of 0)
    /// feeds it, so member 0 gets through reduce-scatter and blocks on its queued sends.
    func testAbandonReachesAMemberWaitingOnAPeerThatStoppedReading() throws {
        let hole = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { Glibc.close(hole) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var size = socklen_t(MemoryLayout<sockaddr_in>.size)
        withUnsafeMutablePointer(to: &addr) { a in
            a.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                XCTAssertEqual(bind(hole, $0, size), 0)
                XCTAssertEqual(listen(hole, 4), 0)
                XCTAssertEqual(getsockname(hole, $0, &size), 0)
            }
        }
        let blackHole = "tcp://127.0.0.1:\(UInt16(bigEndian: addr.sin_port))"
        let count = 1 << 16
        let (contexts, rings) = try makeRings(2, floats: count, pieceFloats: 1024)
        defer { rings.forEach { $0.close() } }
        final class Box: @unchecked Sendable { var error: Error? }
        let first = Box(), group = DispatchGroup()
        let buffers = (0..<2).map { _ in [Float](repeating: 1, count: count) }
        for p in 0..<2 {
            group.enter()
            Thread.detachNewThread {
                var b = buffers[p]
                do {
                    _ = try b.withUnsafeMutableBufferPointer {
                        try rings[p].allreduce(
                            $0, ring: p == 0 ? [rings[0].address, blackHole] : [rings[0].address, rings[1].address],
                            position: p, step: 3, round: 5, timeoutMs: p == 0 ? 40_000 : 2000)
                    }
                } catch { if p == 0 { first.error = error } }
                group.leave()
            }
        }
        usleep(500_000)  // member 0 is now waiting on the black hole
        ZMQRingAbandoner(context: contexts[1], keys: nil).abandon(
            runId: 9, round: 5, step: 3, members: [(rings[0].address, "")])
        XCTAssertEqual(group.wait(timeout: .now() + 60), .success)
        let message = "\(first.error.map { "\($0)" } ?? "no error")"
        XCTAssertTrue(message.contains("round abandoned by the coordinator"), message)
    }

    func testEightLaneChecksumEqualsTheDefinition() {
        var rng = SplitMix(5)
        for count in [0, 1, 7, 8, 31, 32, 33, 100, 4096 + 13] {
            let bytes = (0..<count).map { _ in UInt8.random(in: 0...255, using: &rng) }
            let body = Array(bytes.prefix(count / 3))
            body.withUnsafeBytes { b in
                bytes.withUnsafeBytes { p in
                    XCTAssertEqual(Checksum.of(b, p), Checksum.sequential(b, p), "\(count) bytes")
                }
            }
        }
    }
}

/// A worker that reconnects (its connection dropped, or its socket was rebuilt) with its incarnation's
/// routing id is the same peer to the coordinator's ROUTER, and the coordinator's answers reach the
/// new connection: a reset no longer turns a live worker into a stranger.
final class RoutingIdTests: XCTestCase {
    func testAReconnectingWorkerKeepsItsIdentity() throws {
        let ctx = try ZMQContext()
        let server = try ZMQServer(context: ctx, bind: "tcp://127.0.0.1:*")
        let id = Array("incarnation-1234".utf8)
        let first = try ZMQClient(context: ctx, connect: server.endpoint, routingId: id)
        try first.send([Array("a".utf8)])
        let (peer1, f1, _) = try XCTUnwrap(try server.receive(timeoutMs: 5000))
        XCTAssertEqual(f1, [Array("a".utf8)])
        XCTAssertEqual(peer1, id)
        first.close()
        let second = try ZMQClient(context: ctx, connect: server.endpoint, routingId: id)
        try second.send([Array("b".utf8)])
        let (peer2, _, _) = try XCTUnwrap(try server.receive(timeoutMs: 5000))
        XCTAssertEqual(peer2, peer1)
        try server.send(to: peer1, [Array("c".utf8)])
        XCTAssertEqual(try second.receive(timeoutMs: 5000), [Array("c".utf8)])
        // Without an explicit id, each connection is a new stranger.
        let other = try ZMQClient(context: ctx, connect: server.endpoint)
        try other.send([Array("d".utf8)])
        XCTAssertNotEqual(try XCTUnwrap(try server.receive(timeoutMs: 5000)).peer, peer1)
        second.close()
        other.close()
    }
}
