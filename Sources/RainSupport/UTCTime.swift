/// Times are integer UTC epoch seconds everywhere (DATA-FORMAT §3). This file converts them to and
/// from calendar dates with pure integer arithmetic, so no time zone of the machine can leak in.
public typealias EpochSeconds = Int64

public enum UTCTime {
    public static let hour: EpochSeconds = 3600
    public static let day: EpochSeconds = 86_400

    /// Days since 1970-01-01 for a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
    public static func days(year: Int, month: Int, day: Int) -> Int64 {
        let y = Int64(month <= 2 ? year - 1 : year)
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let m = Int64(month)
        let doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + Int64(day) - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    /// Calendar fields of a UTC time.
    public struct Fields: Equatable {
        public var year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Int
        /// 0 = Monday … 6 = Sunday.
        public var weekday: Int
        /// 1 … 366.
        public var dayOfYear: Int
    }

    public static func fields(_ t: EpochSeconds) -> Fields {
        let z0 = floorDiv(t, day)
        let secs = Int(t - z0 * day)
        let z = z0 + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = Int(doy - (153 * mp + 2) / 5 + 1)
        let m = Int(mp < 10 ? mp + 3 : mp - 9)
        let y = Int(yoe + era * 400) + (m <= 2 ? 1 : 0)
        let jan1 = days(year: y, month: 1, day: 1)
        let weekday = Int(((z0 % 7) + 7 + 3) % 7)  // 1970-01-01 was a Thursday (3)
        return Fields(
            year: y, month: m, day: d, hour: secs / 3600, minute: (secs % 3600) / 60,
            second: secs % 60, weekday: weekday, dayOfYear: Int(z0 - jan1) + 1)
    }

    public static func make(
        _ year: Int, _ month: Int, _ day: Int, _ hour: Int = 0, _ minute: Int = 0, _ second: Int = 0
    ) -> EpochSeconds {
        days(year: year, month: month, day: day) * self.day + EpochSeconds(hour * 3600 + minute * 60 + second)
    }

    /// Parses `YYYY-MM-DD`, `YYYY-MM-DD HH:MM[:SS]` or ISO 8601 `YYYY-MM-DDTHH:MM[:SS][Z|+00:00]`, always as UTC.
    /// With `endOfDay`, a bare date means 23:00 of that day (the last hourly row), as in "train to 2017-12-31".
    public static func parse(_ text: String, endOfDay: Bool = false) -> EpochSeconds? {
        var s = Substring(text)
        let junk: Set<Character> = [" ", "\t", "\n", "\"", "'"]
        while let c = s.first, junk.contains(c) { s = s.dropFirst() }
        while let c = s.last, junk.contains(c) { s = s.dropLast() }
        if s.hasSuffix("Z") { s = s.dropLast() } else if s.hasSuffix("+00:00") { s = s.dropLast(6) }
        let parts = s.split(whereSeparator: { $0 == "T" || $0 == " " })
        guard parts.count == 1 || parts.count == 2 else { return nil }
        let date = parts[0].split(separator: "-").map { Int($0) }
        guard date.count == 3, let y = date[0], let mo = date[1], let d = date[2],
            (1...12).contains(mo), (1...31).contains(d)
        else { return nil }
        var hms = [endOfDay ? 23 : 0, 0, 0]
        if parts.count == 2 {
            hms = [0, 0, 0]
            let t = parts[1].split(separator: ":").map { Int($0) }
            guard (1...3).contains(t.count), t.allSatisfy({ $0 != nil }) else { return nil }
            for (i, v) in t.enumerated() { hms[i] = v! }
            guard hms[0] < 24, hms[1] < 60, hms[2] < 61 else { return nil }
        }
        let t = make(y, mo, d, hms[0], hms[1], hms[2])
        // Reject dates like 2017-02-30 that would silently roll over.
        let f = fields(t)
        guard f.month == mo, f.day == d else { return nil }
        return t
    }

    /// `YYYY-MM-DDTHH:MM:SSZ`.
    public static func iso(_ t: EpochSeconds) -> String {
        let f = fields(t)
        return "\(pad(f.year, 4))-\(pad(f.month))-\(pad(f.day))T\(pad(f.hour)):\(pad(f.minute)):\(pad(f.second))Z"
    }

    /// `YYYY-MM-DD HH:MM`, for tables.
    public static func short(_ t: EpochSeconds) -> String {
        let f = fields(t)
        return "\(pad(f.year, 4))-\(pad(f.month))-\(pad(f.day)) \(pad(f.hour)):\(pad(f.minute))"
    }

    private static func pad(_ v: Int, _ width: Int = 2) -> String {
        let s = String(v)
        return s.count >= width ? s : String(repeating: "0", count: width - s.count) + s
    }
}

/// Floor division (rounds towards −∞), as the "nearest past" row rule needs for times before a file's start.
@inlinable
public func floorDiv(_ a: Int64, _ b: Int64) -> Int64 {
    let q = a / b
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q
}
