import Dispatch

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Runs the ledger's blocking writes on one serial dispatch queue, off the actor and the concurrency pool.
struct LedgerIO: Sendable {
    let path: String
    let headPath: String
    let queue: DispatchQueue

    /// Closing the segment inside a batch: bytes before `split` end the old file (they end with a checkpoint), the
    /// rest start the new one.
    struct Rotation: Sendable {
        var split: Int
        /// File name (no directory) the closed segment gets.
        var closedName: String
    }

    struct Committed: Sendable {
        var headWritten: Bool
        /// The new ledger file's descriptor after a rotation.
        var newFD: Int32?
        /// Closed segments deleted by retention.
        var removed: [String]
    }

    init(path: String) {
        self.path = path
        self.headPath = HeadFile.path(forLedger: path)
        self.queue = DispatchQueue(label: "mcpg.audit.ledger")
    }

    /// write + fsync the batch, then (if it holds a checkpoint) replace the head file; with a rotation, then rename
    /// the file to its segment name, start a new file with the rest of the batch, and apply retention. A head file
    /// failure is returned as an error too, since the next open would then trust an older head.
    func commit(
        fd: Int32, bytes: [UInt8], head: HeadFile?, rotation: Rotation?, retain: Int?
    ) async -> Result<Committed, LedgerError> {
        await withCheckedContinuation { continuation in
            queue.async {
                do throws(LedgerError) {
                    let split = rotation?.split ?? bytes.count
                    try POSIXFile.writeAll(fd, Array(bytes[..<split]), path: path)
                    try POSIXFile.sync(fd, path: path)
                    if let head {
                        try POSIXFile.replaceAtomically(headPath, with: head.serialized())
                    }
                    guard let rotation else {
                        continuation.resume(returning: .success(Committed(headWritten: head != nil, removed: [])))
                        return
                    }
                    let closedPath = LedgerSegments.directory(path) + "/" + rotation.closedName
                    guard rename(path, closedPath) == 0 else {
                        throw LedgerError(.io, "\(path): cannot rename to \(closedPath): \(POSIXFile.errorText())")
                    }
                    try POSIXFile.syncDirectory(of: path)
                    let newFD = try POSIXFile.openForAppend(path)
                    guard flock(newFD, LOCK_EX | LOCK_NB) == 0 else {
                        POSIXFile.closeDescriptor(newFD)
                        throw LedgerError(.inUse, "\(path): another process took the new segment")
                    }
                    do throws(LedgerError) {
                        try POSIXFile.writeAll(newFD, Array(bytes[split...]), path: path)
                        try POSIXFile.sync(newFD, path: path)
                        try POSIXFile.syncDirectory(of: path)
                    } catch {
                        POSIXFile.closeDescriptor(newFD)
                        throw error
                    }
                    POSIXFile.closeDescriptor(fd)
                    var removed: [String] = []
                    if let retain {
                        let closed = LedgerSegments.closed(of: path)
                        for old in closed.dropLast(retain) where unlink(old.path) == 0 { removed.append(old.path) }
                    }
                    continuation.resume(
                        returning: .success(Committed(headWritten: head != nil, newFD: newFD, removed: removed)))
                } catch {
                    continuation.resume(returning: .failure(error))
                }
            }
        }
    }
}
