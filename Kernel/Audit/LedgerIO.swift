import Dispatch

/// Runs the ledger's blocking writes on one serial dispatch queue, off the actor and the concurrency pool.
struct LedgerIO: Sendable {
    let path: String
    let headPath: String
    let queue: DispatchQueue

    init(path: String) {
        self.path = path
        self.headPath = HeadFile.path(forLedger: path)
        self.queue = DispatchQueue(label: "mcpg.audit.ledger")
    }

    /// write + fsync the batch, then (if it holds a checkpoint) replace the head file. Returns whether the head
    /// file was written; a head file failure is returned as an error too, since the next open would then trust
    /// an older head.
    func commit(fd: Int32, bytes: [UInt8], head: HeadFile?) async -> Result<Bool, LedgerError> {
        await withCheckedContinuation { continuation in
            queue.async {
                do throws(LedgerError) {
                    try POSIXFile.writeAll(fd, bytes, path: path)
                    try POSIXFile.sync(fd, path: path)
                    if let head {
                        try POSIXFile.replaceAtomically(headPath, with: head.serialized())
                    }
                    continuation.resume(returning: .success(head != nil))
                } catch {
                    continuation.resume(returning: .failure(error))
                }
            }
        }
    }
}
