import Foundation
import RainSupport

/// A value of the plain-data subset of Python's pickle: what PyRain's `.dill` metadata holds.
public indirect enum PickleValue: Equatable {
    case none
    case bool(Bool)
    case int(Int)
    case float(Double)
    case string(String)
    case bytes([UInt8])
    case list([PickleValue])
    case tuple([PickleValue])
    /// Elements in pickle order (Python's own order for a set is its hash order).
    case set([PickleValue])
    /// Entries in insertion order (Python dicts keep it); a later equal key replaces an earlier one.
    case dict([Entry])

    public struct Entry: Equatable {
        public var key: PickleValue
        public var value: PickleValue
        public init(key: PickleValue, value: PickleValue) {
            self.key = key
            self.value = value
        }
    }

    /// The value for a string key of a dict.
    public subscript(key: String) -> PickleValue? {
        guard case .dict(let entries) = self else { return nil }
        return entries.last { $0.key == .string(key) }?.value
    }
}

/// Reads pickles (protocols 0–5) made only of dict, list, tuple, set, str, bytes, int, float, bool and
/// None. It never imports or calls anything: an opcode that would (GLOBAL, REDUCE, BUILD, …) is an error
/// naming the byte offset. Lengths are checked against the bytes present before anything is allocated,
/// and nesting depth and the size of the decoded tree are bounded, so hostile input costs bounded memory.
public struct PickleReader {
    /// Inputs larger than this are refused (RainBench's metadata is a few KiB).
    public static let maxBytes = 1 << 20
    /// Containers nested deeper than this are refused (a pickle can also refer to itself through its memo).
    public static let maxDepth = 64
    /// Values in the decoded tree, counting shared ones each time they appear.
    public static let maxValues = 1 << 20

    /// Why a pickle was refused: `offset` is the byte where reading stopped.
    public struct Failure: Error, Equatable {
        public var offset: Int
        public var problem: String
        /// The opcode's name when an opcode that would run code was refused.
        public var refusedOpcode: String?
    }

    /// Decodes `bytes`; `Failure` says where and why it could not.
    public static func decode(_ bytes: [UInt8]) throws -> PickleValue {
        guard bytes.count <= maxBytes else {
            throw Failure(offset: 0, problem: "\(bytes.count) bytes, more than metadata needs (\(maxBytes))")
        }
        var machine = Machine(bytes: bytes)
        let top = try machine.run()
        var budget = maxValues
        return try machine.freeze(top, depth: 0, budget: &budget)
    }

    /// Opcodes that import, call or look up objects: refused by name.
    static let refused: [UInt8: String] = [
        0x63: "GLOBAL", 0x93: "STACK_GLOBAL", 0x52: "REDUCE", 0x62: "BUILD", 0x69: "INST", 0x6F: "OBJ",
        0x81: "NEWOBJ", 0x92: "NEWOBJ_EX", 0x50: "PERSID", 0x51: "BINPERSID", 0x82: "EXT1", 0x83: "EXT2",
        0x84: "EXT4", 0x97: "NEXT_BUFFER", 0x98: "READONLY_BUFFER",
    ]
}

extension PickleReader {
    /// A container while the pickle is being read: pickle's memo shares objects by reference, and a
    /// memoised dict is filled after it is memoised, so containers live in an arena and are referred to
    /// by index until frozen. (Indices, not object references: a hostile pickle can nest containers
    /// 100,000 deep or make cycles, and releasing such a graph of references would recurse that deep.)
    struct Box {
        enum Kind { case list, tuple, dict, set }
        let kind: Kind
        var items: [Object] = []
        init(_ kind: Kind, _ items: [Object] = []) {
            self.kind = kind
            self.items = items
        }
    }

    enum Object {
        case scalar(PickleValue)
        case box(Int)
    }

    /// The pickle virtual machine, restricted to building plain values.
    struct Machine {
        let bytes: [UInt8]
        var at = 0
        var stack: [Object] = []
        var marks: [Int] = []
        var memo: [Int: Object] = [:]
        var boxes: [Box] = []

        init(bytes: [UInt8]) { self.bytes = bytes }

        func fail(_ problem: String, at offset: Int? = nil) -> Failure {
            Failure(offset: offset ?? at, problem: problem)
        }

        mutating func take(_ n: Int, _ what: String) throws -> ArraySlice<UInt8> {
            guard n >= 0, n <= bytes.count - at else {
                throw fail("\(what) claims \(n) bytes but only \(bytes.count - at) remain (truncated or corrupt)")
            }
            defer { at += n }
            return bytes[at..<(at + n)]
        }

        /// An unsigned little-endian integer of `n` bytes.
        mutating func uint(_ n: Int, _ what: String) throws -> Int {
            let s = try take(n, what)
            var v: UInt64 = 0
            for (i, b) in s.enumerated() { v |= UInt64(b) << (8 * UInt64(i)) }
            guard v <= UInt64(Int.max) else { throw fail("\(what): length \(v) is out of range", at: at - n) }
            return Int(v)
        }

        /// Text up to the next newline (protocol 0's arguments).
        mutating func line(_ what: String) throws -> String {
            guard let nl = bytes[at...].firstIndex(of: 0x0A) else { throw fail("\(what): no end of line (truncated)") }
            let s = String(decoding: bytes[at..<nl], as: UTF8.self)
            at = nl + 1
            return s
        }

        mutating func text(_ n: Int, _ what: String) throws -> String {
            let start = at
            let s = try take(n, what)
            guard let str = String(validating: s, as: UTF8.self) else {
                throw fail("\(what) is not valid UTF-8", at: start)
            }
            return str
        }

        mutating func pop(_ what: String) throws -> Object {
            guard let o = stack.popLast() else { throw fail("\(what) on an empty stack", at: at - 1) }
            if let m = marks.last, stack.count < m { throw fail("\(what) reaches below a MARK", at: at - 1) }
            return o
        }

        /// The objects pushed since the last MARK, which is removed.
        mutating func popMark(_ what: String) throws -> [Object] {
            guard let m = marks.popLast() else { throw fail("\(what) without a MARK", at: at - 1) }
            defer { stack.removeSubrange(m...) }
            return Array(stack[m...])
        }

        func top(_ what: String) throws -> Object {
            guard let o = stack.last else { throw fail("\(what) on an empty stack", at: at - 1) }
            return o
        }

        /// The arena index of the container `what` adds to: the object on top of the stack.
        func container(_ what: String, kinds: [Box.Kind]) throws -> Int {
            guard case .box(let b)? = stack.last, kinds.contains(boxes[b].kind) else {
                throw fail(
                    "\(what) needs a \(kinds.map { "\($0)" }.joined(separator: " or ")) below its items", at: at - 1)
            }
            return b
        }

        mutating func push(_ v: PickleValue) { stack.append(.scalar(v)) }

        mutating func pushBox(_ kind: Box.Kind, _ items: [Object] = []) {
            boxes.append(Box(kind, items))
            stack.append(.box(boxes.count - 1))
        }

        /// Runs to STOP and returns the top of the stack.
        mutating func run() throws -> Object {
            while at < bytes.count {
                let opAt = at
                let op = bytes[at]
                at += 1
                if let name = PickleReader.refused[op] {
                    var f = fail("opcode \(name) would import or call Python code", at: opAt)
                    f.refusedOpcode = name
                    throw f
                }
                if op == 0x2E {  // STOP
                    guard stack.count == 1, marks.isEmpty else {
                        throw fail("STOP with \(stack.count) objects and \(marks.count) marks left", at: opAt)
                    }
                    return stack[0]
                }
                try step(op, at: opAt)
            }
            throw fail("the data end before STOP (truncated)")
        }
    }
}
