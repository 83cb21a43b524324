import Foundation

extension PickleReader.Machine {
    typealias Box = PickleReader.Box
    typealias Object = PickleReader.Object

    /// One opcode (pickletools' names); `opAt` is its byte offset, `at` already past it.
    mutating func step(_ op: UInt8, at opAt: Int) throws {
        switch op {
        case 0x80:  // PROTO
            let v = try uint(1, "PROTO")
            guard v <= 5 else { throw fail("pickle protocol \(v) is newer than 5", at: opAt) }
        case 0x95:  // FRAME: a length prefix for the opcodes that follow; they are read as they come.
            let n = try uint(8, "FRAME")
            guard n <= bytes.count - at else {
                throw fail("FRAME of \(n) bytes but \(bytes.count - at) remain", at: opAt)
            }
        case 0x28: marks.append(stack.count)  // MARK
        case 0x30: _ = try pop("POP")
        case 0x31: _ = try popMark("POP_MARK")
        case 0x32: stack.append(try top("DUP"))

        case 0x4E: push(.none)  // NONE
        case 0x88: push(.bool(true))  // NEWTRUE
        case 0x89: push(.bool(false))  // NEWFALSE
        case 0x4B: push(.int(try uint(1, "BININT1")))
        case 0x4D: push(.int(try uint(2, "BININT2")))
        case 0x4A: push(.int(Int(Int32(truncatingIfNeeded: try uint(4, "BININT")))))
        case 0x8A: push(.int(try long(try uint(1, "LONG1"), "LONG1", opAt)))
        case 0x8B: push(.int(try long(try uint(4, "LONG4"), "LONG4", opAt)))
        case 0x47:  // BINFLOAT: big-endian IEEE double
            let s = try take(8, "BINFLOAT")
            push(.float(Double(bitPattern: s.reduce(UInt64(0)) { $0 << 8 | UInt64($1) })))
        case 0x49:  // INT (protocol 0): "01"/"00" are True/False
            let s = try line("INT")
            if s == "01" || s == "00" { push(.bool(s == "01")) } else { push(.int(try integer(s, "INT", opAt))) }
        case 0x4C:  // LONG (protocol 0)
            let s = try line("LONG")
            push(.int(try integer(s.hasSuffix("L") ? String(s.dropLast()) : s, "LONG", opAt)))
        case 0x46:  // FLOAT (protocol 0)
            let s = try line("FLOAT")
            guard let d = Double(s) else { throw fail("FLOAT '\(s.prefix(40))' is not a number", at: opAt) }
            push(.float(d))

        case 0x8C: push(.string(try text(try uint(1, "SHORT_BINUNICODE"), "SHORT_BINUNICODE")))
        case 0x58: push(.string(try text(try uint(4, "BINUNICODE"), "BINUNICODE")))
        case 0x8D: push(.string(try text(try uint(8, "BINUNICODE8"), "BINUNICODE8")))
        case 0x55: push(.string(try text(try uint(1, "SHORT_BINSTRING"), "SHORT_BINSTRING")))
        case 0x54: push(.string(try text(try uint(4, "BINSTRING"), "BINSTRING")))
        case 0x53, 0x56:  // STRING (a quoted repr), UNICODE (raw-unicode-escape): only without escapes
            let name = op == 0x53 ? "STRING" : "UNICODE"
            var s = try line(name)
            if op == 0x53 {
                guard s.count >= 2, let q = s.first, q == "'" || q == "\"", s.last == q else {
                    throw fail("STRING is not a quoted literal", at: opAt)
                }
                s = String(s.dropFirst().dropLast())
            }
            guard !s.contains("\\") else { throw fail("\(name) with escapes is not supported", at: opAt) }
            push(.string(s))
        case 0x43: push(.bytes(Array(try take(try uint(1, "SHORT_BINBYTES"), "SHORT_BINBYTES"))))
        case 0x42: push(.bytes(Array(try take(try uint(4, "BINBYTES"), "BINBYTES"))))
        case 0x8E: push(.bytes(Array(try take(try uint(8, "BINBYTES8"), "BINBYTES8"))))
        case 0x96: push(.bytes(Array(try take(try uint(8, "BYTEARRAY8"), "BYTEARRAY8"))))

        case 0x7D: pushBox(.dict)  // EMPTY_DICT
        case 0x5D: pushBox(.list)  // EMPTY_LIST
        case 0x29: pushBox(.tuple)  // EMPTY_TUPLE
        case 0x8F: pushBox(.set)  // EMPTY_SET
        case 0x64:  // DICT
            let items = try popMark("DICT")
            guard items.count % 2 == 0 else { throw fail("DICT with an odd number of items", at: opAt) }
            pushBox(.dict, items)
        case 0x6C: pushBox(.list, try popMark("LIST"))
        case 0x74: pushBox(.tuple, try popMark("TUPLE"))
        case 0x91: pushBox(.set, try popMark("FROZENSET"))
        case 0x85, 0x86, 0x87:  // TUPLE1, TUPLE2, TUPLE3
            let n = Int(op - 0x84)
            var items: [Object] = []
            for _ in 0..<n { items.insert(try pop("TUPLE\(n)"), at: 0) }
            pushBox(.tuple, items)
        case 0x61:  // APPEND
            let v = try pop("APPEND")
            boxes[try container("APPEND", kinds: [.list])].items.append(v)
        case 0x65:  // APPENDS
            let vs = try popMark("APPENDS")
            boxes[try container("APPENDS", kinds: [.list])].items += vs
        case 0x90:  // ADDITEMS
            let vs = try popMark("ADDITEMS")
            boxes[try container("ADDITEMS", kinds: [.set])].items += vs
        case 0x73:  // SETITEM
            let v = try pop("SETITEM"), k = try pop("SETITEM")
            boxes[try container("SETITEM", kinds: [.dict])].items += [k, v]
        case 0x75:  // SETITEMS
            let kv = try popMark("SETITEMS")
            guard kv.count % 2 == 0 else { throw fail("SETITEMS with an odd number of items", at: opAt) }
            boxes[try container("SETITEMS", kinds: [.dict])].items += kv

        case 0x94: memo[memo.count] = try top("MEMOIZE")  // MEMOIZE
        case 0x71: memo[try uint(1, "BINPUT")] = try top("BINPUT")
        case 0x72: memo[try uint(4, "LONG_BINPUT")] = try top("LONG_BINPUT")
        case 0x70: memo[try integer(try line("PUT"), "PUT", opAt)] = try top("PUT")
        case 0x68: try get(try uint(1, "BINGET"), opAt)
        case 0x6A: try get(try uint(4, "LONG_BINGET"), opAt)
        case 0x67: try get(try integer(try line("GET"), "GET", opAt), opAt)
        default:
            throw fail("unknown opcode 0x\(String(op, radix: 16)) (not a pickle, or corrupt)", at: opAt)
        }
    }

    mutating func get(_ index: Int, _ opAt: Int) throws {
        guard let o = memo[index] else {
            throw fail("memo index \(index) was never stored (\(memo.count) entries)", at: opAt)
        }
        stack.append(o)
    }

    func integer(_ s: String, _ what: String, _ opAt: Int) throws -> Int {
        guard let v = Int(s) else {
            throw fail("\(what) '\(s.prefix(40))' is not an integer that fits 64 bits", at: opAt)
        }
        return v
    }

    /// A little-endian two's-complement integer of `n` bytes; more than 8 does not fit an Int.
    mutating func long(_ n: Int, _ what: String, _ opAt: Int) throws -> Int {
        guard n <= 8 else { throw fail("\(what) integer of \(n) bytes does not fit 64 bits", at: opAt) }
        let s = try take(n, what)
        guard n > 0 else { return 0 }
        var v: UInt64 = 0
        for (i, b) in s.enumerated() { v |= UInt64(b) << (8 * UInt64(i)) }
        if n < 8, s.last! & 0x80 != 0 { v |= ~0 << (8 * UInt64(n)) }  // sign-extend
        return Int(bitPattern: UInt(v))
    }

    /// The finished value of `o`, checking depth (which also catches self-reference) and total size.
    func freeze(_ o: PickleReader.Object, depth: Int, budget: inout Int) throws -> PickleValue {
        budget -= 1
        guard budget >= 0 else {
            throw fail("decodes to more than \(PickleReader.maxValues) values (shared objects repeated)", at: 0)
        }
        guard case .box(let b) = o else {
            if case .scalar(let v) = o { return v }
            return .none
        }
        guard depth < PickleReader.maxDepth else {
            throw fail("containers nested deeper than \(PickleReader.maxDepth) (or one contains itself)", at: 0)
        }
        let items = try boxes[b].items.map { try freeze($0, depth: depth + 1, budget: &budget) }
        switch boxes[b].kind {
        case .list: return .list(items)
        case .set: return .set(items)
        case .tuple: return .tuple(items)
        case .dict:
            var entries: [PickleValue.Entry] = []
            var index: [PickleValue: Int] = [:]
            for i in stride(from: 0, to: items.count, by: 2) {
                if let j = index[items[i]] {
                    entries[j].value = items[i + 1]
                } else {
                    index[items[i]] = entries.count
                    entries.append(.init(key: items[i], value: items[i + 1]))
                }
            }
            return .dict(entries)
        }
    }
}

extension PickleValue: Hashable {
    public func hash(into h: inout Hasher) {
        switch self {
        case .none: h.combine(0)
        case .bool(let b): h.combine(b ? 1 : 0)  // True == 1 in Python
        case .int(let i): h.combine(i)
        case .float(let d): h.combine(d)
        case .string(let s): h.combine(s)
        case .bytes(let b): h.combine(b)
        case .list(let l), .tuple(let l), .set(let l): h.combine(l)
        case .dict(let d): h.combine(d.count)
        }
    }
}
