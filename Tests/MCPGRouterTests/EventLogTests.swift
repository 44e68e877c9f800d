import MCPGJSON
import MCPGRouter
import Synchronization
import Testing

@Suite struct EventLogs {
    final class Received: Sendable {
        let items = Mutex<[(String, JSON, Bool)]>([])
        var ids: [String] { items.withLock { $0.map(\.0) } }
        var sink: EventLog.Sink { { id, m, f in self.items.withLock { $0.append((id, m, f)) }; return true } }
    }

    @Test func idsNameTheStreamAndResumeSendsOnlyWhatWasMissed() throws {
        let s = Session(id: "s", owner: "o", protocolVersion: "2025-11-25", clientInfo: .null, clientCapabilities: [:])
        let a = s.newEventLog(requestStream: true)
        let b = s.newEventLog(requestStream: false)
        #expect(a.primingID == "1-0" && b.primingID == "2-0")
        #expect(a.append(["n": 1]) == "1-1")
        #expect(a.append(["n": 2]) == "1-2")
        #expect(b.append(["n": 9]) == "2-1")
        let r = Received()
        #expect(s.eventLog(1)!.resume(after: 1, to: r.sink))
        #expect(r.ids == ["1-2"])
        // The resumed connection carries the rest; the answer ends the stream, and nothing is taken after it.
        #expect(a.append(["answer": true], final: true) == "1-3")
        #expect(r.items.withLock { $0.last?.2 } == true)
        #expect(a.isFinished && a.append(["late": true]) == nil)
        #expect(EventLog.parse("12-7")! == (12, 7))
        for bad in ["", "1", "a-1", "1-2-3", "-1-2"] { #expect(EventLog.parse(bad) == nil) }
    }

    @Test func logsAreBounded() {
        let s = Session(id: "s", owner: "o", protocolVersion: "2025-11-25", clientInfo: .null, clientCapabilities: [:])
        let log = s.newEventLog(requestStream: false)
        for i in 0..<1000 { log.append(["i": .int(Int64(i))]) }
        let r = Received()
        // Events after 10 were dropped long ago: the replay says it has a gap, and holds only the newest.
        #expect(log.resume(after: 10, to: r.sink) == false)
        #expect(r.ids.count <= 256 && r.ids.last == "1-1000")
        for _ in 0..<40 { _ = s.newEventLog(requestStream: true) }
        #expect(s.eventLog(1) == nil && s.eventLog(41) != nil)
    }
}
