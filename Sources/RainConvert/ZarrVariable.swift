import Foundation
import RainSupport
import RainZarr

/// An array of a Zarr store, oriented by its dimension names (`_ARRAY_DIMENSIONS` or `dimension_names`) with
/// xarray's CF reading: a v2 array's `fill_value` is its `_FillValue`; v3 arrays carry `_FillValue` as an
/// attribute; `scale_factor`/`add_offset` and the time coordinate's `units`/`calendar` as attributes.
struct ZarrVariable: GriddedVariable {
    let store: ZarrStore
    let array: ZarrArray
    let dimensions: [(name: String, length: Int)]

    init(store: ZarrStore, name: String) throws {
        let a = try store.require(name, for: "a variable to convert")
        guard let names = a.dimensionNames, names.count == a.shape.count else {
            throw SwiftRainError(
                a.subject, "the array's dimensions have no names",
                expected: "_ARRAY_DIMENSIONS (v2, as xarray writes) or dimension_names (v3)",
                found: "shape \(a.shape)", hint: "write the store with xarray (Dataset.to_zarr), which names them")
        }
        self.store = store
        array = a
        dimensions = Array(zip(names, a.shape)).map { (name: $0.0, length: $0.1) }
    }

    var path: String { store.url.path }
    var name: String { array.name }

    func coordinate(_ dim: String) throws -> [Double]? { try store.array(dim)?.readAll() }

    private func attributes(_ variable: String?) throws -> [String: ZarrJSON]? {
        guard let variable else { return array.attributes }
        return try store.array(variable)?.attributes
    }

    func text(_ key: String, of variable: String?) throws -> String? { try attributes(variable)?[key]?.string }

    func numbers(_ key: String, of variable: String?) throws -> [Double]? { try attributes(variable)?[key]?.doubles }

    func fills() throws -> [Double] {
        var fills = array.format == 2 ? [array.fillValue] : []
        // v3: xarray writes _FillValue as a number, or base64 of the element's bytes for floats.
        if let f = array.attributes["_FillValue"] {
            if let d = f.double {
                fills.append(d)
            } else if let s = f.string, let bytes = Data(base64Encoded: s), [4, 8].contains(bytes.count),
                bytes.count == array.dataType.size
            {
                fills.append(
                    bytes.withUnsafeBytes { r in
                        bytes.count == 8
                            ? Double(bitPattern: r.loadUnaligned(as: UInt64.self))
                            : Double(Float(bitPattern: r.loadUnaligned(as: UInt32.self)))
                    })
            }
        }
        fills += array.attributes["missing_value"]?.doubles ?? []
        return fills.filter { !$0.isNaN }
    }

    func read(start: [Int], count: [Int]) throws -> [Double] { try array.read(start: start, count: count) }
}
