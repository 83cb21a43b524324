import Foundation
import RainSupport

/// A CF time coordinate's `units` ("hours since 1979-01-01 00:00:00") and `calendar`, turned into UTC
/// epoch seconds with integer arithmetic: no time zone of the machine takes part (PyRain's converters
/// build their rows from naive local datetimes, which shifts every row across a DST change).
public struct CFTime: Equatable {
    /// Seconds per unit of the coordinate.
    public var unitSeconds: Int64
    /// The reference date, UTC.
    public var origin: EpochSeconds

    /// Parses `units` of variable `subject` (used in errors); `calendar` nil means the CF default.
    public init(units: String, calendar: String?, subject: String) throws {
        let words = units.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
        let seconds: [String: Int64] = [
            "seconds": 1, "second": 1, "secs": 1, "s": 1, "minutes": 60, "minute": 60, "mins": 60,
            "hours": 3600, "hour": 3600, "hrs": 3600, "h": 3600, "days": 86_400, "day": 86_400, "d": 86_400,
        ]
        func bad(_ why: String) -> SwiftRainError {
            SwiftRainError(
                subject, "time units not understood: \(why)",
                expected: "'<seconds|minutes|hours|days> since YYYY-MM-DD[ HH:MM[:SS]][ UTC|Z|+00:00]'",
                found: units, hint: "fix the time variable's units attribute (CF conventions)")
        }
        guard words.count >= 3, words[1].lowercased() == "since", let s = seconds[words[0].lowercased()] else {
            throw bad("no '<unit> since <date>'")
        }
        var rest = Array(words[2...])
        // A trailing zone: UTC only; another offset would need a shift we refuse to guess.
        if rest.count > 1, let zone = rest.last?.uppercased() {
            if ["UTC", "GMT", "Z", "+00:00", "+0000", "+00", "-00:00"].contains(zone) {
                rest.removeLast()
            } else if zone.hasPrefix("+") || zone.hasPrefix("-") || zone.allSatisfy(\.isLetter) {
                throw bad("a time zone other than UTC (\(rest.last!))")
            }
        }
        // The time may carry fractional seconds ("00:00:00.0"): drop them.
        var text = rest.joined(separator: " ")
        if let dot = text.lastIndex(of: "."), text[text.index(after: dot)...].allSatisfy(\.isNumber) {
            text = String(text[..<dot])
        }
        // "1900-1-1 0:0:0" appears in the wild: pad the fields.
        let padded = text.split(whereSeparator: { $0 == " " || $0 == "T" }).enumerated().map { i, part in
            part.split(separator: i == 0 ? "-" : ":").enumerated().map { j, f in
                f.count == 1 && !(i == 0 && j == 0) ? "0" + f : String(f)
            }.joined(separator: i == 0 ? "-" : ":")
        }.joined(separator: " ")
        guard let t = UTCTime.parse(padded) else { throw bad("the reference date '\(text)'") }
        let cal = (calendar ?? "standard").lowercased()
        guard ["standard", "gregorian", "proleptic_gregorian"].contains(cal) else {
            throw SwiftRainError(
                subject, "calendar '\(calendar ?? "")' is not supported",
                expected: "standard, gregorian or proleptic_gregorian (ERA5, IMERG and SimSat use these)",
                found: calendar ?? "", hint: "convert the file's time axis to the Gregorian calendar first")
        }
        // Before 1582-10-15 'standard' is Julian; no RainBench source reaches back that far.
        if cal != "proleptic_gregorian" && t < UTCTime.make(1582, 10, 15) {
            throw bad("a reference date before 1582-10-15 in the mixed Julian/Gregorian calendar")
        }
        unitSeconds = s
        origin = t
    }

    /// The UTC time of coordinate value `v`; nil if it is not a whole number of seconds.
    public func time(_ v: Double) -> EpochSeconds? {
        let s = v * Double(unitSeconds)
        guard s.isFinite, abs(s - s.rounded()) < 1e-3, abs(s) < 1e15 else { return nil }
        return origin + EpochSeconds(s.rounded())
    }

    /// Every value of a time coordinate `subject` (with `units`, for errors) as UTC times; a value that is not
    /// a whole second is an error naming its index.
    public func times(_ values: [Double], subject: String, units: String) throws -> [EpochSeconds] {
        try values.enumerated().map { i, x in
            guard let t = time(x) else {
                throw SwiftRainError(
                    "\(subject)[\(i)]", "not a whole second", found: "\(x) \(units)",
                    hint: "the time axis must hold exact times")
            }
            return t
        }
    }
}
