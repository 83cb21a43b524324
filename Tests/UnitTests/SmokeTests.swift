import RainModel
import RainSupport
import RainTraining
import RainZMQ
import XCTest

/// Both C libraries load and compute: OpenBLAS sgemm against a naive loop, a ZeroMQ round trip on loopback TCP.
final class SmokeTests: XCTestCase {
    func testSgemmMatchesNaiveLoop() {
        let m = 7, n = 5, k = 9
        var rng = SplitMix(9)
        let a = (0..<(m * k)).map { _ in Float.random(in: -1...1, using: &rng) }
        let b = (0..<(k * n)).map { _ in Float.random(in: -1...1, using: &rng) }
        var c = [Float](repeating: 0, count: m * n)
        BLAS.sgemm(.no, .no, m: m, n: n, k: k, a: a, b: b, c: &c)
        for i in 0..<m {
            for j in 0..<n {
                var s: Float = 0
                for p in 0..<k { s += a[i * k + p] * b[p * n + j] }
                XCTAssertEqual(c[i * n + j], s, accuracy: 1e-5)
            }
        }
        // Transposed A: (Aᵀ)ᵀ·B must equal the same product.
        var at = [Float](repeating: 0, count: k * m)
        for i in 0..<m { for p in 0..<k { at[p * m + i] = a[i * k + p] } }
        var c2 = [Float](repeating: 0, count: m * n)
        BLAS.sgemm(.yes, .no, m: m, n: n, k: k, a: at, b: b, c: &c2)
        for i in 0..<(m * n) { XCTAssertEqual(c2[i], c[i], accuracy: 1e-5) }
    }

    func testZeroMQRoundTripOverLoopbackTCP() throws {
        let ctx = try ZMQContext()
        let router = try ZMQSocket(ctx, .router, receiveTimeoutMs: 5000)
        try router.bind("tcp://127.0.0.1:*")
        let endpoint = try router.lastEndpoint()
        XCTAssertTrue(endpoint.hasPrefix("tcp://127.0.0.1:"))
        let dealer = try ZMQSocket(ctx, .dealer, receiveTimeoutMs: 5000)
        try dealer.connect(endpoint)
        let payload = (0..<100_000).map { UInt8($0 % 251) }
        try dealer.send([Array("hello".utf8), payload])
        let got = try router.receive()
        XCTAssertEqual(got.count, 3)  // identity, then the two frames
        XCTAssertEqual(got[1], Array("hello".utf8))
        XCTAssertEqual(got[2], payload)
        try router.send([got[0], Array("ack".utf8)])
        XCTAssertEqual(try dealer.receive(), [Array("ack".utf8)])
    }

    func testZeroMQReceiveHasADeadline() throws {
        let ctx = try ZMQContext()
        let s = try ZMQSocket(ctx, .dealer, receiveTimeoutMs: 100)
        try s.connect("tcp://127.0.0.1:1")  // nobody there
        XCTAssertThrowsError(try s.receive()) { XCTAssertTrue(($0 as? ZMQError)?.isTimeout ?? false) }
    }
}
