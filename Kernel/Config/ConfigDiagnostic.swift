/// A place in a config file: the file as the user named it, and a 1-based line and column.
///
/// Columns count Unicode characters, as libyaml does. Line 0 means "the file as a whole" (for example when it
/// cannot be read); `ConfigDiagnostic.description` then prints no line and column.
public struct SourceLocation: Sendable, Equatable, Hashable, CustomStringConvertible {
    /// The config file path as given by the caller (not made absolute), so diagnostics read like the command line.
    public var file: String
    /// 1-based line, or 0 for the whole file.
    public var line: Int
    /// 1-based column, or 0 for the whole file.
    public var column: Int

    /// Creates a location; `line` and `column` are 1-based.
    public init(file: String, line: Int, column: Int) {
        self.file = file
        self.line = line
        self.column = column
    }

    /// `FILE:LINE:COL`, or just `FILE` for a whole-file location.
    public var description: String { line > 0 ? "\(file):\(line):\(column)" : file }

    /// `LINE:COL`, for messages that refer to another place in the same file.
    public var lineColumn: String { "\(line):\(column)" }
}

/// One problem found in a config file, printed like compiler output: `FILE:LINE:COL: error: MESSAGE`.
public struct ConfigDiagnostic: Error, Sendable, Equatable, Hashable, CustomStringConvertible {
    /// Where the problem is: the offending key or value, or the mapping that misses a key.
    public var location: SourceLocation
    /// What is wrong, as one line without the location.
    public var message: String

    /// Creates a diagnostic at `location`.
    public init(_ location: SourceLocation, _ message: String) {
        self.location = location
        self.message = message
    }

    /// `FILE:LINE:COL: error: MESSAGE`.
    public var description: String { "\(location): error: \(message)" }
}

/// Every problem found in one config file, in file order. Thrown by `ConfigLoader`.
public struct ConfigError: Error, Sendable, Equatable, CustomStringConvertible {
    /// All diagnostics, sorted by line and column (never empty when thrown by `ConfigLoader`).
    public var diagnostics: [ConfigDiagnostic]

    /// Creates an error from diagnostics; they are sorted by position, keeping the order of equal positions.
    public init(_ diagnostics: [ConfigDiagnostic]) {
        self.diagnostics = ConfigDiagnostic.sorted(diagnostics)
    }

    /// One diagnostic per line, as `mcpg config validate` prints them.
    public var description: String { diagnostics.map(\.description).joined(separator: "\n") }
}

extension ConfigDiagnostic {
    /// Sorts by file, line and column; stable, so problems found at the same place keep the order found.
    static func sorted(_ list: [ConfigDiagnostic]) -> [ConfigDiagnostic] {
        list.enumerated().sorted { a, b in
            let (x, y) = (a.element.location, b.element.location)
            if x.file != y.file { return x.file < y.file }
            if x.line != y.line { return x.line < y.line }
            if x.column != y.column { return x.column < y.column }
            return a.offset < b.offset
        }.map(\.element)
    }
}
