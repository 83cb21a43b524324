import Foundation
import RainNetCDF
import RainSupport

/// One variable of a gridded source (a NetCDF file or a Zarr store) as `SourceField` reads it: dimensions,
/// coordinate values, CF attributes and hyperslabs as Doubles in C order.
protocol GriddedVariable {
    /// The file or store (in errors).
    var path: String { get }
    var name: String { get }
    var dimensions: [(name: String, length: Int)] { get }
    /// The values of dimension `dim`'s coordinate variable; nil when there is none.
    func coordinate(_ dim: String) throws -> [Double]?
    /// Attribute `key` of the variable (or, with `of`, of another variable) as text / numbers.
    func text(_ key: String, of variable: String?) throws -> String?
    func numbers(_ key: String, of variable: String?) throws -> [Double]?
    /// Values that mean "missing" besides NaN (CF `_FillValue`, `missing_value`, the format's default fill).
    func fills() throws -> [Double]
    func read(start: [Int], count: [Int]) throws -> [Double]
}

/// A NetCDF variable, found by a path into groups (GPM's Grid/precipitationCal) among alternatives
/// separated by | (IMERG V07 renamed precipitationCal to precipitation).
struct NetCDFVariable: GriddedVariable {
    let file: NetCDFFile
    let name: String
    let id: Int32
    let dimensions: [(name: String, length: Int)]

    init(file: NetCDFFile, name: String) throws {
        var found: (NetCDFFile, String, Int32)?
        for candidate in name.split(separator: "|").map(String.init) where found == nil {
            var parts = candidate.split(separator: "/").map(String.init)
            let leaf = parts.removeLast()
            var g: NetCDFFile? = file
            for p in parts { g = g?.group(p) }
            if let g, let v = g.variable(leaf) { found = (g, leaf, v) }
        }
        guard let (group, leaf, v) = found else {
            throw SwiftRainError(
                file.path, "no variable '\(name.replacingOccurrences(of: "|", with: "' or '"))'",
                expected: "a variable named \(name.replacingOccurrences(of: "|", with: " or "))",
                hint: "check the file is the one its name says (ncdump -h shows its variables)")
        }
        self.file = group
        self.name = leaf
        id = v
        dimensions = try group.dimensions(of: v)
    }

    var path: String { file.path }

    func coordinate(_ dim: String) throws -> [Double]? { try file.variable(dim).map { try file.readDoubles($0) } }

    private func attribute(_ key: String, _ variable: String?) throws -> NetCDFAttribute? {
        guard let v = variable.map({ file.variable($0) }) ?? id else { return nil }
        return try file.attribute(key, variable: v)
    }

    func text(_ key: String, of variable: String?) throws -> String? {
        if case .text(let t)? = try attribute(key, variable) { return t }
        return nil
    }

    func numbers(_ key: String, of variable: String?) throws -> [Double]? {
        if case .doubles(let d)? = try attribute(key, variable) { return d }
        return nil
    }

    func fills() throws -> [Double] {
        var fills: [Double] = []
        for key in ["_FillValue", "missing_value"] { fills += try numbers(key, of: nil) ?? [] }
        if let d = try file.defaultFill(id) { fills.append(d) }
        return fills
    }

    func read(start: [Int], count: [Int]) throws -> [Double] { try file.readDoubles(id, start: start, count: count) }
}
