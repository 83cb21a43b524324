import Foundation

/// Writes the same plain-data subset `PickleReader` accepts, as pickle protocol 4 (what Python ≥ 3.8's
/// pickle and dill write by default; no frames, which are optional, and no memo). `pickle.load`, and so
/// PyRain's `dill.load`, reads the result back as the equal Python value.
public enum PickleWriter {
    public static func encode(_ value: PickleValue) -> [UInt8] {
        var out: [UInt8] = [0x80, 4]  // PROTO 4
        write(value, into: &out)
        out.append(0x2E)  // STOP
        return out
    }

    static func write(_ value: PickleValue, into out: inout [UInt8]) {
        func littleEndian<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.littleEndian) { out += $0 } }
        func items(_ values: [PickleValue]) { for v in values { write(v, into: &out) } }
        switch value {
        case .none: out.append(0x4E)  // NONE
        case .bool(let b): out.append(b ? 0x88 : 0x89)  // NEWTRUE / NEWFALSE
        case .int(let i):
            if (0..<256).contains(i) {
                out += [0x4B, UInt8(i)]  // BININT1
            } else if Int64(Int32.min)...Int64(Int32.max) ~= Int64(i) {
                out.append(0x4A)  // BININT: signed 32-bit
                littleEndian(Int32(i))
            } else {
                out += [0x8A, 8]  // LONG1: 8 bytes of two's complement
                littleEndian(Int64(i))
            }
        case .float(let d):
            out.append(0x47)  // BINFLOAT: big-endian IEEE 754 double
            withUnsafeBytes(of: d.bitPattern.bigEndian) { out += $0 }
        case .string(let s):
            let bytes = Array(s.utf8)
            if bytes.count < 256 {
                out += [0x8C, UInt8(bytes.count)]  // SHORT_BINUNICODE
            } else {
                out.append(0x58)  // BINUNICODE
                littleEndian(UInt32(bytes.count))
            }
            out += bytes
        case .bytes(let b):
            if b.count < 256 {
                out += [0x43, UInt8(b.count)]  // SHORT_BINBYTES
            } else {
                out.append(0x42)  // BINBYTES
                littleEndian(UInt32(b.count))
            }
            out += b
        case .list(let l):
            out.append(0x5D)  // EMPTY_LIST
            if !l.isEmpty {
                out.append(0x28)  // MARK
                items(l)
                out.append(0x65)  // APPENDS
            }
        case .tuple(let t):
            switch t.count {
            case 0: out.append(0x29)  // EMPTY_TUPLE
            case 1...3:
                items(t)
                out.append([0x85, 0x86, 0x87][t.count - 1])  // TUPLE1, TUPLE2, TUPLE3
            default:
                out.append(0x28)  // MARK
                items(t)
                out.append(0x74)  // TUPLE
            }
        case .set(let s):
            out.append(0x8F)  // EMPTY_SET
            if !s.isEmpty {
                out.append(0x28)  // MARK
                items(s)
                out.append(0x90)  // ADDITEMS
            }
        case .dict(let entries):
            out.append(0x7D)  // EMPTY_DICT
            if !entries.isEmpty {
                out.append(0x28)  // MARK
                for e in entries {
                    write(e.key, into: &out)
                    write(e.value, into: &out)
                }
                out.append(0x75)  // SETITEMS
            }
        }
    }
}

extension DatasetInfo {
    /// The metadata as PyRain's converters build the dict before `dill.dump`: dims and dateranges as
    /// tuples, `index2pressure` with int keys, times as floats and frequencies as ints.
    public var pickleValue: PickleValue {
        // PyRain's times are `datetime.timestamp()` floats; its frequencies are ints.
        func number(_ d: Double?) -> PickleValue { d.map { .float($0) } ?? .none }
        func ints(_ a: [Int]) -> PickleValue { .tuple(a.map { .int($0) }) }
        func entry(_ k: String, _ v: PickleValue) -> PickleValue.Entry { .init(key: .string(k), value: v) }
        let vars = variables.sorted { $0.key < $1.key }.map { key, v -> PickleValue.Entry in
            var fields = [
                entry("name", v.name.map { .string($0) } ?? .none), entry("mmap_name", .string(v.mmapName)),
                entry("type", .string(v.type)), entry("dims", ints(v.dims)), entry("offset", .int(v.offset)),
                entry("first_ts", number(v.firstTs)), entry("last_ts", number(v.lastTs)),
                entry("tfreq_s", v.tfreqS.map { .int(Int($0)) } ?? .none),
                entry("levels", v.levels.map { .list($0.map { .int($0) }) } ?? .none),
            ]
            if let u = v.units { fields.append(entry("units", .string(u))) }
            if let l = v.longName { fields.append(entry("long_name", .string(l))) }
            if let m = v.missingTs { fields.append(entry("missing_ts", .list(m.map { .float($0) }))) }
            if let i2p = v.index2pressure {
                let pairs = i2p.compactMap { k, p in Int(k).map { ($0, p) } }.sorted { $0.0 < $1.0 }
                fields.append(entry("index2pressure", .dict(pairs.map { .init(key: .int($0.0), value: .int($0.1)) })))
            }
            return entry(key, .dict(fields))
        }
        let files = memmap.sorted { $0.key < $1.key }.map { key, m in
            entry(
                key,
                .dict([
                    entry("dims", ints(m.dims)), entry("dtype", .string(m.dtype)),
                    entry("daterange", m.daterange.map { .tuple($0.map { .float($0) }) } ?? .none),
                    entry("tfreq_s", m.tfreqS.map { .int(Int($0)) } ?? .none),
                ]))
        }
        return .dict([entry("variables", .dict(vars)), entry("memmap", .dict(files))])
    }

    /// Writes `<name>.dill` (a pickle PyRain's `dill.load` reads) and `<name>_info.json` beside it.
    public func writeBoth(directory: URL, name: String) throws {
        try Data(PickleWriter.encode(pickleValue)).write(
            to: directory.appendingPathComponent("\(name).dill"), options: .atomic)
        try write(to: directory.appendingPathComponent("\(name)_info.json"))
    }
}
