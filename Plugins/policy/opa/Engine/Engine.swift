import MCPGJSON

/// A compiled set of Rego modules plus base data, immutable and shareable across threads.
///
/// Build it once per policy version; evaluate many queries against it. Parsing and name resolution happen
/// here, so a policy that loads is one the evaluator understands; anything outside the supported subset
/// is a load error naming the file, line:col and the construct ("unsupported: …").
public struct RegoPolicy: Sendable {
    let root: PackageNode
    let data: Value

    /// - Parameters:
    ///   - modules: (file name for messages, policy text) pairs.
    ///   - data: base documents under `data` (an object), or nil.
    /// - Throws: `RegoError` with file and line:col for the first problem found.
    public init(modules: [(name: String, text: String)], data: JSON? = nil) throws(RegoError) {
        var parsed: [Module] = []
        for m in modules { parsed.append(try Parser.parseModule(m.text, file: m.name)) }
        root = try Compiler.compile(parsed)
        if let data {
            guard case .object = data else { throw RegoError("data must be a JSON object") }
            self.data = Value(json: data)
        } else {
            self.data = .object(RegoObject())
        }
    }

    /// Parses a query such as `data.mcpg.authz.allow` once, for repeated evaluation.
    public func prepare(_ query: String) throws(RegoError) -> RegoQuery {
        var p = try Parser(text: query, file: "query")
        p.newlineSignificant = [false]
        let t = try p.term()
        guard p.peek().kind == .eof else { throw p.error("unexpected \(p.describe(p.peek())) in query") }
        return RegoQuery(text: query, term: try Compiler.resolveQuery(t, root: root))
    }

    /// Evaluates one query for one input.
    public func evaluate(_ query: RegoQuery, input: Value?) -> RegoResult {
        RegoSession(policy: self).evaluate(query, input: input)
    }
}

/// A parsed query.
public struct RegoQuery: Sendable {
    public let text: String
    let term: Term
}

/// The outcome of a query: its value, undefined, or an evaluation error (a conflict, recursion, …).
public enum RegoResult: Sendable, Equatable {
    case value(Value)
    case undefined
    case error(String)
}

/// Evaluates many queries against one policy, computing once the rules that read no input beyond
/// `sharedInputKeys` (data-only tables, and e.g. everything that depends only on `input.principal` in a batch
/// for one principal). Use one session per batch; it is not thread-safe.
public final class RegoSession {
    let policy: RegoPolicy
    let sharedKeys: Set<String>
    var shared: [Int: Value?] = [:]

    /// - Parameter sharedInputKeys: top-level input keys whose values are the same in every input this session
    ///   evaluates (the caller's promise).
    public init(policy: RegoPolicy, sharedInputKeys: Set<String> = []) {
        self.policy = policy
        sharedKeys = sharedInputKeys
    }

    public func evaluate(_ query: RegoQuery, input: Value?) -> RegoResult {
        let ev = Evaluator(root: policy.root, baseData: policy.data, input: input, sharedCache: shared,
                           sharedKeys: sharedKeys)
        defer { shared = ev.sharedCache }
        var result: Value?
        do {
            try ev.eval(query.term, [:]) { v, _ in
                result = v
                return true
            }
        } catch let e as RegoError {
            return .error(e.description)
        } catch {
            return .error("\(error)")
        }
        return result.map { .value($0) } ?? .undefined
    }
}
