import Foundation
import RainConfig
import RainSupport

#if canImport(Glibc)
import Glibc
#endif

/// What `swiftrain inspect` prints: the datasets and their files and variables, and the validated
/// sample index per partition and lead time with the reasons samples were dropped.
public struct InspectReport: Encodable {
    public struct FileReport: Encodable {
        public var name: String, shape: [Int], bytes: Int, allocatedBytes: Int
        public var first: String?, last: String?, stepSeconds: Int?
    }
    public struct VariableReport: Encodable {
        public var key: String, file: String, channels: Int, levels: [Int]?, first: String?, last: String?
        /// False when its file is absent or broken.
        public var readable: Bool
        public var temporal: Bool
    }
    public struct DatasetReport: Encodable {
        public var name: String, directory: String, files: [FileReport], variables: [VariableReport]
    }
    public struct SampleReport: Encodable {
        public var sources: String, target: String, inputChannels: [String], offsetsHours: [Int], leadsHours: [Int]
        public var partitions: [PartitionReport]
    }
    public struct PartitionReport: Encodable {
        public var name: String, start: String, end: String, strideHours: Int, kept: Int, dropped: Int
        public var leads: [LeadSamples]
    }
    public var datasets: [DatasetReport]
    /// Quirks of the metadata survived (PyRain's rules), one line each.
    public var warnings: [String]
    /// Every file described and what the configuration reads from it (when there is a configuration).
    public var reads: [FileRead]?
    public var samples: SampleReport?

    public init(catalog: DataCatalog, config: Config?, spec: SampleSpec?, index: SampleIndex?, channelNames: [String]) {
        warnings = catalog.warnings
        reads = spec.map { catalog.reads(for: $0) }
        datasets = catalog.datasets.map { ds in
            DatasetReport(
                name: ds.name, directory: ds.directory.path,
                files: ds.files.values.sorted { $0.name < $1.name }.map { f in
                    var st = stat()
                    stat(f.mapped.path, &st)
                    return FileReport(
                        name: f.name, shape: f.info.dims, bytes: f.mapped.byteCount,
                        allocatedBytes: Int(st.st_blocks) * 512,
                        first: f.isTemporal ? UTCTime.iso(f.firstTime) : nil,
                        last: f.isTemporal ? UTCTime.iso(f.lastTime) : nil,
                        stepSeconds: f.isTemporal ? Int(f.step) : nil)
                },
                variables: ds.info.variables.keys.sorted().map { key in
                    let v = ds.info.variables[key]!
                    let span = (try? catalog.channels(of: key))?.first?.available
                    return VariableReport(
                        key: key, file: v.mmapName, channels: v.channelCount, levels: v.levels,
                        first: span.map { UTCTime.iso($0.first) }, last: span.map { UTCTime.iso($0.last) },
                        readable: ds.files[v.mmapName] != nil, temporal: v.isTemporal)
                })
        }
        if let config, let index {
            let spec = index.spec
            samples = SampleReport(
                sources: config.sources.rawValue, target: spec.target, inputChannels: channelNames,
                offsetsHours: spec.offsets.map { Int($0 / 3600) }, leadsHours: spec.leads.map { Int($0 / 3600) },
                partitions: index.partitions.map { p in
                    PartitionReport(
                        name: p.partition.name.rawValue, start: UTCTime.iso(p.partition.start),
                        end: UTCTime.iso(p.partition.end),
                        strideHours: Int(p.partition.stride / 3600), kept: p.count,
                        dropped: p.leads.reduce(0) { $0 + $1.dropped }, leads: p.leads)
                })
        }
    }

    public func json() -> String {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        enc.keyEncodingStrategy = .convertToSnakeCase
        return String(decoding: try! enc.encode(self), as: UTF8.self)
    }

    public func text() -> String {
        var out = ""
        for ds in datasets {
            out += "dataset \(ds.name)  (\(ds.directory))\n"
            for f in ds.files {
                let range = f.first.map { "  \($0) … \(f.last!) every \(f.stepSeconds! / 3600) h" } ?? "  constant"
                let sparse = f.allocatedBytes < f.bytes / 2 ? " (sparse: \(bytesText(f.allocatedBytes)) on disk)" : ""
                out += "  file \(f.name)  shape \(f.shape)  \(bytesText(f.bytes))\(sparse)\n   \(range)\n"
            }
            let w = ds.variables.map(\.key.count).max() ?? 0
            for v in ds.variables {
                let levels = v.levels.map { " levels \($0)" } ?? ""
                let when =
                    !v.readable
                    ? "  (\(v.file) not here)" : v.first.map { "  \($0) … \(v.last!)" } ?? "  constant"
                out +=
                    "  \(v.key.padding(toLength: w, withPad: " ", startingAt: 0))  \(v.channels) ch\(levels)\(when)\n"
            }
            out += "\n"
        }
        for w in warnings { out += "warning: \(w)\n" }
        if !warnings.isEmpty { out += "\n" }
        if let reads {
            out += "files this configuration reads:\n"
            let w = reads.map { $0.dataset.count + $0.file.count + 1 }.max() ?? 0
            for r in reads {
                let span = r.rows.map { " rows \($0.lowerBound)…\($0.upperBound) (\(bytesText(r.bytesRead)))" } ?? ""
                let what =
                    r.needed
                    ? (r.status == "present" ? "reads" : "NEEDED, \(r.status):") + span + " "
                        + r.readBy.joined(separator: ", ")
                    : "not needed"
                out +=
                    """
                      \("\(r.dataset)/\(r.file)".padding(toLength: w, withPad: " ", startingAt: 0))  \
                    \(bytesText(r.bytes).leftPad(10))  \(r.status.padding(toLength: 7, withPad: " ", startingAt: 0))  \
                    \(what)\n
                    """
            }
            out += "\n"
        }
        guard let s = samples else { return out }
        out +=
            """
            samples: sources \(s.sources), target \(s.target), inputs at \(s.offsetsHours) h, leads \
            \(s.leadsHours) h\n
            """
        out += "  \(s.inputChannels.count) input channels: \(s.inputChannels.joined(separator: ", "))\n"
        for p in s.partitions {
            out +=
                "\n\(p.name)  \(p.start) … \(p.end), every \(p.strideHours) h: \(p.kept) kept, \(p.dropped) dropped\n"
            for l in p.leads {
                out +=
                    """
                      lead \(String(l.leadHours).leftPad(3)) h: \(String(l.kept).leftPad(8)) kept \
                    \(String(l.dropped).leftPad(8)) dropped of \(l.candidates)\n
                    """
                // Variables of one dataset dropping the same samples for the same reason share a line.
                var groups: [(key: String, vars: [String], r: DropCount)] = []
                for r in l.reasons {
                    let ds = String(r.variable.split(separator: "/")[0])
                    let key = "\(ds)|\(r.reason)|\(r.count)"
                    if let i = groups.firstIndex(where: { $0.key == key }) {
                        groups[i].vars.append(r.variable)
                    } else {
                        groups.append((key, [r.variable], r))
                    }
                }
                for g in groups {
                    let who =
                        g.vars.count == 1
                        ? g.vars[0]
                        : "\(g.vars.count) variables of \(g.vars[0].split(separator: "/")[0]) ("
                            + g.vars.map { String($0.split(separator: "/")[1]) }.joined(separator: ", ") + ")"
                    out += "      \(String(g.r.count).leftPad(8))  \(who): \(g.r.reason)\n"
                }
            }
        }
        return out
    }
}
