// Differential-test driver: one case per stdin line, one answer per stdout line.
//
// Case:   {"policies": "<cedar text>", "entities": [<cedar entity JSON>],
//          "requests": [{"principal": P, "action": A, "resource": R, "context": {...}}]}
//         where P/A/R are `{"type": …, "id": …}` or a string like `User::"alice"`.
// Answer: {"results": [{"decision": "Allow"|"Deny"|"NoDecision", "reasons": [ids], "errors": [ids],
//          "message": "<why there is no decision>"}]}
//
// Gateway case (the plugin's mapping): {"gateway": {"policies": text, "entities": [...],
//          "principal": {"id", "groups", "tenant", "attributes"}, "context": {...},
//          "queries": [{"action", "type", "name", "backend"}], "repeat": n}}
// Answer: {"results": [{"outcome": "allow"|"deny"|"noMatch", "reasons": [...]}], "micros": <time of the
//          last of `repeat` runs>}
import CedarEngine
import MCPGJSON

#if canImport(Glibc)
import Glibc
#endif

func uid(_ j: JSON?) throws -> EntityUID {
    switch j {
    case .string(let s)?: return try CedarParser.parseEntityUID(s)
    case let x?: return try CedarJSON.entityUID(x)
    case nil: throw CedarDataError("missing entity in request")
    }
}

func noDecision(_ message: String) -> JSON {
    ["decision": "NoDecision", "reasons": [], "errors": [], "message": .string(message)]
}

func gateway(_ g: JSON) -> JSON {
    let set: CedarPolicySet
    let store: EntityStore
    do {
        set = try CedarPolicySet(text: g["policies"]?.stringValue ?? "")
        store = try EntityStore.fromJSON(g["entities"] ?? .array([]))
    } catch {
        return ["error": .string("\(error)")]
    }
    let policy = CedarGatewayPolicy(policySet: set, entities: store)
    let pj = g["principal"] ?? [:]
    let principal = CedarGatewayPolicy.Principal(
        id: pj["id"]?.stringValue ?? "", groups: pj["groups"]?.arrayValue?.compactMap(\.stringValue) ?? [],
        tenant: pj["tenant"]?.stringValue, attributes: pj["attributes"]?.objectValue ?? [:])
    let queries = (g["queries"]?.arrayValue ?? []).map {
        CedarGatewayPolicy.Query(
            action: $0["action"]?.stringValue ?? "", resourceType: $0["type"]?.stringValue ?? "",
            name: $0["name"]?.stringValue ?? "", backend: $0["backend"]?.stringValue ?? "")
    }
    let context = g["context"]?.objectValue ?? [:]
    var outcomes: [CedarGatewayPolicy.Outcome] = []
    var micros = 0.0
    for _ in 0..<max(1, Int(g["repeat"]?.intValue ?? 1)) {
        let start = ContinuousClock.now
        outcomes = policy.decide(principal: principal, queries: queries, context: context)
        let d = (ContinuousClock.now - start).components
        micros = Double(d.seconds) * 1e6 + Double(d.attoseconds) / 1e12
    }
    let results: [JSON] = outcomes.map {
        switch $0 {
        case .allow(let r): return ["outcome": "allow", "reasons": .array(r.map { .string($0) })]
        case .deny(let r): return ["outcome": "deny", "reasons": .array(r.map { .string($0) })]
        case .noMatch: return ["outcome": "noMatch", "reasons": []]
        }
    }
    return ["results": .array(results), "micros": .double(micros)]
}

func answer(_ c: JSON) -> JSON {
    if let g = c["gateway"] { return gateway(g) }
    let requests = c["requests"]?.arrayValue ?? []
    let policySet: CedarPolicySet
    do {
        policySet = try CedarPolicySet(text: c["policies"]?.stringValue ?? "")
    } catch {
        return ["results": .array(requests.map { _ in noDecision("parse error: \(error)") })]
    }
    let store: EntityStore
    do {
        store = try EntityStore.fromJSON(c["entities"] ?? .array([]))
    } catch {
        return ["results": .array(requests.map { _ in noDecision("entities: \(error)") })]
    }
    var results: [JSON] = []
    for r in requests {
        do {
            var ctx: [String: CedarValue] = [:]
            if let cj = r["context"], !cj.isNull {
                guard case .object(let o) = cj else { throw CedarDataError("context must be an object") }
                ctx = try CedarJSON.record(o, context: "context")
            }
            let req = CedarRequest(
                principal: try uid(r["principal"]), action: try uid(r["action"]), resource: try uid(r["resource"]),
                context: ctx)
            let resp = policySet.isAuthorized(req, entities: store)
            results.append([
                "decision": .string(resp.decision.rawValue),
                "reasons": .array(resp.reasons.map { .string($0) }),
                "errors": .array(resp.errors.map { .string($0.policy) }),
                "messages": .array(resp.errors.map { .string($0.message) }),
            ])
        } catch {
            results.append(noDecision("request: \(error)"))
        }
    }
    return ["results": .array(results)]
}

var output: [UInt8] = []
while let line = readLine(strippingNewline: true) {
    if line.isEmpty { continue }
    let out: JSON
    do {
        out = answer(try JSON.parse(line))
    } catch {
        out = ["error": .string("bad case: \(error)")]
    }
    out.write(into: &output)
    output.append(10)
}
// One write at the end: the differential test sends every case at once and reads the answers after.
output.withUnsafeBufferPointer { b in
    guard let base = b.baseAddress else { return }
    var off = 0
    while off < b.count {
        let n = write(1, base + off, b.count - off)
        if n <= 0 { break }
        off += n
    }
}
