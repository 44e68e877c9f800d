import MCPGJSON

/// One entity: attributes, tags, and every ancestor (parents, their parents, …), computed once.
/// A class so that looking one up during evaluation costs a reference, not a copy of its tables.
public final class Entity: Sendable {
    public let uid: EntityUID
    public let attributes: [String: CedarValue]
    public let tags: [String: CedarValue]
    /// Direct parents as given.
    public let parents: [EntityUID]
    /// The transitive closure of `parents` (just `parents` until the entity is put in or resolved by a store).
    public let ancestors: Set<EntityUID>

    public init(
        uid: EntityUID, attributes: [String: CedarValue] = [:], parents: [EntityUID] = [],
        tags: [String: CedarValue] = [:], ancestors: Set<EntityUID>? = nil
    ) {
        self.uid = uid
        self.attributes = attributes
        self.tags = tags
        self.parents = parents
        self.ancestors = ancestors ?? Set(parents)
    }

    func with(ancestors: Set<EntityUID>) -> Entity {
        Entity(uid: uid, attributes: attributes, parents: parents, tags: tags, ancestors: ancestors)
    }
}

/// An error in entity JSON or a request value (cedar's JSON value format).
public struct CedarDataError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// An immutable set of entities with their ancestor sets computed.
public struct EntityStore: Sendable {
    public private(set) var entities: [EntityUID: Entity]

    public init() { entities = [:] }

    /// Builds the store; ancestors are the transitive closure of parents (cycles are tolerated).
    public init(_ list: [Entity]) throws(CedarDataError) {
        var map: [EntityUID: Entity] = [:]
        for e in list {
            if let old = map[e.uid] {
                // The same entity listed twice is fine; two different ones with one uid are not.
                if old.attributes != e.attributes || old.tags != e.tags || Set(old.parents) != Set(e.parents) {
                    throw CedarDataError("duplicate entity entry `\(e.uid)`")
                }
                continue
            }
            map[e.uid] = e
        }
        for (uid, e) in map {
            var seen = Set<EntityUID>()
            var stack = e.parents
            while let p = stack.popLast() {
                guard seen.insert(p).inserted else { continue }
                if let pe = map[p] { stack.append(contentsOf: pe.parents) }
            }
            // Cedar requires the hierarchy to be acyclic.
            if seen.contains(uid) { throw CedarDataError("the entity hierarchy has a cycle containing `\(uid)`") }
            map[uid] = e.with(ancestors: seen)
        }
        entities = map
    }

    public subscript(uid: EntityUID) -> Entity? { entities[uid] }

    /// An entity made for one request (e.g. the principal), its ancestors resolved through this store.
    public func resolving(_ e: Entity) -> Entity {
        var seen = Set<EntityUID>()
        var stack = e.parents
        while let p = stack.popLast() {
            guard seen.insert(p).inserted else { continue }
            if let pe = entities[p] { stack.append(contentsOf: pe.parents) }
        }
        return e.with(ancestors: seen)
    }

    /// Parses Cedar's entity JSON: `[{"uid": {"type", "id"}, "attrs": {…}, "parents": [...], "tags": {…}}]`.
    public static func fromJSON(_ json: JSON) throws(CedarDataError) -> EntityStore {
        guard case .array(let items) = json else { throw CedarDataError("entities must be a JSON array") }
        var list: [Entity] = []
        list.reserveCapacity(items.count)
        for item in items {
            guard case .object(let o) = item else { throw CedarDataError("each entity must be a JSON object") }
            for k in o.keys where !["uid", "attrs", "parents", "tags"].contains(k) {
                throw CedarDataError("unknown field `\(k)` in entity")
            }
            guard let uidJSON = o["uid"] else { throw CedarDataError("entity without `uid`") }
            let uid = try CedarJSON.entityUID(uidJSON)
            var attrs: [String: CedarValue] = [:]
            if let a = o["attrs"] {
                guard case .object(let ao) = a else { throw CedarDataError("`attrs` of \(uid) must be an object") }
                attrs = try CedarJSON.record(ao, context: "attribute of \(uid)")
            }
            var tags: [String: CedarValue] = [:]
            if let t = o["tags"] {
                guard case .object(let to) = t else { throw CedarDataError("`tags` of \(uid) must be an object") }
                tags = try CedarJSON.record(to, context: "tag of \(uid)")
            }
            var parents: [EntityUID] = []
            if let p = o["parents"] {
                guard case .array(let pa) = p else { throw CedarDataError("`parents` of \(uid) must be an array") }
                for x in pa { parents.append(try CedarJSON.entityUID(x)) }
            }
            list.append(Entity(uid: uid, attributes: attrs, parents: parents, tags: tags))
        }
        return try EntityStore(list)
    }
}

/// Cedar's JSON value format: JSON values plus the `__entity` and `__extn` escapes.
public enum CedarJSON {
    /// `{"type": "User", "id": "alice"}` or `{"__entity": {…}}`.
    public static func entityUID(_ json: JSON) throws(CedarDataError) -> EntityUID {
        guard case .object(var o) = json else { throw CedarDataError("an entity uid must be an object") }
        if o.count == 1, case .object(let inner)? = o["__entity"] { o = inner }
        guard case .string(let type)? = o["type"], case .string(let id)? = o["id"] else {
            throw CedarDataError("an entity uid needs string `type` and `id`")
        }
        let name: String
        do { name = try CedarParser.parseTypeName(type) } catch {
            throw CedarDataError("invalid entity type `\(type)`: \(error)")
        }
        guard name == type else { throw CedarDataError("entity type `\(type)` needs to be normalized") }
        return EntityUID(type: name, id: id)
    }

    public static func record(_ o: JSONObject, context: String) throws(CedarDataError) -> [String: CedarValue] {
        var out: [String: CedarValue] = [:]
        out.reserveCapacity(o.count)
        for m in o {
            guard out[m.key] == nil else { throw CedarDataError("duplicate key `\(m.key)` in \(context)") }
            out[m.key] = try value(m.value, context: context)
        }
        return out
    }

    /// Converts one JSON value. `null` and non-integer numbers are errors, as Cedar has no such values.
    public static func value(_ json: JSON, context: String = "value") throws(CedarDataError) -> CedarValue {
        switch json {
        case .null: throw CedarDataError("found a `null` in \(context); JSON `null`s are not allowed in Cedar")
        case .bool(let b): return .bool(b)
        case .int(let i): return .long(i)
        case .double: throw CedarDataError("non-integer number in \(context)")
        case .string(let s): return .string(s)
        case .array(let a):
            var s = Set<CedarValue>()
            for x in a { s.insert(try value(x, context: context)) }
            return .set(s)
        case .object(let o):
            if o.count == 1, let m = o.members.first {
                if m.key == "__entity", case .object(let inner) = m.value, inner.count >= 2,
                    case .string? = inner["type"], case .string? = inner["id"]
                {
                    return .entity(try entityUID(m.value))
                }
                if m.key == "__extn", case .object(let inner) = m.value, inner.count >= 2,
                    case .string(let fn)? = inner["fn"]
                {
                    if let arg = inner["arg"] { return try extensionValue(fn, [try value(arg, context: context)]) }
                    if case .array(let args)? = inner["args"] {
                        var vals: [CedarValue] = []
                        for a in args { vals.append(try value(a, context: context)) }
                        return try extensionValue(fn, vals)
                    }
                }
                if m.key == "__expr" { throw CedarDataError("the `__expr` escape is no longer supported") }
            }
            return .record(try record(o, context: context))
        }
    }

    static func extensionValue(_ fn: String, _ args: [CedarValue]) throws(CedarDataError) -> CedarValue {
        guard let f = ExtensionFunction(rawValue: fn), !f.isMethod || f == .offset else {
            throw CedarDataError("unknown extension function `\(fn)`")
        }
        do {
            return try Evaluator.callExtension(f, args)
        } catch {
            throw CedarDataError("failed to evaluate extension function `\(fn)`: \(error.message)")
        }
    }
}
