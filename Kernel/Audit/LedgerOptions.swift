/// How a `Ledger` seals, commits and rotates.
public struct LedgerOptions: Sendable {
    /// Write a checkpoint after this many records (1 = after every record).
    public var checkpointEvery: Int
    /// Also write one this often while records arrive.
    public var checkpointInterval: Duration
    /// `nil`: write and fsync as soon as a record arrives (records arriving meanwhile share the next fsync).
    /// Otherwise, while there are other appenders (more than one append waiting, or in the last batch written), wait
    /// up to this long before each write, until as many appends wait as the last write held, so more records share
    /// one fsync (a lone record is written at once). Either way `append` returns only once its record is durable.
    public var commitDelay: Duration?
    /// Close the segment after the first checkpoint once it holds this many bytes.
    public var rotateBytes: Int64?
    /// Close the segment after the first checkpoint once it has been open this long.
    public var rotateInterval: Duration?
    /// Keep at most this many closed segments, deleting the oldest after a rotation; nil keeps all.
    public var retainSegments: Int?
    /// The key the ledger was signed with before `signer`, to endorse the new key in the key record.
    public var previousSigner: LedgerSigner?

    public init(
        checkpointEvery: Int, checkpointInterval: Duration, commitDelay: Duration? = nil, rotateBytes: Int64? = nil,
        rotateInterval: Duration? = nil, retainSegments: Int? = nil, previousSigner: LedgerSigner? = nil
    ) {
        self.checkpointEvery = checkpointEvery
        self.checkpointInterval = checkpointInterval
        self.commitDelay = commitDelay
        self.rotateBytes = rotateBytes
        self.rotateInterval = rotateInterval
        self.retainSegments = retainSegments
        self.previousSigner = previousSigner
    }

    func check() throws(LedgerError) {
        guard checkpointEvery >= 1 else {
            throw LedgerError(.invalidArgument, "checkpointEvery must be at least 1, got \(checkpointEvery)")
        }
        guard checkpointInterval > .zero else {
            throw LedgerError(.invalidArgument, "checkpointInterval must be positive")
        }
        if let commitDelay, commitDelay < .zero {
            throw LedgerError(.invalidArgument, "commitDelay must not be negative")
        }
        if let rotateBytes, rotateBytes < 1 {
            throw LedgerError(.invalidArgument, "rotateBytes must be positive, got \(rotateBytes)")
        }
        if let rotateInterval, rotateInterval <= .zero {
            throw LedgerError(.invalidArgument, "rotateInterval must be positive")
        }
        if let retainSegments, retainSegments < 1 {
            throw LedgerError(.invalidArgument, "retainSegments must be at least 1, got \(retainSegments)")
        }
    }
}
