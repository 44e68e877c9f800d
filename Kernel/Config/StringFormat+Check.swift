extension StringFormat {
    /// Checks `value`; returns the message to report, or nil if it is fine.
    ///
    /// - Parameters:
    ///   - noun: what the value is, for messages ("plugin name", "backend name").
    ///   - directory: the absolute directory relative paths resolve against.
    func problem(with value: String, noun: String, directory: String) -> String? {
        switch self {
        case .text:
            return nil
        case .name:
            return Self.isName(value)
                ? nil : "invalid \(noun) \(quoted(value)): use lowercase letters, digits, \"_\" and \"-\""
        case .listenAddress:
            if case .failure(let reason) = Self.parseListen(value) {
                return "invalid listen address \(quoted(value)): \(reason.text)"
            }
            return nil
        case .urlPath:
            if !value.hasPrefix("/") { return "invalid path \(quoted(value)): must start with \"/\"" }
            if let bad = value.unicodeScalars.first(where: {
                $0.value <= 0x20 || $0.value >= 0x7f || $0 == "?" || $0 == "#"
            }) {
                return "invalid path \(quoted(value)): must not contain \(quoted(String(bad)))"
            }
            return nil
        case .origin:
            return Self.originProblem(value)
        case .httpURL:
            return Self.httpURLProblem(value)
        case .path(let requirement):
            return Self.pathProblem(value, requirement: requirement, noun: noun, directory: directory)
        case .trustedKey:
            if case .failure(let reason) = TrustedKey.resolve(value, directory: directory) { return reason.text }
            return nil
        case .durability:
            return Self.commitDelayMs(value) == nil
                ? "invalid durability \(quoted(value)): use \"sync\" or \"batch(<ms>ms)\" with 1 to 1000 ms" : nil
        }
    }

    /// The commit delay a durability setting means: 0 for `sync`, N for `batch(Nms)`; nil if it is neither.
    public static func commitDelayMs(_ value: String) -> Int? {
        if value == "sync" { return 0 }
        guard value.hasPrefix("batch("), value.hasSuffix("ms)") else { return nil }
        let digits = value.dropFirst(6).dropLast(3)
        guard !digits.isEmpty, digits.count <= 4, digits.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
            let ms = Int(digits), (1...1000).contains(ms)
        else { return nil }
        return ms
    }

    /// `[a-z0-9_-]+`.
    static func isName(_ s: String) -> Bool {
        !s.isEmpty
            && s.utf8.allSatisfy {
                (0x61...0x7a).contains($0) || (0x30...0x39).contains($0) || $0 == 0x5f || $0 == 0x2d
            }
    }

    /// A message wrapped so it can be a `Result` failure.
    struct Reason: Error, Equatable {
        var text: String
        init(_ text: String) { self.text = text }
    }

    /// Splits `host:port` / `[v6]:port`; the host comes back without brackets.
    static func parseListen(_ s: String) -> Result<(host: String, port: Int), Reason> {
        let host: Substring
        let portText: Substring
        if s.hasPrefix("[") {
            guard let close = s.firstIndex(of: "]") else {
                return .failure(Reason("missing \"]\" after the IPv6 address"))
            }
            host = s[s.index(after: s.startIndex)..<close]
            let rest = s[s.index(after: close)...]
            guard rest.hasPrefix(":") else { return .failure(Reason("expected \":PORT\" after \"]\"")) }
            portText = rest.dropFirst()
            guard isIPv6(host) else { return .failure(Reason("\(quoted(String(host))) is not an IPv6 address")) }
        } else {
            guard let colon = s.lastIndex(of: ":") else {
                return .failure(Reason("expected HOST:PORT, e.g. \"127.0.0.1:8080\""))
            }
            host = s[..<colon]
            portText = s[s.index(after: colon)...]
            if host.contains(":") {
                return .failure(Reason("an IPv6 address goes in brackets, e.g. \"[::1]:8080\""))
            }
            if host.isEmpty {
                return .failure(Reason("missing host; use \"0.0.0.0\" or \"[::]\" to listen on all interfaces"))
            }
            if let reason = hostProblem(host) { return .failure(Reason(reason)) }
        }
        guard !portText.isEmpty, portText.count <= 5, portText.allSatisfy({ $0.isASCII && $0.isNumber }),
            let port = Int(portText), port <= 65535
        else { return .failure(Reason("the port must be a number from 0 to 65535")) }
        return .success((String(host), port))
    }

    /// Why `host` is neither an IPv4 address nor a DNS name, or nil.
    static func hostProblem(_ host: Substring) -> String? {
        if host.allSatisfy({ $0 == "." || ($0.isASCII && $0.isNumber) }) {
            let parts = host.split(separator: ".", omittingEmptySubsequences: false)
            let valid = parts.count == 4 && parts.allSatisfy { !$0.isEmpty && $0.count <= 3 && Int($0)! <= 255 }
            return valid ? nil : "\(quoted(String(host))) is not an IPv4 address"
        }
        let labels = host.split(separator: ".", omittingEmptySubsequences: false)
        let valid =
            host.count <= 253
            && labels.allSatisfy { label in
                (1...63).contains(label.count) && label.first != "-" && label.last != "-"
                    && label.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }
            }
        return valid ? nil : "\(quoted(String(host))) is not a valid host name"
    }

    /// Hex groups with at most one `::`, an optional trailing dotted IPv4 part and an optional `%zone`.
    static func isIPv6(_ s: Substring) -> Bool {
        var text = s
        if let percent = text.firstIndex(of: "%") {
            guard text.index(after: percent) != text.endIndex else { return false }
            text = text[..<percent]
        }
        let doubleColons = text.ranges(of: "::").count
        guard doubleColons <= 1, !text.isEmpty else { return false }
        var groups = text.split(separator: ":", omittingEmptySubsequences: false)
        // "::1" and "1::" split into empty edge parts that belong to the "::".
        if text.hasPrefix("::") { groups.removeFirst() }
        if text.hasSuffix("::") { groups.removeLast() }
        var count = 0
        for (i, group) in groups.enumerated() {
            if group.isEmpty {
                guard doubleColons == 1 else { return false }
                continue
            }
            if i == groups.count - 1 && group.contains(".") {
                guard hostProblem(group) == nil, group.allSatisfy({ $0 == "." || $0.isNumber }) else { return false }
                count += 2
                continue
            }
            guard group.count <= 4, group.allSatisfy(\.isHexDigit) else { return false }
            count += 1
        }
        return doubleColons == 1 ? count < 8 : count == 8
    }

    /// An origin followed by an optional path: `https://mcp.example.com/mcp`.
    static func httpURLProblem(_ value: String) -> String? {
        guard let sep = value.firstRange(of: "://") else {
            return "invalid URL \(quoted(value)): expected http(s)://HOST[:PORT]/PATH"
        }
        let rest = value[sep.upperBound...]
        let slash = rest.firstIndex(of: "/") ?? rest.endIndex
        if let bad = rest[slash...].unicodeScalars.first(where: {
            $0.value <= 0x20 || $0.value >= 0x7f || $0 == "?" || $0 == "#"
        }) {
            return "invalid URL \(quoted(value)): the path must not contain \(quoted(String(bad)))"
        }
        if let problem = originProblem(String(value[..<slash])) {
            return problem.replacing("invalid origin", with: "invalid URL")
        }
        return nil
    }

    static func originProblem(_ value: String) -> String? {
        let example = "expected SCHEME://HOST[:PORT], e.g. \"https://app.example.com\""
        guard let sep = value.firstRange(of: "://") else { return "invalid origin \(quoted(value)): \(example)" }
        let scheme = value[..<sep.lowerBound].lowercased()
        guard scheme == "http" || scheme == "https" else {
            return "invalid origin \(quoted(value)): the scheme must be http or https"
        }
        var authority = value[sep.upperBound...]
        if let slash = authority.firstIndex(where: { $0 == "/" || $0 == "?" || $0 == "#" }) {
            let bare = String(value[..<sep.upperBound]) + authority[..<slash]
            return "invalid origin \(quoted(value)): an origin has no path; write \(quoted(bare))"
        }
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]"),
                isIPv6(authority[authority.index(after: authority.startIndex)..<close])
            else {
                return "invalid origin \(quoted(value)): \(example)"
            }
            authority = authority[authority.index(after: close)...]
            if authority.isEmpty { return nil }
            guard authority.hasPrefix(":") else { return "invalid origin \(quoted(value)): \(example)" }
            authority = "x" + authority
        }
        var host = authority
        if let colon = authority.lastIndex(of: ":") {
            host = authority[..<colon]
            let port = authority[authority.index(after: colon)...]
            guard !port.isEmpty, port.count <= 5, port.allSatisfy({ $0.isASCII && $0.isNumber }), Int(port)! <= 65535
            else { return "invalid origin \(quoted(value)): the port must be a number from 0 to 65535" }
        }
        if host.isEmpty || hostProblem(host) != nil { return "invalid origin \(quoted(value)): \(example)" }
        return nil
    }

    static func pathProblem(_ value: String, requirement: PathRequirement, noun: String, directory: String) -> String? {
        guard !value.isEmpty else { return "the \(noun) path is empty" }
        let absolute = FileSystem.absolute(value, base: directory)
        let looked = value.hasPrefix("/") ? "" : " (looked for \(absolute))"
        let kind = FileSystem.kind(of: absolute)
        switch requirement {
        case .any:
            return kind == .directory ? "\(noun) \(quoted(value)) is a directory; expected a file path" : nil
        case .existingFile, .privateFile:
            switch kind {
            case .missing: return "\(noun) \(quoted(value)) does not exist\(looked)"
            case .directory, .other: return "\(noun) \(quoted(value)) is not a regular file"
            case .file:
                guard FileSystem.isReadable(absolute) else { return "\(noun) \(quoted(value)) is not readable" }
                if requirement == .privateFile, let mode = FileSystem.permissions(of: absolute), mode & 0o007 != 0 {
                    return "\(noun) \(quoted(value)) holds a secret but other users can access it (mode "
                        + "0\(String(mode, radix: 8))); chmod 600 it, or 640 for the gateway's group"
                }
                return nil
            }
        case .existingDirectory:
            switch kind {
            case .missing: return "\(noun) \(quoted(value)) does not exist\(looked)"
            case .file, .other: return "\(noun) \(quoted(value)) is not a directory"
            case .directory: return nil
            }
        }
    }
}
