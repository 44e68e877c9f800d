import FoundationEssentials
import MCPGJSON

/// How gateway requests become Cedar requests: who is asking, on what, with which context.
///
/// The principal becomes `<principalType>::"<id>"` with attributes `id`, `groups` (set of strings), `tenant`
/// (when set) and the identity's free-form attributes, and parents `<groupType>::"<g>"` for each group. The
/// action is `Action::"<method>"`. The resource is `Tool::"<name>"`, `Prompt::"<name>"`,
/// `Resource::"<uri>"` or `ResourceTemplate::"<uri template>"` with attributes `name` and `backend` and
/// parent `Backend::"<backend>"`. Entities of the same uid in the entities file contribute their attributes
/// (the request's own values win) and parents (added to the request's).
public struct CedarGatewayPolicy: Sendable {
    /// The caller, as the identity chain produced it.
    public struct Principal: Sendable {
        public var id: String
        public var groups: [String]
        public var tenant: String?
        public var attributes: JSONObject
        public init(id: String, groups: [String] = [], tenant: String? = nil, attributes: JSONObject = [:]) {
            self.id = id
            self.groups = groups
            self.tenant = tenant
            self.attributes = attributes
        }
    }

    /// One question: `action` (an MCP method) on a resource of `resourceType` named `name` at `backend`.
    public struct Query: Sendable {
        public var action: String
        public var resourceType: String
        public var name: String
        public var backend: String
        public init(action: String, resourceType: String, name: String, backend: String) {
            self.action = action
            self.resourceType = resourceType
            self.name = name
            self.backend = backend
        }
    }

    /// The outcome for one query, before `on_no_match` is applied.
    public enum Outcome: Sendable, Equatable {
        /// Permitted; the ids of the satisfied permits.
        case allow([String])
        /// Denied by satisfied forbids, or (with no forbid and no permit) by failed policies; the reasons
        /// name the forbids and, as `"<id>: error: <message>"`, every policy that failed.
        case deny([String])
        /// No policy was satisfied and none failed.
        case noMatch
    }

    public let policySet: CedarPolicySet
    public let entities: EntityStore
    public let principalType: String
    public let groupType: String

    public init(policySet: CedarPolicySet, entities: EntityStore, principalType: String = "User",
                groupType: String = "Group") {
        self.policySet = policySet
        self.entities = entities
        self.principalType = principalType
        self.groupType = groupType
    }

    /// Reads the policy files (ids: `@id`, else `<file basename>#<index in file>`), the optional entity file
    /// and the optional JSON schema (entity types and actions that policies name must be declared in it).
    /// - Throws: `CedarLoadError` whose description reads `<file>:<line>:<col>: <message>`.
    public static func load(policyFiles: [String], entitiesFile: String?, schemaFile: String? = nil,
                            principalType: String = "User", groupType: String = "Group") throws(CedarLoadError)
        -> CedarGatewayPolicy
    {
        var policies: [Policy] = []
        var ids: [String] = []
        var files: [String] = []
        for file in policyFiles {
            let text = try read(file)
            let parsed: [Policy]
            do { parsed = try CedarParser.parsePolicies(text) } catch {
                throw CedarLoadError(file: file, location: error.location, message: error.message)
            }
            let base = file.split(separator: "/").last.map(String.init) ?? file
            for (n, p) in parsed.enumerated() {
                policies.append(p)
                ids.append(p.idAnnotation ?? "\(base)#\(n)")
                files.append(file)
            }
        }
        var store = EntityStore()
        if let entitiesFile {
            let text = try read(entitiesFile)
            do {
                store = try EntityStore.fromJSON(try JSON.parse(text))
            } catch let e as JSONParseError {
                throw CedarLoadError(file: entitiesFile, location: lineColumn(text, byteOffset: e.offset),
                                     message: e.reason)
            } catch {
                throw CedarLoadError(file: entitiesFile, location: SourceLocation(line: 1, column: 1),
                                     message: "\(error)")
            }
        }
        let set = CedarPolicySet(policies: policies, ids: ids)
        if let schemaFile {
            let text = try read(schemaFile)
            let schema: CedarSchema
            do { schema = try CedarSchema(json: try JSON.parse(text)) } catch let e as JSONParseError {
                throw CedarLoadError(file: schemaFile, location: lineColumn(text, byteOffset: e.offset),
                                     message: e.reason)
            } catch {
                throw CedarLoadError(file: schemaFile, location: SourceLocation(line: 1, column: 1),
                                     message: "\(error)")
            }
            for (k, p) in policies.enumerated() {
                if let problem = schema.check(p).first {
                    throw CedarLoadError(file: files[k], location: p.location, message: "policy \(ids[k]): \(problem)")
                }
            }
        }
        return CedarGatewayPolicy(policySet: set, entities: store, principalType: principalType, groupType: groupType)
    }

    static func read(_ file: String) throws(CedarLoadError) -> String {
        guard let data = FileManager.default.contents(atPath: file) else {
            throw CedarLoadError(file: file, location: SourceLocation(line: 1, column: 1), message: "cannot read file")
        }
        return String(decoding: data, as: UTF8.self)
    }

    static func lineColumn(_ text: String, byteOffset: Int) -> SourceLocation {
        var line = 1, col = 1
        for b in text.utf8.prefix(byteOffset) {
            if b == 10 {
                line += 1
                col = 1
            } else if b & 0xC0 != 0x80 {
                col += 1
            }
        }
        return SourceLocation(line: line, column: col)
    }

    /// The principal's entity, built once per call and reused for every query of the call.
    public func principalEntity(_ p: Principal) -> Entity {
        let uid = EntityUID(type: principalType, id: p.id)
        var attrs = entities[uid]?.attributes ?? [:]
        for m in p.attributes {
            if let v = Self.contextValue(m.value) { attrs[m.key] = v }
        }
        attrs["id"] = .string(p.id)
        attrs["groups"] = .set(Set(p.groups.map { .string($0) }))
        if let t = p.tenant { attrs["tenant"] = .string(t) }
        var parents = entities[uid]?.parents ?? []
        for g in p.groups { parents.append(EntityUID(type: groupType, id: g)) }
        return entities.resolving(Entity(uid: uid, attributes: attrs, parents: parents, tags: entities[uid]?.tags ?? [:]))
    }

    /// The resource's entity type for a gateway resource type, nil for a type this mapping does not know.
    public static func resourceEntityType(_ type: String) -> String? {
        switch type {
        case "tool": return "Tool"
        case "prompt": return "Prompt"
        case "resource": return "Resource"
        case "resource_template": return "ResourceTemplate"
        default: return nil
        }
    }

    public func resourceEntity(_ q: Query) -> Entity? {
        guard let type = Self.resourceEntityType(q.resourceType) else { return nil }
        let uid = EntityUID(type: type, id: q.name)
        let known = entities[uid]
        var attrs = known?.attributes ?? [:]
        attrs["name"] = .string(q.name)
        attrs["backend"] = .string(q.backend)
        var parents = known?.parents ?? []
        parents.append(EntityUID(type: "Backend", id: q.backend))
        return entities.resolving(Entity(uid: uid, attributes: attrs, parents: parents, tags: known?.tags ?? [:]))
    }

    /// The request context as a record: objects become records, arrays sets, integers longs, other numbers
    /// decimals when they fit (else strings); `null`s are left out.
    public static func context(_ o: JSONObject) -> [String: CedarValue] {
        var out: [String: CedarValue] = [:]
        for m in o {
            if let v = contextValue(m.value) { out[m.key] = v }
        }
        return out
    }

    static func contextValue(_ j: JSON) -> CedarValue? {
        switch j {
        case .null: return nil
        case .bool(let b): return .bool(b)
        case .int(let i): return .long(i)
        case .double(let d):
            let text = String(d)
            if !text.contains("e"), case .success(let v) = ExtensionParse.decimal(text) { return .ext(.decimal(v)) }
            return .string(text)
        case .string(let s): return .string(s)
        case .array(let a): return .set(Set(a.compactMap(contextValue)))
        case .object(let o): return .record(context(o))
        }
    }

    /// Decides every query for one principal and context. The principal entity and context are built once.
    public func decide(principal: Principal, queries: [Query], context: JSONObject) -> [Outcome] {
        let p = principalEntity(principal)
        let ctx = Self.context(context)
        var out: [Outcome] = []
        out.reserveCapacity(queries.count)
        // A batch (a list filter) mostly repeats one action: the principal+action part of every policy's
        // scope is checked once per distinct action, not once per query.
        var byAction: [String: [Int]] = [:]
        for q in queries {
            guard let r = resourceEntity(q) else {
                out.append(.deny(["unknown resource type \"\(q.resourceType)\""]))
                continue
            }
            let action = EntityUID(type: "Action", id: q.action)
            let candidates: [Int]
            if let c = byAction[q.action] {
                candidates = c
            } else {
                candidates = policySet.candidates(principal: p, action: action, actionEntity: entities[action])
                byAction[q.action] = candidates
            }
            let req = CedarRequest(principal: p.uid, action: action, resource: r.uid, context: ctx)
            let resp = policySet.isAuthorized(req, entities: entities, local: [p, r], candidates: candidates)
            let errors = resp.errors.map { "\($0.policy): error: \($0.message)" }
            switch resp.decision {
            case .allow: out.append(.allow(resp.reasons))
            case .deny where !resp.reasons.isEmpty || !errors.isEmpty: out.append(.deny(resp.reasons + errors))
            case .deny: out.append(.noMatch)
            }
        }
        return out
    }
}

/// A policy, entity or schema file that could not be loaded.
public struct CedarLoadError: Error, Sendable, CustomStringConvertible {
    public var file: String
    public var location: SourceLocation
    public var message: String
    public var description: String { "\(file):\(location.line):\(location.column): \(message)" }
}
