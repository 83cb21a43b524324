/// An error meant for the user: printed as it is (no stack trace), the process exits with status 1.
public protocol UserFacingError: Error, CustomStringConvertible {}

/// A user-facing error: what is wrong (naming the file or field), what was expected, what was
/// found, and what to do about it. Every error a user can provoke with bad input is one of these.
public struct SwiftRainError: UserFacingError, Equatable {
    /// The file, field or variable concerned.
    public var subject: String
    /// One line saying what is wrong.
    public var problem: String
    public var expected: String?
    public var found: String?
    /// What the user should do.
    public var hint: String?

    public init(
        _ subject: String, _ problem: String, expected: String? = nil, found: String? = nil, hint: String? = nil
    ) {
        self.subject = subject
        self.problem = problem
        self.expected = expected
        self.found = found
        self.hint = hint
    }

    public var description: String {
        var lines = ["\(subject): \(problem)"]
        if let expected { lines.append("  expected: \(expected)") }
        if let found { lines.append("  found:    \(found)") }
        if let hint { lines.append("  what to do: \(hint)") }
        return lines.joined(separator: "\n")
    }
}

/// Several problems found at start-up, reported together so one run shows everything to fix.
public struct ValidationErrors: UserFacingError {
    public var errors: [SwiftRainError]
    public init(errors: [SwiftRainError]) { self.errors = errors }
    public var description: String {
        "\(errors.count) problem\(errors.count == 1 ? "" : "s") in the data:\n"
            + errors.map { "- " + $0.description.replacingOccurrences(of: "\n", with: "\n  ") }.joined(separator: "\n")
    }
}
