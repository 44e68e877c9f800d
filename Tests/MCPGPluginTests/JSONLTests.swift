import Foundation
import MCPGJSON
import MCPGLoader
import Testing

/// The jsonl sink plugin, loaded through the real loader.
@Suite struct JSONLTests {
    @Test func eventsBecomeOneParseableLineEach() async throws {
        let dir = NSTemporaryDirectory() + "/mcpg-jsonl-\(UInt64.random(in: 0...UInt64.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/events.jsonl"
        let p = try instance("jsonl", config: ["path": .string(path)])
        let events: [JSON] = [
            ["seq": 1, "event": ["who": "alice", "what": "tools/call", "decision": "allow", "note": "line\nbreak"]],
            ["seq": 2, "event": ["who": "bob", "what": "tools/list", "reasons": ["default deny"]]],
        ]
        for e in events {
            let r = try await p.ok("event", e)
            #expect(r == [:])
        }
        let text = try String(contentsOfFile: path, encoding: .utf8)
        #expect(text.hasSuffix("\n"))
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
        #expect(lines.count == 2)
        #expect(try lines.map { try JSON.parse(String($0)) } == events)
        let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
        #expect(mode == 0o600)
    }

    @Test func appendsToAnExistingFile() async throws {
        let path = NSTemporaryDirectory() + "/mcpg-jsonl-\(UInt64.random(in: 0...UInt64.max)).jsonl"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Data("{\"seq\":0}\n".utf8).write(to: URL(fileURLWithPath: path))
        let p = try instance("jsonl", config: ["path": .string(path)])
        _ = try await p.ok("event", ["seq": 1])
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "{\"seq\":0}\n{\"seq\":1}\n")
    }

    @Test func concurrentEventsNeverInterleave() async throws {
        let path = NSTemporaryDirectory() + "/mcpg-jsonl-\(UInt64.random(in: 0...UInt64.max)).jsonl"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let p = try instance("jsonl", config: ["path": .string(path)])
        let padding = String(repeating: "x", count: 5000)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<200 {
                group.addTask { _ = try await p.ok("event", ["seq": .int(Int64(i)), "pad": .string(padding)]) }
            }
            try await group.waitForAll()
        }
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 200)
        let seqs = try lines.map { try #require(try JSON.parse(String($0))["seq"]?.intValue) }
        #expect(Set(seqs) == Set(0..<200))
    }

    @Test func unopenablePathIsRefusedAtCreate() throws {
        let message = try creationError("jsonl", config: ["path": "/nonexistent-mcpg-dir/events.jsonl"])
        #expect(message.contains("cannot open /nonexistent-mcpg-dir/events.jsonl"), "\(message)")
    }
}
