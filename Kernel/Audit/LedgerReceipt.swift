/// What `Ledger.append` returns once the record is durable.
public struct LedgerReceipt: Sendable, Equatable {
    /// The record's sequence number.
    public var seq: Int64
    /// The record's hash (64 lowercase hex digits).
    public var hash: String
}

/// A torn last line found (and recovered) when an existing ledger was opened.
public struct LedgerRecovery: Sendable, Equatable {
    /// Byte offset of the torn line's first byte.
    public var byteOffset: Int64
    /// Length of the torn line, without a `\n`.
    public var tornBytes: Int64
    /// Why the line is considered torn.
    public var reason: String
    /// Seq of the recovery record written after it.
    public var recordSeq: Int64
}
