import CNetCDF
import Foundation
import RainSupport

/// The value types SwiftRain writes and reads.
public enum NetCDFType {
    case short, float, double, int, int64

    var code: nc_type {
        switch self {
        case .short: return nc_type(NC_SHORT)
        case .float: return nc_type(NC_FLOAT)
        case .double: return nc_type(NC_DOUBLE)
        case .int: return nc_type(NC_INT)
        case .int64: return nc_type(NC_INT64)
        }
    }
}

/// An attribute value: text or numbers.
public enum NetCDFAttribute: Equatable {
    case text(String)
    case doubles([Double])
    case floats([Float])
    case shorts([Int16])
}

/// One open NetCDF file (libnetcdf's ncid), closed when the object goes. libnetcdf is not thread-safe:
/// use one file from one thread at a time.
public final class NetCDFFile {
    public let path: String
    let id: Int32
    private var open = true
    /// For a group: the file it lives in, kept alive (and open) as long as the group is used.
    private let parent: NetCDFFile?

    private init(path: String, id: Int32, parent: NetCDFFile? = nil) {
        self.path = path
        self.id = id
        self.parent = parent
        open = parent == nil
    }
    deinit { if open { nc_close(id) } }

    /// The group `name` inside this file or group (NetCDF-4/HDF5, e.g. GPM IMERG's `Grid`), or nil.
    public func group(_ name: String) -> NetCDFFile? {
        var g: Int32 = 0
        guard nc_inq_grp_ncid(id, name, &g) == NC_NOERR else { return nil }
        return NetCDFFile(path: "\(path): \(name)", id: g, parent: self)
    }

    /// A new group `name` (define mode), to write variables into.
    public func defineGroup(_ name: String) throws -> NetCDFFile {
        var g: Int32 = 0
        try check(nc_def_grp(id, name, &g), "definition of group \(name)")
        return NetCDFFile(path: "\(path): \(name)", id: g, parent: self)
    }

    /// A new NetCDF-4 (HDF5) file, replacing any file at `path`; in define mode.
    public static func create(path: String) throws -> NetCDFFile {
        var id: Int32 = 0
        try check(nc_create(path, NC_NETCDF4 | NC_CLOBBER, &id), path, "create")
        return NetCDFFile(path: path, id: id)
    }

    /// An existing file (NetCDF-3 or -4), read-only.
    public static func open(path: String) throws -> NetCDFFile {
        var id: Int32 = 0
        try check(nc_open(path, NC_NOWRITE, &id), path, "open")
        return NetCDFFile(path: path, id: id)
    }

    /// Writes what is pending and closes the file; errors (a full disk) surface here, not in deinit.
    public func close() throws {
        guard open else { return }
        open = false
        try Self.check(nc_close(id), path, "close")
    }

    static func check(_ status: Int32, _ path: String, _ what: String) throws {
        guard status != NC_NOERR else { return }
        throw SwiftRainError(
            path, "NetCDF \(what) failed", found: String(cString: nc_strerror(status)),
            hint: "check the path, the free disk space and that the file is NetCDF")
    }
    func check(_ status: Int32, _ what: String) throws { try Self.check(status, path, what) }

    // MARK: Defining

    /// A dimension of `length` elements (nil: unlimited, grown by writes).
    public func defineDimension(_ name: String, length: Int?) throws -> Int32 {
        var d: Int32 = 0
        try check(nc_def_dim(id, name, length ?? 0, &d), "definition of dimension \(name)")
        return d
    }

    /// A variable over `dimensions`, optionally deflated (1–9) and, for a float variable, with a fill value.
    public func defineVariable(
        _ name: String, _ type: NetCDFType, dimensions: [Int32], deflate: Int32 = 0, fill: Float? = nil
    ) throws -> Int32 {
        var v: Int32 = 0
        try check(nc_def_var(id, name, type.code, Int32(dimensions.count), dimensions, &v), "definition of \(name)")
        if deflate > 0 { try check(nc_def_var_deflate(id, v, 1, 1, deflate), "compression of \(name)") }
        if let fill, type == .float {
            var f = fill
            try check(nc_def_var_fill(id, v, 0, &f), "fill value of \(name)")
        }
        return v
    }

    /// Sets an attribute of `variable` (nil: a global attribute).
    public func setAttribute(_ name: String, _ value: NetCDFAttribute, variable: Int32? = nil) throws {
        let v = variable ?? NC_GLOBAL
        switch value {
        case .text(let s):
            let bytes = Array(s.utf8)
            try check(
                nc_put_att_text(id, v, name, bytes.count, bytes.map { CChar(bitPattern: $0) }), "attribute \(name)")
        case .doubles(let d):
            try check(nc_put_att_double(id, v, name, nc_type(NC_DOUBLE), d.count, d), "attribute \(name)")
        case .floats(let f):
            try check(nc_put_att_float(id, v, name, nc_type(NC_FLOAT), f.count, f), "attribute \(name)")
        case .shorts(let h):
            try check(nc_put_att_short(id, v, name, nc_type(NC_SHORT), h.count, h), "attribute \(name)")
        }
    }

    /// Leaves define mode: values can be written from here on.
    public func endDefinitions() throws { try check(nc_enddef(id), "end of definitions") }

    // MARK: Writing

    /// Writes `values` into the hyperslab at `start` of extent `count` (row-major, last index fastest).
    public func write(_ variable: Int32, _ values: [Float], start: [Int], count: [Int]) throws {
        try check(nc_put_vara_float(id, variable, start, count, values), "write")
    }
    public func write(_ variable: Int32, _ values: [Int16], start: [Int], count: [Int]) throws {
        try check(nc_put_vara_short(id, variable, start, count, values), "write")
    }
    public func write(_ variable: Int32, _ values: [Double], start: [Int], count: [Int]) throws {
        try check(nc_put_vara_double(id, variable, start, count, values), "write")
    }
    public func write(_ variable: Int32, _ values: [Int32], start: [Int], count: [Int]) throws {
        try check(nc_put_vara_int(id, variable, start, count, values), "write")
    }
    public func write(_ variable: Int32, _ values: [Int64], start: [Int], count: [Int]) throws {
        try check(nc_put_vara_longlong(id, variable, start, count, values), "write")
    }

    // MARK: Reading

    /// The id of variable `name`, or nil if the file has none.
    public func variable(_ name: String) -> Int32? {
        var v: Int32 = 0
        return nc_inq_varid(id, name, &v) == NC_NOERR ? v : nil
    }

    /// The names and lengths of `variable`'s dimensions, in order.
    public func dimensions(of variable: Int32) throws -> [(name: String, length: Int)] {
        var n: Int32 = 0
        try check(nc_inq_varndims(id, variable, &n), "inquiry")
        var dims = [Int32](repeating: 0, count: Int(n))
        try check(nc_inq_vardimid(id, variable, &dims), "inquiry")
        return try dims.map { d in
            var name = [CChar](repeating: 0, count: Int(NC_MAX_NAME) + 1)
            var length = 0
            try check(nc_inq_dim(id, d, &name, &length), "inquiry")
            return (String(cString: name), length)
        }
    }

    /// A variable's values in the hyperslab (whole variable by default), converted to Double by libnetcdf.
    public func readDoubles(_ variable: Int32, start: [Int]? = nil, count: [Int]? = nil) throws -> [Double] {
        let dims = try dimensions(of: variable)
        let start = start ?? dims.map { _ in 0 }, count = count ?? dims.map(\.length)
        var out = [Double](repeating: 0, count: count.reduce(1, *))
        try check(nc_get_vara_double(id, variable, start, count, &out), "read")
        return out
    }
    public func readFloats(_ variable: Int32, start: [Int]? = nil, count: [Int]? = nil) throws -> [Float] {
        let dims = try dimensions(of: variable)
        let start = start ?? dims.map { _ in 0 }, count = count ?? dims.map(\.length)
        var out = [Float](repeating: 0, count: count.reduce(1, *))
        try check(nc_get_vara_float(id, variable, start, count, &out), "read")
        return out
    }

    /// Whether `variable` holds floating-point values (float or double).
    public func isFloatingPoint(_ variable: Int32) throws -> Bool {
        var t: nc_type = 0
        try check(nc_inq_vartype(id, variable, &t), "inquiry")
        return t == nc_type(NC_FLOAT) || t == nc_type(NC_DOUBLE)
    }

    /// libnetcdf's default fill value for `variable`'s type (what unwritten cells hold), as a Double.
    public func defaultFill(_ variable: Int32) throws -> Double? {
        var t: nc_type = 0
        try check(nc_inq_vartype(id, variable, &t), "inquiry")
        switch Int32(t) {
        case NC_FLOAT: return Double(Float(9.969_209_968_386_869e36))  // NC_FILL_FLOAT
        case NC_DOUBLE: return 9.969_209_968_386_869e36  // NC_FILL_DOUBLE
        case NC_SHORT: return -32767
        case NC_INT: return -2_147_483_647
        default: return nil
        }
    }

    /// An attribute of `variable` (nil: global) as text or numbers; nil if absent.
    public func attribute(_ name: String, variable: Int32? = nil) throws -> NetCDFAttribute? {
        let v = variable ?? NC_GLOBAL
        var type: nc_type = 0
        var length = 0
        guard nc_inq_att(id, v, name, &type, &length) == NC_NOERR else { return nil }
        if type == nc_type(NC_CHAR) {
            var chars = [CChar](repeating: 0, count: length + 1)
            try check(nc_get_att_text(id, v, name, &chars), "attribute \(name)")
            return .text(String(cString: chars))
        }
        var values = [Double](repeating: 0, count: length)
        try check(nc_get_att_double(id, v, name, &values), "attribute \(name)")
        return .doubles(values)
    }
}
