import Foundation
import RainData
import RainSupport
import XCTest

let releaseFixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .appendingPathComponent("../../../shared/fixtures/release").standardized

/// Python's own unpickler is the oracle: it prints each file's value as tagged JSON (so tuples, int keys
/// and None stay distinguishable), or `{"error": …}`. `find_class` refuses every global, so nothing in a
/// fuzzed file is ever imported or called.
private let pythonOracle = #"""
    import json, pickle, sys, io, resource
    # A fuzzed memo index makes CPython allocate a memo that large: cap it to fail fast (MemoryError).
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
    class Plain(pickle.Unpickler):
        def find_class(self, module, name): raise pickle.UnpicklingError("global refused")
        def persistent_load(self, pid): raise pickle.UnpicklingError("persid refused")
    def tag(v):
        if v is None: return {"none": 0}
        if isinstance(v, bool): return {"bool": v}
        if isinstance(v, int): return {"int": str(v)}
        if isinstance(v, float): return {"float": repr(v)}
        if isinstance(v, str): return {"str": v}
        if isinstance(v, (bytes, bytearray)): return {"bytes": list(v)}
        if isinstance(v, tuple): return {"tuple": [tag(x) for x in v]}
        if isinstance(v, (set, frozenset)): return {"set": [tag(x) for x in v]}
        if isinstance(v, list): return {"list": [tag(x) for x in v]}
        if isinstance(v, dict): return {"dict": [[tag(k), tag(x)] for k, x in v.items()]}
        raise TypeError(type(v).__name__)
    out = []
    for path in sys.argv[1:]:
        try:
            out.append(tag(Plain(io.BytesIO(open(path, "rb").read())).load()))
        except RecursionError: out.append({"error": "recursion"})
        except Exception as e: out.append({"error": type(e).__name__})
    json.dump(out, sys.stdout)
    """#

/// Runs `python3 -c code args…` and returns its standard output.
func python(_ code: String, _ args: [String], line: UInt = #line) throws -> Data {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = ["python3", "-c", code] + args
    let out = Pipe()
    p.standardOutput = out
    try p.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    XCTAssertEqual(p.terminationStatus, 0, "python3 (make deps installs it) must run", line: line)
    return data
}

/// Runs the oracle on `files`; one tagged value (or error) per file.
func pythonValues(_ files: [URL]) throws -> [Any] {
    try JSONSerialization.jsonObject(with: python(pythonOracle, files.map(\.path))) as? [Any] ?? []
}

/// Our value in the oracle's tagged form (the test's own conversion, not the library's JSON path).
func tagged(_ v: PickleValue) -> Any {
    switch v {
    case .none: return ["none": 0]
    case .bool(let b): return ["bool": b]
    case .int(let i): return ["int": String(i)]
    case .float(let d): return ["float": d]
    case .string(let s): return ["str": s]
    case .bytes(let b): return ["bytes": b.map(Int.init)]
    case .tuple(let l): return ["tuple": l.map(tagged)]
    case .list(let l): return ["list": l.map(tagged)]
    case .set(let l): return ["set": l.map(tagged)]
    case .dict(let d): return ["dict": d.map { [tagged($0.key), tagged($0.value)] }]
    }
}

/// Tagged values compared structurally (sets in any order); Python's float repr is parsed back to a Double.
func sameTagged(_ a: Any, _ b: Any) -> Bool {
    switch (a, b) {
    case (let x as [String: Any], let y as [String: Any]):
        guard x.count == 1, y.count == 1, let k = x.keys.first, k == y.keys.first else { return false }
        if k == "float" {
            let dx = (x[k] as? Double) ?? Double("\(x[k]!)"), dy = (y[k] as? Double) ?? Double("\(y[k]!)")
            return dx == dy || (dx?.isNaN == true && dy?.isNaN == true)
        }
        if k == "bool" { return (x[k] as? Bool) == (y[k] as? Bool) }
        if k == "set" {  // the same elements in any order
            guard var rest = y[k] as? [Any], let xs = x[k] as? [Any], xs.count == rest.count else { return false }
            for e in xs {
                guard let j = rest.firstIndex(where: { sameTagged(e, $0) }) else { return false }
                rest.remove(at: j)
            }
            return true
        }
        return sameTagged(x[k]!, y[k]!)
    case (let x as [Any], let y as [Any]): return x.count == y.count && zip(x, y).allSatisfy(sameTagged)
    case (let x as String, let y as String): return x == y
    case (let x as NSNumber, let y as NSNumber): return x == y
    default: return false
    }
}

final class PickleTests: XCTestCase {
    var dills: [URL] {
        ["era5625", "imerg5625", "simsat5625"].flatMap { n in
            [
                releaseFixtures.appendingPathComponent("\(n)/\(n).dill"),
                releaseFixtures.appendingPathComponent("protocol3/\(n)/\(n).dill"),
            ]
        }
    }

    func testReleaseDillsDecodeAsPythonDoes() throws {
        let theirs = try pythonValues(dills)
        XCTAssertEqual(theirs.count, 6)
        for (url, t) in zip(dills, theirs) {
            let ours = try PickleReader.decode([UInt8](try Data(contentsOf: url)))
            XCTAssertTrue(sameTagged(tagged(ours), t), "\(url.path): our value differs from Python's")
        }
    }

    /// The dill decodes to the same DatasetInfo as the `_info.json` Python derives from it, in both protocols.
    func testDillMatchesTheJSONPythonWrites() throws {
        let dir = temporaryDirectory(self)
        for url in dills {
            let json = dir.appendingPathComponent("info.json")
            _ = try python(
                "import pickle,json,sys; json.dump(pickle.load(open(sys.argv[1],'rb')), open(sys.argv[2],'w'))",
                [url.path, json.path])
            XCTAssertEqual(try DatasetInfo.load(url), try DatasetInfo.load(json), url.path)
        }
    }

    /// Field by field against the quirks listed in fixtures/release/README.md.
    func testReleaseQuirksAsDocumented() throws {
        for proto in ["", "protocol3/"] {
            let era = try DatasetInfo.load(releaseFixtures.appendingPathComponent("\(proto)era5625/era5625.dill"))
            let file = era.memmap["era5625__era5625.mmap"]
            XCTAssertEqual(file?.dims, [359_400, 18, 32, 64])
            XCTAssertEqual(file?.daterange, [283_996_800, 1_546_297_200])  // ends 2018-12-31 23:00
            XCTAssertEqual(era.variables["era5625/t2m"]?.lastTs, 1_577_833_200)  // 2019-12-31 23:00
            XCTAssertEqual(era.variables["era5625/t"]?.offset, 15)
            XCTAssertEqual(era.variables["era5625/t"]?.index2pressure, ["0": 850])
            XCTAssertNil(era.variables["era5625/t_300hPa"])
            XCTAssertEqual(era.variables["era5625/ciwc_300hPa"]?.offset, 3)
            XCTAssertEqual(era.memmap["era5625__era5625_const.mmap"]?.dims, [5, 32, 64])
            XCTAssertNil(era.memmap["era5625__era5625_const.mmap"]?.daterange)
            let imerg = try DatasetInfo.load(releaseFixtures.appendingPathComponent("\(proto)imerg5625/imerg5625.dill"))
            XCTAssertEqual(imerg.variables["imerg5625/precipitationcal"]?.mmapName, "imerg5625__imerg5625.mmap")
            XCTAssertEqual(imerg.memmap["imerg5625__imerg5625.mmap"]?.dims, [171_672, 1, 32, 64])
            let simsat = try DatasetInfo.load(
                releaseFixtures.appendingPathComponent("\(proto)simsat5625/simsat5625.dill"))
            XCTAssertEqual(simsat.variables["simsat5625/clbt"]?.levels, [0, 1, 2])
            XCTAssertEqual(simsat.memmap["simsat5625__simsat5625.mmap"]?.tfreqS, 10_800)
        }
    }

    /// Each opcode that would import or call code is refused by name and byte offset, and the message
    /// says what to do; a classic `os.system` pickle is refused at its first byte.
    func testCodeOpcodesAreRefusedByName() throws {
        let names: [UInt8: String] = [
            0x63: "GLOBAL", 0x93: "STACK_GLOBAL", 0x52: "REDUCE", 0x62: "BUILD", 0x69: "INST", 0x6F: "OBJ",
            0x81: "NEWOBJ", 0x92: "NEWOBJ_EX", 0x50: "PERSID", 0x51: "BINPERSID", 0x82: "EXT1", 0x83: "EXT2",
            0x84: "EXT4", 0x97: "NEXT_BUFFER", 0x98: "READONLY_BUFFER",
        ]
        for (op, name) in names {
            let bytes: [UInt8] = [0x80, 0x04, 0x4E, op, 0x2E]
            XCTAssertThrowsError(try PickleReader.decode(bytes)) { e in
                let f = e as? PickleReader.Failure
                XCTAssertEqual(f?.refusedOpcode, name)
                XCTAssertEqual(f?.offset, 3)
            }
        }
        let dir = temporaryDirectory(self)
        let evil = dir.appendingPathComponent("evil.dill")
        try Data("cos\nsystem\n(S'touch /tmp/pwned'\ntR.".utf8).write(to: evil)
        let text = errorText { _ = try DatasetInfo.load(evil) }
        XCTAssertTrue(text.contains(evil.path) && text.contains("byte 0") && text.contains("GLOBAL"), text)
        XCTAssertTrue(text.contains("python3 -c"), "the message says how to write the JSON: \(text)")
    }

    /// Hostile shapes: each is a clean Failure, none allocates what it claims.
    func testMalformedPicklesAreCleanErrors() {
        func fails(_ bytes: [UInt8], _ needle: String, line: UInt = #line) {
            XCTAssertThrowsError(try PickleReader.decode(bytes), line: line) { e in
                let f = e as? PickleReader.Failure
                XCTAssertNotNil(f, "\(e)", line: line)
                XCTAssertTrue(f?.problem.contains(needle) == true, "\(f?.problem ?? "")", line: line)
            }
        }
        fails([0x80, 0x04, 0x58, 0xFF, 0xFF, 0xFF, 0x7F, 0x61], "claims")  // BINUNICODE of 2 GiB
        fails([0x80, 0x04, 0x8D] + [UInt8](repeating: 0xFF, count: 7) + [0x7F, 0x2E], "claims")  // BINUNICODE8
        fails([0x80, 0x04, 0x95, 0, 0, 0, 0, 0, 0, 0, 0x10, 0x4E, 0x2E], "FRAME")
        fails([0x80, 0x04, 0x68, 0x05, 0x2E], "memo index 5")
        fails([0x80, 0x04, 0x5D, 0x94, 0x68, 0x00, 0x61, 0x2E], "nested deeper")  // a list containing itself
        fails(
            [0x80, 0x04] + [UInt8](repeating: 0x5D, count: 100_000) + [UInt8](repeating: 0x61, count: 99_999) + [0x2E],
            "nested deeper")
        fails([0x80, 0x04, 0x4E, 0x4E, 0x2E], "STOP with 2")
        fails([0x80, 0x04, 0x61, 0x2E], "empty stack")
        fails([0x80, 0x04, 0x4E, 0x73, 0x2E], "SETITEM")
        fails([0x80, 0x04, 0x8A, 0x09] + [UInt8](repeating: 1, count: 9) + [0x2E], "64 bits")
        fails([0x80, 0x06, 0x4E, 0x2E], "protocol 6")
        fails([0x80, 0x04, 0x8C, 0x02, 0xC3, 0x28, 0x2E], "UTF-8")
        fails([0x80, 0x04, 0xFF, 0x2E], "unknown opcode")
        fails([0x80, 0x04, 0x5D], "end before STOP")
        // x = [x, x] forty times: 2^40 values once expanded, from 200 bytes.
        var doubling: [UInt8] = [0x80, 0x04, 0x5D, 0x94, 0x30]
        for i in 0..<40 { doubling += [0x68, UInt8(i), 0x68, UInt8(i), 0x86, 0x94, 0x30] }
        fails(doubling + [0x68, 40, 0x2E], "more than")
        fails([UInt8](repeating: 0x4E, count: PickleReader.maxBytes + 1), "more than metadata needs")
    }

    /// Random plain values (nested, shared, negative and 64-bit ints, floats, unicode, bytes, sets),
    /// pickled by Python's own pickler in every protocol 0–5: each decodes to Python's value.
    func testRandomValuesPickledByPythonInEveryProtocol() throws {
        let dir = temporaryDirectory(self)
        let writer = #"""
            import pickle, random, sys, os
            r = random.Random(7)
            def scalar():
                k = r.randrange(8)
                if k == 0: return None
                if k == 1: return r.random() < 0.5
                if k == 2: return r.randrange(-2**63, 2**63)
                if k == 3: return r.randrange(-300, 70000)
                if k == 4: return r.uniform(-1e300, 1e300) if r.random() < 0.5 else float(r.randrange(10**9))
                if k == 5:
                    return "".join(chr(r.choice([r.randrange(32, 127), r.randrange(160, 0x3000)]))
                                   for _ in range(r.randrange(0, 300)))
                if k == 6 and proto >= 3: return bytes(r.randrange(256) for _ in range(r.randrange(0, 20)))
                return "era5625/t_%dhPa" % r.choice([300, 500, 850])
            def value(d, shared):
                if d > 4 or r.random() < 0.3:
                    return r.choice(shared) if shared and r.random() < 0.2 else scalar()
                k = r.randrange(4)
                n = r.randrange(0, 6)
                if k == 0: v = [value(d + 1, shared) for _ in range(n)]
                elif k == 1: v = tuple(value(d + 1, shared) for _ in range(n))
                elif k == 2:
                    key = lambda i: r.choice([scalar(), r.randrange(100)]) if r.random() < 0.5 else "k%d" % i
                    v = {key(i): value(d + 1, shared) for i in range(n)}
                elif proto >= 4: v = {r.randrange(1000) for _ in range(n)}
                else: v = [n]
                shared.append(v)
                return v
            # Before protocol 3 (bytes) and 4 (sets), pickle writes those through globals, which are refused.
            for i in range(int(sys.argv[2])):
                proto = i % 6
                v = value(0, [])
                if isinstance(v, dict): v = {k: x for k, x in v.items() if not isinstance(k, bytes)}
                with open(os.path.join(sys.argv[1], "%d.pkl" % i), "wb") as f: pickle.dump(v, f, protocol=proto)
            """#
        let count = 1200
        _ = try python(writer, [dir.path, "\(count)"])
        let files = (0..<count).map { dir.appendingPathComponent("\($0).pkl") }
        let theirs = try pythonValues(files)
        var decoded = 0
        for (i, (url, t)) in zip(files, theirs).enumerated() {
            let bytes = [UInt8](try Data(contentsOf: url))
            do {
                let v = try PickleReader.decode(bytes)
                XCTAssertTrue(
                    sameTagged(tagged(v), t), "\(url.lastPathComponent) (protocol \(i % 6)) decodes differently")
                decoded += 1
            } catch let f as PickleReader.Failure {
                // Protocol 0 writes non-ASCII text with escapes, which this reader does not expand.
                XCTAssertTrue(f.problem.contains("escapes") && i % 6 == 0, "\(url.lastPathComponent): \(f.problem)")
            }
        }
        XCTAssertGreaterThan(decoded, count * 3 / 4)
    }

    /// Thousands of random and mutated pickles: every one decodes or fails cleanly, and wherever both
    /// decode, Python (with globals refused) gets the same value; where only Python decodes, ours hit
    /// one of its stated limits.
    func testFuzzAgainstPython() throws {
        var rng = SplitMix(11)
        let seeds = try dills.map { [UInt8](try Data(contentsOf: $0)) }
        let alphabet: [UInt8] =
            Array(0x28...0x32) + [
                0x4A, 0x4B, 0x4D, 0x4E, 0x58, 0x5D, 0x61, 0x65, 0x68, 0x71, 0x73,
                0x74, 0x75, 0x7D, 0x85, 0x86, 0x87, 0x88, 0x8A, 0x8C, 0x94, 0x95, 0x2E, 0x47, 0x8F, 0x90,
            ]
        var cases: [[UInt8]] = []
        for i in 0..<4000 {
            if i % 2 == 0 {
                var b = seeds[Int(rng.next() % UInt64(seeds.count))]
                for _ in 0..<(1 + rng.next() % 4) {
                    let at = Int(rng.next() % UInt64(b.count))
                    switch rng.next() % 4 {
                    case 0: b[at] = UInt8(truncatingIfNeeded: rng.next())
                    case 1: b[at] = alphabet[Int(rng.next() % UInt64(alphabet.count))]
                    case 2: b.remove(at: at)
                    default: b.insert(UInt8(truncatingIfNeeded: rng.next()), at: at)
                    }
                }
                if rng.next() % 4 == 0 { b = Array(b.prefix(Int(rng.next() % UInt64(b.count)))) }
                cases.append(b)
            } else {
                let n = Int(rng.next() % 40)
                cases.append([0x80, 0x04] + (0..<n).map { _ in alphabet[Int(rng.next() % UInt64(alphabet.count))] })
            }
        }
        var ours: [Result<PickleValue, PickleReader.Failure>] = []
        for c in cases {
            do { ours.append(.success(try PickleReader.decode(c))) } catch let f as PickleReader.Failure {
                ours.append(.failure(f))
            } catch { XCTFail("not a clean Failure: \(error)") }
        }
        // Python checks every case that one side decodes.
        let dir = temporaryDirectory(self)
        var checked: [(Int, URL)] = []
        for (i, c) in cases.enumerated() {
            let url = dir.appendingPathComponent("\(i).pkl")
            try Data(c).write(to: url)
            checked.append((i, url))
        }
        let theirs = try pythonValues(checked.map(\.1))
        XCTAssertEqual(theirs.count, checked.count)
        var agreed = 0, bothFailed = 0
        for ((i, _), t) in zip(checked, theirs) {
            let pythonError = (t as? [String: Any])?["error"] as? String
            let pythonFailed = pythonError != nil
            switch ours[i] {
            case .success(let v):
                if let pythonError {
                    // Python is stricter where it checks a FRAME's length as the frame starts, and it runs
                    // out of memory on a huge memo index (our memo is sparse).
                    XCTAssertTrue(
                        cases[i].contains(0x95) || pythonError == "MemoryError",
                        "case \(i): we decoded what Python refused (\(pythonError)): \(cases[i])")
                } else {
                    XCTAssertTrue(sameTagged(tagged(v), t), "case \(i): \(cases[i])")
                    agreed += 1
                }
            case .failure(let f):
                if pythonFailed {
                    bothFailed += 1
                    continue
                }
                let limit = ["64 bits", "nested deeper", "more than", "UTF-8", "newer than", "STOP with"]
                XCTAssertTrue(
                    limit.contains { f.problem.contains($0) }, "case \(i): only Python decoded it: \(f.problem)")
            }
        }
        XCTAssertGreaterThan(agreed, 100, "the fuzz must reach decodable pickles too")
        XCTAssertGreaterThan(bothFailed, 1000)
    }
}
