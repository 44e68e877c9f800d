/// An error from the audit ledger's write path (opening, appending, closing, signing keys).
///
/// Equality is by `code`; `message` says what happened in words an operator can act on and never contains key
/// material. Verification problems are not errors: `LedgerVerifier` returns them in a `LedgerReport`.
public struct LedgerError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What kind of failure this is. New codes may be added; switch with a `default`.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Value: String {
            case badKey = "bad key"
            case io = "i/o error"
            case inUse = "ledger in use"
            case damaged = "ledger damaged"
            case truncated = "ledger truncated"
            case closed = "ledger closed"
            case failed = "ledger failed"
            case invalidArgument = "invalid argument"
        }
        private let value: Value
        private init(_ value: Value) { self.value = value }

        /// A key has the wrong length or could not be used.
        public static let badKey = Code(.badKey)
        /// A system call on the ledger or its head file failed.
        public static let io = Code(.io)
        /// Another process holds the ledger's write lock.
        public static let inUse = Code(.inUse)
        /// The existing ledger's tail is not something a crash can produce (edited or corrupt records).
        public static let damaged = Code(.damaged)
        /// The ledger is shorter than its head file's signed checkpoint says.
        public static let truncated = Code(.truncated)
        /// `append` or `close` after `close()`.
        public static let closed = Code(.closed)
        /// An earlier write or fsync failed; the ledger accepts nothing more until it is reopened.
        public static let failed = Code(.failed)
        /// A parameter is out of range (for example `checkpointEvery` below 1).
        public static let invalidArgument = Code(.invalidArgument)

        public var description: String { value.rawValue }
    }

    /// The kind of failure.
    public var code: Code
    /// A one-line explanation, naming the file and the reason.
    public var message: String
    /// Where the error was made (`#fileID`).
    public var fileID: String
    /// Where the error was made (`#line`).
    public var line: Int

    /// Makes an error; `fileID` and `line` default to the caller's position.
    public init(_ code: Code, _ message: String, fileID: String = #fileID, line: Int = #line) {
        self.code = code
        self.message = message
        self.fileID = fileID
        self.line = line
    }

    public var description: String { message }

    public static func == (a: LedgerError, b: LedgerError) -> Bool { a.code == b.code }
}
