#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// A value built from files (a policy set, a key list) that is rebuilt when any of the files changes.
///
/// `current` costs one clock read per call; at most once per `interval` it also `stat`s the files. When a
/// file's size, modification time or inode changed, `load` runs: on success the new value replaces the old
/// one and `version` goes up; on failure the old value stays, and the failure is logged (once per change).
/// `load` validates everything before returning, so a half-valid file never takes effect.
public final class Reloadable<Value: Sendable>: Sendable {
    public struct Snapshot: Sendable {
        public let value: Value
        /// 1 for the value built at init; +1 per successful reload.
        public let version: Int
    }

    struct FileStamp: Equatable, Sendable {
        var size: Int64
        var mtimeNanos: Int64
        var inode: UInt64
        /// False when the file could not be `stat`ed (deleted, renamed away mid-update).
        var exists: Bool
    }

    struct State: Sendable {
        var snapshot: Snapshot
        var stamps: [FileStamp]
        /// The stamps of the last failed load, so one bad edit is reported once, not once per interval.
        var failedStamps: [FileStamp]?
        var nextCheck: UInt64
    }

    let files: [String]
    let intervalNanos: UInt64
    let load: @Sendable () throws -> Value
    let onReload: @Sendable (Result<Int, any Error>) -> Void
    let state: Mutex<State>

    /// Builds the first value; its error is the caller's error (a bad file at boot stops the plugin).
    /// - Parameters:
    ///   - interval: how often to look at the files; zero turns reloading off.
    ///   - onReload: told the new version after a reload, or the error that kept the old value.
    public init(files: [String], interval: Duration = .seconds(1),
                onReload: @escaping @Sendable (Result<Int, any Error>) -> Void = { _ in },
                load: @escaping @Sendable () throws -> Value) throws {
        self.files = files
        let (s, a) = interval.components
        intervalNanos = UInt64(max(0, s)) * 1_000_000_000 + UInt64(max(0, a) / 1_000_000_000)
        self.load = load
        self.onReload = onReload
        let stamps = files.map(Self.stamp)
        let value = try load()
        state = Mutex(State(snapshot: Snapshot(value: value, version: 1), stamps: stamps, failedStamps: nil,
                            nextCheck: Self.now() &+ intervalNanos))
    }

    /// The value to use now, reloaded first if a file changed since the last look.
    public var current: Snapshot {
        let now = Self.now()
        let due = state.withLock { s -> [FileStamp]? in
            guard intervalNanos > 0, now >= s.nextCheck else { return nil }
            s.nextCheck = now &+ intervalNanos
            return s.stamps
        }
        guard let seen = due else { return state.withLock { $0.snapshot } }
        let stamps = files.map(Self.stamp)
        if stamps == seen { return state.withLock { $0.snapshot } }
        return reload(stamps)
    }

    /// Looks at the files now, ignoring the interval (e.g. on SIGHUP). Returns the snapshot in effect after.
    @discardableResult
    public func checkNow() -> Snapshot {
        let stamps = files.map(Self.stamp)
        if stamps == state.withLock({ $0.stamps }) { return state.withLock { $0.snapshot } }
        return reload(stamps)
    }

    private func reload(_ stamps: [FileStamp]) -> Snapshot {
        if state.withLock({ $0.failedStamps == stamps }) { return state.withLock { $0.snapshot } }
        do {
            let value = try load()
            let snap = state.withLock { s -> Snapshot in
                s.snapshot = Snapshot(value: value, version: s.snapshot.version + 1)
                s.stamps = stamps
                s.failedStamps = nil
                return s.snapshot
            }
            onReload(.success(snap.version))
            return snap
        } catch {
            let snap = state.withLock { s -> Snapshot in
                s.failedStamps = stamps
                return s.snapshot
            }
            onReload(.failure(error))
            return snap
        }
    }

    static func stamp(_ path: String) -> FileStamp {
        var st = stat()
        guard stat(path, &st) == 0 else { return FileStamp(size: -1, mtimeNanos: 0, inode: 0, exists: false) }
        #if canImport(Darwin)
        let mtime = Int64(st.st_mtimespec.tv_sec) * 1_000_000_000 + Int64(st.st_mtimespec.tv_nsec)
        #else
        let mtime = Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec)
        #endif
        return FileStamp(size: Int64(st.st_size), mtimeNanos: mtime, inode: UInt64(st.st_ino), exists: true)
    }

    static func now() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }
}
