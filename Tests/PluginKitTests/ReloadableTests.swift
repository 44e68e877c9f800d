import Foundation
import PluginKit
import Synchronization
import Testing

@Suite struct ReloadableTests {
    struct Bad: Error, Equatable { var text: String }

    /// A file in a fresh directory, and a loader that parses it as an integer (anything else is an error).
    final class Fixture: Sendable {
        let path: String
        let loads = Mutex(0)
        let reports = Mutex<[String]>([])

        init() throws {
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("reloadable-\(UInt64.random(in: 0...UInt64.max))")
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            path = dir.appendingPathComponent("value.txt").path
        }

        func write(_ text: String) throws {
            // A new file renamed into place, as editors and config management do (a new inode every time).
            let tmp = path + ".tmp"
            try Data(text.utf8).write(to: URL(fileURLWithPath: tmp))
            guard rename(tmp, path) == 0 else { throw Bad(text: "rename failed: \(errno)") }
        }

        func make(interval: Duration) throws -> Reloadable<Int> {
            try Reloadable(files: [path], interval: interval, onReload: { result in
                switch result {
                case .success(let v): self.reports.withLock { $0.append("reloaded \(v)") }
                case .failure(let e): self.reports.withLock { $0.append("failed \((e as? Bad)?.text ?? "?")") }
                }
            }) {
                self.loads.withLock { $0 += 1 }
                let text = (try? String(contentsOfFile: self.path, encoding: .utf8)) ?? ""
                guard let n = Int(text.trimmingCharacters(in: .whitespacesAndNewlines)) else { throw Bad(text: text) }
                return n
            }
        }
    }

    @Test func aChangedFileIsReloadedAndTheVersionGoesUp() throws {
        let f = try Fixture()
        try f.write("1")
        let r = try f.make(interval: .zero)
        #expect(r.current.value == 1 && r.current.version == 1)
        try f.write("2")
        // interval zero: only checkNow looks at the files.
        #expect(r.current.value == 1)
        let after = r.checkNow()
        #expect(after.value == 2 && after.version == 2)
        #expect(f.reports.withLock { $0 } == ["reloaded 2"])
    }

    @Test func aBadEditKeepsTheOldValueAndIsReportedOnce() throws {
        let f = try Fixture()
        try f.write("7")
        let r = try f.make(interval: .zero)
        try f.write("seven")
        #expect(r.checkNow().value == 7)
        #expect(r.checkNow().value == 7)
        #expect(f.reports.withLock { $0 } == ["failed seven"])
        #expect(f.loads.withLock { $0 } == 2)  // the first load and one failed attempt, not one per look
        try f.write("8")
        #expect(r.checkNow().value == 8)
        #expect(r.current.version == 2)
    }

    @Test func theIntervalBoundsHowOftenFilesAreLookedAt() async throws {
        let f = try Fixture()
        try f.write("1")
        let r = try f.make(interval: .milliseconds(50))
        try f.write("2")
        try await Task.sleep(for: .milliseconds(80))
        #expect(r.current.value == 2)
        try f.write("3")
        #expect(r.current.value == 2)  // looked at less than 50 ms ago
    }

    @Test func aBadFileAtStartIsTheCallersError() throws {
        let f = try Fixture()
        try f.write("x")
        #expect(throws: Bad.self) { try f.make(interval: .seconds(1)) }
    }

    @Test func aDeletedFileKeepsTheOldValue() throws {
        let f = try Fixture()
        try f.write("5")
        let r = try f.make(interval: .zero)
        try FileManager.default.removeItem(atPath: f.path)
        #expect(r.checkNow().value == 5)
        #expect(f.reports.withLock { $0 }.count == 1)
    }
}
