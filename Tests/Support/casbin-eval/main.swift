import CasbinEngine
import MCPGJSON

// One case per stdin line: {"model": text, "policy": csv, "request": [values], "matcher": "m"?}.
// One answer per stdout line: {"allowed": bool, "explain": [strings]}, {"error": text} when the request
// failed, or {"load_error": "file:line:col: message"} when the model or policy did not load.
// A case with "repeat": n decides its request n times and answers {"seconds", "allowed"} (for benchmarks).
// Enforcers are cached by (model, policy) text: the differential tests send many requests per policy.
func answer(_ line: String, _ cache: inout [String: Result<CasbinEnforcer, CasbinLoadError>]) -> JSON {
    let c: JSON
    do { c = try JSON.parse(line) } catch { return ["error": .string("bad case: \(error)")] }
    let model = c["model"]?.stringValue ?? ""
    let policy = c["policy"]?.stringValue ?? ""
    let key = model + "\u{0}" + policy
    let loaded: Result<CasbinEnforcer, CasbinLoadError>
    if let hit = cache[key] {
        loaded = hit
    } else {
        do { loaded = .success(try CasbinEnforcer(modelText: model, policyText: policy)) } catch {
            loaded = .failure(error)
        }
        cache[key] = loaded
    }
    let enforcer: CasbinEnforcer
    switch loaded {
    case .success(let e): enforcer = e
    case .failure(let e): return ["load_error": .string(e.description)]
    }
    let request = (c["request"]?.arrayValue ?? []).map(CasbinValue.init(json:))
    // {"repeat": n}: a timing run for measuring throughput (answers with the elapsed seconds).
    if let n = c["repeat"]?.intValue, n > 0 {
        let start = ContinuousClock.now
        var allowed = 0
        for _ in 0..<n { if (try? enforcer.enforce(request))?.allowed == true { allowed += 1 } }
        let d = ContinuousClock.now - start
        let secs = Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
        return ["seconds": .double(secs), "allowed": .int(Int64(allowed))]
    }
    do {
        let d = try enforcer.enforce(request, matcher: c["matcher"]?.stringValue ?? "m")
        return ["allowed": .bool(d.allowed), "explain": .array(d.explain.map { .string($0) })]
    } catch {
        return ["error": .string(error.message)]
    }
}

var cache: [String: Result<CasbinEnforcer, CasbinLoadError>] = [:]
var out: [UInt8] = []
while let line = readLine(strippingNewline: true) {
    if line.isEmpty { continue }
    out.append(contentsOf: answer(line, &cache).serialized())
    out.append(0x0A)
    if out.count > 1 << 16 {
        print(String(decoding: out.dropLast(), as: UTF8.self))
        out.removeAll(keepingCapacity: true)
    }
}
if !out.isEmpty { print(String(decoding: out.dropLast(), as: UTF8.self)) }
