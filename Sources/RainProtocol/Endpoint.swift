/// ZeroMQ endpoints as SwiftRain uses them: `tcp://HOST:PORT`, `ipc://PATH`.
public enum Endpoint {
    /// The host part of `tcp://HOST:PORT` (IPv6 brackets removed); nil for other transports.
    public static func host(_ endpoint: String) -> String? {
        guard endpoint.hasPrefix("tcp://") else { return nil }
        var h = Substring(endpoint.dropFirst("tcp://".count))
        if let colon = h.lastIndex(of: ":") { h = h[..<colon] }
        if h.hasPrefix("["), h.hasSuffix("]") { h = h.dropFirst().dropLast() }
        return String(h)
    }

    /// The port of `tcp://HOST:PORT`; nil for other transports or an unresolved `*`.
    public static func port(_ endpoint: String) -> Int? {
        guard endpoint.hasPrefix("tcp://"), let colon = endpoint.lastIndex(of: ":") else { return nil }
        return Int(endpoint[endpoint.index(after: colon)...])
    }

    /// A host name or address that never leaves this machine.
    public static func isLoopbackHost(_ host: String) -> Bool {
        host.hasPrefix("127.") || host == "::1" || host == "localhost" || host == "0:0:0:0:0:0:0:1"
    }

    /// Whether traffic to `endpoint` stays on this machine: ipc:// and inproc://, or tcp:// to a
    /// loopback host. (Decides whether CURVE is required and where ring inboxes bind.)
    public static func isLoopback(_ endpoint: String) -> Bool {
        if endpoint.hasPrefix("ipc://") || endpoint.hasPrefix("inproc://") { return true }
        return host(endpoint).map(isLoopbackHost) ?? false
    }
}
