import Foundation
import MCPGJSON

/// Turns query values into authorization outcomes for the gateway: one decision query (e.g.
/// `data.mcpg.authz.allow`) and an optional reasons query evaluated per request.
///
/// The plugin wrapper maps its request types onto `decide`; keeping the mapping here lets it be tested without
/// the plugin runtime. Inputs are `{"principal", "action", "resource", "context"}`; the principal and the
/// context are the same for every query of one call, so rules that read only those are computed once per call.
public struct RegoAuthorizer: Sendable {
    /// What one query decided.
    public enum Effect: Sendable, Equatable { case allow, deny, noMatch }

    public struct Outcome: Sendable, Equatable {
        public var effect: Effect
        public var reasons: [String]
        public init(_ effect: Effect, _ reasons: [String]) {
            self.effect = effect
            self.reasons = reasons
        }
    }

    /// One resource being asked about.
    public struct Query: Sendable {
        public var action: String
        public var type: String
        public var name: String
        public var backend: String
        public init(action: String, type: String, name: String, backend: String) {
            self.action = action
            self.type = type
            self.name = name
            self.backend = backend
        }
    }

    public let policy: RegoPolicy
    public let query: RegoQuery
    public let reasonsQuery: RegoQuery?

    /// - Throws: `RegoError` when a query does not parse.
    public init(policy: RegoPolicy, query: String, reasonsQuery: String?) throws(RegoError) {
        self.policy = policy
        self.query = try policy.prepare(query)
        self.reasonsQuery = try reasonsQuery.map { (q) throws(RegoError) in try policy.prepare(q) }
    }

    /// Reads and compiles policy files and an optional JSON data file.
    /// - Throws: `RegoError` naming the file (and line:col for policy errors).
    public static func load(policyFiles: [String], dataFile: String?, query: String, reasonsQuery: String?)
        throws(RegoError) -> RegoAuthorizer
    {
        var modules: [(name: String, text: String)] = []
        for path in policyFiles {
            guard let bytes = FileManager.default.contents(atPath: path) else {
                throw RegoError(file: path, "cannot read policy file")
            }
            modules.append((path, String(decoding: bytes, as: UTF8.self)))
        }
        var data: JSON?
        if let dataFile {
            guard let bytes = FileManager.default.contents(atPath: dataFile) else {
                throw RegoError(file: dataFile, "cannot read data file")
            }
            do {
                data = try JSON.parse([UInt8](bytes))
            } catch {
                throw RegoError(file: dataFile, "\(error)")
            }
            guard case .object = data else { throw RegoError(file: dataFile, "data must be a JSON object") }
        }
        let policy = try RegoPolicy(modules: modules, data: data)
        return try RegoAuthorizer(policy: policy, query: query, reasonsQuery: reasonsQuery)
    }

    /// Builds the `input.principal` document.
    public static func principal(id: String, groups: [String], tenant: String?, attributes: JSONObject) -> Value {
        var pairs: [(Value, Value)] = [
            (.string("id"), .string(id)), (.string("groups"), .array(groups.map { .string($0) })),
            (.string("attributes"), Value(json: .object(attributes))),
        ]
        if let tenant { pairs.append((.string("tenant"), .string(tenant))) }
        return .object(RegoObject(pairs: pairs))
    }

    /// Decides each query in order. Never throws: an evaluation error denies that query with the error as reason.
    public func decide(principal: Value, context: JSONObject, queries: [Query]) -> [Outcome] {
        let session = RegoSession(policy: policy, sharedInputKeys: ["principal", "context"])
        let ctx = Value(json: .object(context))
        var out: [Outcome] = []
        out.reserveCapacity(queries.count)
        for q in queries {
            let resource = Value.object(RegoObject(pairs: [
                (.string("type"), .string(q.type)), (.string("name"), .string(q.name)),
                (.string("backend"), .string(q.backend)),
            ]))
            let input = Value.object(RegoObject(pairs: [
                (.string("principal"), principal), (.string("action"), .string(q.action)),
                (.string("resource"), resource), (.string("context"), ctx),
            ]))
            out.append(outcome(session, input))
        }
        return out
    }

    func outcome(_ session: RegoSession, _ input: Value) -> Outcome {
        switch session.evaluate(query, input: input) {
        case .value(.bool(true)):
            return Outcome(.allow, reasons(session, input) ?? [query.text])
        case .value(.bool(false)):
            return Outcome(.deny, reasons(session, input) ?? ["denied by \(query.text)"])
        case .value(let v):
            return Outcome(.deny, ["\(query.text) is \(v.typeName), not boolean"])
        case .undefined:
            return Outcome(.noMatch, ["\(query.text) undefined"])
        case .error(let e):
            return Outcome(.deny, ["\(query.text): \(e)"])
        }
    }

    /// The reasons query's strings, or nil when it is not set, undefined, fails, or yields no strings.
    func reasons(_ session: RegoSession, _ input: Value) -> [String]? {
        guard let reasonsQuery, case .value(let v) = session.evaluate(reasonsQuery, input: input) else { return nil }
        let strings: [String]
        switch v {
        case .string(let s): strings = [s]
        case .array(let a), .set(let a): strings = a.compactMap(\.stringValue)
        default: return nil
        }
        return strings.isEmpty ? nil : strings
    }
}
