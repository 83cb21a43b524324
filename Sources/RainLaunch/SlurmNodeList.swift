import RainSupport

/// SLURM's compressed host lists, e.g. `node[01-03,07],login5`, expanded in order (what
/// `scontrol show hostnames` prints), without needing scontrol.
public enum SlurmNodeList {
    public static func expand(_ list: String) throws -> [String] {
        var out: [String] = [], token = "", depth = 0
        for ch in list {
            if ch == "[" { depth += 1 } else if ch == "]" { depth -= 1 }
            if ch == "," && depth == 0 {
                out += try expandOne(token)
                token = ""
            } else {
                token.append(ch)
            }
        }
        if !token.isEmpty { out += try expandOne(token) }
        return out
    }

    private static func expandOne(_ token: String) throws -> [String] {
        guard let open = token.firstIndex(of: "[") else { return token.isEmpty ? [] : [token] }
        guard let close = token[open...].firstIndex(of: "]") else {
            throw SwiftRainError(
                "SLURM_JOB_NODELIST", "unbalanced brackets", found: token, hint: "check the job's environment")
        }
        let prefix = String(token[..<open]), rest = String(token[token.index(after: close)...])
        var names: [String] = []
        for part in token[token.index(after: open)..<close].split(separator: ",") {
            let bounds = part.split(separator: "-", maxSplits: 1).map(String.init)
            guard let lo = Int(bounds[0]), let hi = Int(bounds.count == 2 ? bounds[1] : bounds[0]), lo <= hi else {
                throw SwiftRainError(
                    "SLURM_JOB_NODELIST", "bad range", found: String(part), hint: "check the job's environment")
            }
            let width = bounds[0].count  // zero padding, as in node[01-10]
            for i in lo...hi {
                let digits = String(i)
                names.append(prefix + String(repeating: "0", count: max(0, width - digits.count)) + digits)
            }
        }
        // Anything after the bracket (e.g. a second bracket group) applies to every name.
        return try names.flatMap { n in try rest.isEmpty ? [n] : expandOne(n + rest) }
    }
}
