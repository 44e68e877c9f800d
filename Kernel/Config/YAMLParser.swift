import CYAML

/// Parses one YAML document into a `YAMLNode` tree that keeps the line and column of every node, using
/// libyaml's event API.
///
/// Refused with a diagnostic: syntax errors (libyaml stops at the first), more than one document, anchors
/// and aliases, tags other than the YAML 1.1 core ones, nesting deeper than `maxDepth`. Plain scalars resolve
/// by YAML 1.1 rules (`YAMLScalar.resolve(plain:)`); quoted and block scalars are strings.
public enum YAMLParser {
    /// The deepest nesting of sequences and mappings accepted; config files need about six.
    public static let maxDepth = 64

    /// Parses `text`. Returns the document's root node, or `nil` (with a diagnostic) if the text holds no
    /// document or could not be parsed.
    ///
    /// - Parameters:
    ///   - text: the whole file.
    ///   - file: the path shown in diagnostics.
    ///   - diagnostics: receives every problem found; parsing goes on after problems that are not syntax errors.
    public static func parse(_ text: String, file: String, diagnostics: inout [ConfigDiagnostic]) -> YAMLNode? {
        parse(bytes: Array(text.utf8), file: file, diagnostics: &diagnostics)
    }

    /// Parses the file's bytes; UTF-8 (or UTF-16 with a byte order mark). Invalid encoding is reported with
    /// its position.
    public static func parse(bytes: [UInt8], file: String, diagnostics: inout [ConfigDiagnostic]) -> YAMLNode? {
        guard !bytes.isEmpty else {
            diagnostics.append(
                ConfigDiagnostic(SourceLocation(file: file, line: 1, column: 1), "the config file is empty"))
            return nil
        }
        var builder = TreeBuilder(file: file)
        bytes.withUnsafeBufferPointer { buffer in
            let parser = UnsafeMutablePointer<yaml_parser_t>.allocate(capacity: 1)
            let event = UnsafeMutablePointer<yaml_event_t>.allocate(capacity: 1)
            defer {
                parser.deallocate()
                event.deallocate()
            }
            guard yaml_parser_initialize(parser) != 0 else {
                builder.fail(at: 1, 1, "cannot initialise the YAML parser (out of memory)")
                return
            }
            defer { yaml_parser_delete(parser) }
            guard let base = buffer.baseAddress else { return }
            yaml_parser_set_input_string(parser, base, buffer.count)
            while !builder.finished {
                guard yaml_parser_parse(parser, event) != 0 else {
                    builder.syntaxError(parser.pointee, bytes: buffer)
                    return
                }
                builder.handle(event.pointee)
                yaml_event_delete(event)
            }
        }
        diagnostics += builder.diagnostics
        if builder.failed { return nil }
        guard let root = builder.root else {
            diagnostics.append(
                ConfigDiagnostic(SourceLocation(file: file, line: 1, column: 1), "the config file is empty"))
            return nil
        }
        return root
    }
}

/// Turns the event stream into a tree.
private struct TreeBuilder {
    /// An open collection. A struct mutated in place through `stack[last]`, so appending never copies
    /// the collected children (an enum payload taken out and put back would, making big files quadratic).
    struct Frame {
        var isMapping: Bool
        var start: SourceLocation
        var items: [YAMLNode] = []
        var pairs: [YAMLPair] = []
        var pendingKey: YAMLNode?
    }

    let file: String
    var stack: [Frame] = []
    var root: YAMLNode?
    var documents = 0
    var finished = false
    var failed = false
    /// Depth of collections skipped because they were nested too deeply.
    var skipping = 0
    var diagnostics: [ConfigDiagnostic] = []

    init(file: String) { self.file = file }

    func location(_ mark: yaml_mark_t) -> SourceLocation {
        SourceLocation(file: file, line: Int(mark.line) + 1, column: Int(mark.column) + 1)
    }

    mutating func fail(at line: Int, _ column: Int, _ message: String) {
        diagnostics.append(ConfigDiagnostic(SourceLocation(file: file, line: line, column: column), message))
        failed = true
        finished = true
    }

    mutating func handle(_ event: yaml_event_t) {
        let at = location(event.start_mark)
        switch event.type {
        case YAML_STREAM_END_EVENT:
            finished = true
        case YAML_DOCUMENT_START_EVENT:
            documents += 1
            if documents > 1 {
                fail(
                    at: at.line, at.column,
                    "a config file holds one YAML document; found a second one here")
            }
        case YAML_SCALAR_EVENT:
            let data = event.data.scalar
            checkAnchor(data.anchor, at: at)
            let text = string(data.value, length: data.length)
            let plain = data.style == YAML_PLAIN_SCALAR_STYLE
            let value = resolve(text: text, plain: plain, tag: cString(data.tag), at: at)
            add(YAMLNode(.scalar(YAMLScalar(text: text, value: value)), at: at))
        case YAML_SEQUENCE_START_EVENT:
            checkAnchor(event.data.sequence_start.anchor, at: at)
            checkCollectionTag(cString(event.data.sequence_start.tag), expected: "seq", at: at)
            push(Frame(isMapping: false, start: at), at: at)
        case YAML_MAPPING_START_EVENT:
            checkAnchor(event.data.mapping_start.anchor, at: at)
            checkCollectionTag(cString(event.data.mapping_start.tag), expected: "map", at: at)
            push(Frame(isMapping: true, start: at), at: at)
        case YAML_SEQUENCE_END_EVENT, YAML_MAPPING_END_EVENT:
            if skipping > 0 {
                skipping -= 1
                if skipping == 0 { add(YAMLNode(.scalar(YAMLScalar(text: "", value: .null)), at: at)) }
                return
            }
            let frame = stack.removeLast()
            add(YAMLNode(frame.isMapping ? .mapping(frame.pairs) : .sequence(frame.items), at: frame.start))
        case YAML_ALIAS_EVENT:
            let name = cString(event.data.alias.anchor) ?? ""
            diagnostics.append(
                ConfigDiagnostic(at, "YAML aliases (\"*\(name)\") are not supported; write the value out in full"))
            add(YAMLNode(.scalar(YAMLScalar(text: "", value: .null)), at: at))
        default:
            break
        }
    }

    mutating func push(_ frame: Frame, at: SourceLocation) {
        if skipping > 0 || stack.count >= YAMLParser.maxDepth {
            if skipping == 0 {
                diagnostics.append(ConfigDiagnostic(at, "nesting deeper than \(YAMLParser.maxDepth) levels"))
            }
            skipping += 1
            return
        }
        stack.append(frame)
    }

    mutating func add(_ node: YAMLNode) {
        if skipping > 0 { return }
        let top = stack.count - 1
        guard top >= 0 else {
            root = node
            return
        }
        if !stack[top].isMapping {
            stack[top].items.append(node)
        } else if let key = stack[top].pendingKey {
            stack[top].pairs.append(YAMLPair(key: key, value: node))
            stack[top].pendingKey = nil
        } else {
            stack[top].pendingKey = node
        }
    }

    mutating func checkAnchor(_ anchor: UnsafeMutablePointer<yaml_char_t>?, at: SourceLocation) {
        guard let name = cString(anchor) else { return }
        diagnostics.append(
            ConfigDiagnostic(at, "YAML anchors (\"&\(name)\") are not supported; write the value out in full"))
    }

    mutating func checkCollectionTag(_ tag: String?, expected: String, at: SourceLocation) {
        guard let tag, tag != "!", tag != "tag:yaml.org,2002:\(expected)" else { return }
        diagnostics.append(ConfigDiagnostic(at, "unsupported YAML tag \(quoted(tag))"))
    }

    /// Applies an explicit core tag (`!!str`, `!!int`, …) or, for an untagged plain scalar, YAML 1.1 resolution.
    mutating func resolve(text: String, plain: Bool, tag: String?, at: SourceLocation) -> YAMLScalar.Value {
        guard let tag, tag != "!" else {
            return plain ? YAMLScalar.resolve(plain: text) : .string(text)
        }
        let core = "tag:yaml.org,2002:"
        let name = tag.hasPrefix(core) ? String(tag.dropFirst(core.count)) : ""
        let resolved = YAMLScalar.resolve(plain: text)
        switch (name, resolved) {
        case ("str", _): return .string(text)
        case ("null", .null), ("bool", .bool), ("int", .int), ("float", .float): return resolved
        case ("float", .int(let i)): return .float(Double(i))
        case ("null", _), ("bool", _), ("int", _), ("float", _):
            diagnostics.append(ConfigDiagnostic(at, "\(quoted(text)) is not a valid !!\(name)"))
            return .string(text)
        default:
            diagnostics.append(ConfigDiagnostic(at, "unsupported YAML tag \(quoted(tag))"))
            return .string(text)
        }
    }

    /// Reports libyaml's error. Reader errors (bad encoding) carry a byte offset instead of a mark.
    mutating func syntaxError(_ parser: yaml_parser_t, bytes: UnsafeBufferPointer<UInt8>) {
        let problem = parser.problem.map { String(cString: $0) } ?? "unknown error"
        var at = location(parser.problem_mark)
        if parser.error == YAML_READER_ERROR {
            at = byteLocation(parser.problem_offset, bytes: bytes)
            fail(at: at.line, at.column, "the file is not valid UTF-8 (\(problem))")
            return
        }
        var message = "YAML syntax error: \(problem)"
        if let context = parser.context.map({ String(cString: $0) }) {
            message += " (\(context) at \(location(parser.context_mark).lineColumn))"
        }
        fail(at: at.line, at.column, message)
    }

    func byteLocation(_ offset: Int, bytes: UnsafeBufferPointer<UInt8>) -> SourceLocation {
        var line = 1
        var column = 1
        for b in bytes.prefix(offset) {
            if b == UInt8(ascii: "\n") {
                line += 1
                column = 1
            } else if b & 0xC0 != 0x80 {
                column += 1
            }
        }
        return SourceLocation(file: file, line: line, column: column)
    }

    func string(_ pointer: UnsafeMutablePointer<yaml_char_t>?, length: Int) -> String {
        guard let pointer else { return "" }
        return String(decoding: UnsafeBufferPointer(start: pointer, count: length), as: UTF8.self)
    }

    func cString(_ pointer: UnsafeMutablePointer<yaml_char_t>?) -> String? {
        guard let pointer else { return nil }
        return String(decoding: UnsafeBufferPointer(start: pointer, count: strlen(pointer)), as: UTF8.self)
    }
}

/// Length of a NUL-terminated libyaml string.
private func strlen(_ p: UnsafeMutablePointer<yaml_char_t>) -> Int {
    var n = 0
    while p[n] != 0 { n += 1 }
    return n
}
