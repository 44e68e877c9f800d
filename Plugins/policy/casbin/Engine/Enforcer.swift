/// The answer to one request: the decision and the policy row that decided it, as the reference engine's
/// explain reports it (empty when no single row decided, e.g. an allow under deny-override).
public struct CasbinDecision: Sendable, Equatable {
    public var allowed: Bool
    /// The deciding row's values, without its type.
    public var explain: [String]
    /// The deciding row's type (`p`, `p2`, …), or nil when `explain` is empty.
    public var policyType: String?
    /// The deciding row's line in the policy text, or nil.
    public var line: Int?
    /// When allowed without an explain (deny-override, allow-and-deny): the first matched allow row, as
    /// `p, …`, so an audit record can still name a rule.
    public var firstAllow: String?

    /// `p, alice, data1, read`, or nil when no row decided.
    public var explainLine: String? {
        guard let policyType, !explain.isEmpty else { return nil }
        return ([policyType] + explain).joined(separator: ", ")
    }
}

/// Extra role links for one request: `user` is a direct member of `roles` in `domain` of the role
/// definition at `roleIndex`. Built once per call by `CasbinEnforcer.grant`.
public struct RoleGrant: Sendable {
    let roleIndex: Int
    let user: String
    let domain: String
    let reach: Set<String>
}

/// A loaded model + policy, ready to decide requests. Immutable; share it across threads.
///
/// Per request, every policy row of the context's type is matched in order; the policy effect combines the
/// matched rows' effects and stops early as soon as the outcome is settled, and that row is the explain.
public final class CasbinEnforcer: Sendable {
    struct Context: Sendable {
        var requestKey: String
        var policyKey: String
        var effect: PolicyEffect
        var matcher: Expr
        var hasEval: Bool
        var effectIndex: Int?
        /// Rows by the value of one policy field that the matcher requires to equal a request field.
        var index: RowIndex?
    }

    /// When a matcher is `… && r.x == p.y && …` and everything before that equality cannot fail, a row whose
    /// `p.y` differs from the request's `r.x` is false without evaluating it: only rows with that value are
    /// visited, in policy order, which gives the same decision and explain as visiting all of them.
    struct RowIndex: Sendable {
        var requestField: Int
        var policyField: Int
        var rows: [String: [Int]]
    }

    public let model: CasbinModel
    /// Role definition keys in index order (`g`, `g2`, …).
    public let roleKeys: [String]
    let roleGraphs: [RoleGraph]
    let rows: [String: [PolicyRow]]
    let contexts: [String: Context]
    let regexes = RegexCache()

    /// Loads `policyText` (CSV) against `model`.
    /// - Throws: `CasbinLoadError` for a bad matcher (positions in the model file) or a bad policy line.
    public init(model: CasbinModel, policyText: String, policyFile: String = "policy") throws(CasbinLoadError) {
        self.model = model
        let roleKeys = model.roles.keys.sorted { $0.count != $1.count ? $0.count < $1.count : $0 < $1 }
        self.roleKeys = roleKeys

        // Matchers, one context per `m` key, paired with r/p/e of the same suffix when those exist.
        var contexts: [String: Context] = [:]
        for (mkey, opt) in model.matchers {
            let suffix = String(mkey.dropFirst())
            let rkey = model.requests["r" + suffix] != nil ? "r" + suffix : "r"
            let pkey = model.policies["p" + suffix] != nil ? "p" + suffix : "p"
            let ekey = model.effects["e" + suffix] != nil ? "e" + suffix : "e"
            guard let rt = model.requests[rkey], let pt = model.policies[pkey], let effect = model.effects[ekey] else {
                throw CasbinLoadError(file: model.file, line: opt.line, column: opt.keyColumn,
                                      message: "matcher `\(mkey)` has no request, policy or effect definition")
            }
            let scope = NameScope(requestKey: rkey, requestTokens: rt, policyKey: pkey, policyTokens: pt,
                                  roleKeys: roleKeys, allowEval: true)
            let expr: Expr
            do {
                expr = try ExprParser.parse(opt.value, scope: scope)
            } catch {
                let p = opt.map.position(error.offset)
                throw CasbinLoadError(file: model.file, line: p.line, column: p.column, message: error.message)
            }
            contexts[mkey] = Context(requestKey: rkey, policyKey: pkey, effect: effect, matcher: expr,
                                     hasEval: expr.usesEval, effectIndex: pt.firstIndex(of: "eft"))
        }

        var rows: [String: [PolicyRow]] = [:]
        for key in model.policies.keys { rows[key] = [] }
        var graphs = roleKeys.map { RoleGraph(withDomains: model.roles[$0] == 3) }
        var roleRows: [String: [[String]]] = [:]
        for line in try PolicyCSV.parse(policyText, file: policyFile) {
            func fail(_ field: Int, _ message: String) -> CasbinLoadError {
                let col = field < line.columns.count ? line.columns[field] : (line.columns.last ?? 1)
                return CasbinLoadError(file: policyFile, line: line.line, column: col, message: message)
            }
            let key = line.fields[0]
            let values = Array(line.fields.dropFirst())
            if let tokens = model.policies[key] {
                guard values.count == tokens.count else {
                    throw fail(min(line.fields.count - 1, tokens.count + 1),
                               "`\(key)` rows have \(tokens.count) fields (\(tokens.joined(separator: ", "))), this one has \(values.count)")
                }
                rows[key, default: []].append(PolicyRow(values: values.map { .string($0) }, strings: values,
                                                        line: line.line, columns: Array(line.columns.dropFirst())))
            } else if let arity = model.roles[key], let gi = roleKeys.firstIndex(of: key) {
                guard values.count >= arity else {
                    throw fail(line.fields.count - 1, "`\(key)` rows need \(arity) fields, this one has \(values.count)")
                }
                graphs[gi].add(values[0], values[1], domain: arity == 3 ? values[2] : "")
                roleRows[key, default: []].append(values)
            } else {
                throw fail(0, "unknown policy type `\(key)`")
            }
        }
        for i in graphs.indices { graphs[i].finish() }
        self.roleGraphs = graphs

        // Rows in decision order: by subject hierarchy, then by priority, both stable.
        for (pkey, tokens) in model.policies {
            guard var list = rows[pkey] else { continue }
            if model.effects["e"] == .subjectPriority {
                guard let g = roleRows["g"] ?? (model.roles["g"] != nil ? [] : nil) else {
                    throw CasbinLoadError(file: model.file, line: model.policyLines[pkey] ?? 1, column: 1,
                                          message: "subjectPriority needs a role definition `g`")
                }
                let levels = try Self.subjectLevels(g, file: policyFile)
                let dom = tokens.firstIndex(of: "dom")
                list = Self.stableSorted(list) { row in
                    let domain = dom.map { row.strings[$0] } ?? ""
                    return levels[domain + "::" + (row.strings.first ?? "")] ?? 0
                }
            }
            if let pi = tokens.firstIndex(of: "priority") {
                let digits = list.map { $0.strings[pi].isDigits }
                if digits.allSatisfy({ $0 }) {
                    list = Self.stableSorted(list) { Int($0.strings[pi]) ?? Int.max }
                } else if digits.contains(true), let bad = list.first(where: { !$0.strings[pi].isDigits }) {
                    throw CasbinLoadError(file: policyFile, line: bad.line, column: bad.columns[pi],
                                          message: "priority \"\(bad.strings[pi])\" is not a number while others are")
                } else {
                    list = Self.stableSorted(list) { $0.strings[pi] }
                }
            }
            rows[pkey] = list
        }

        // Rules for eval(): compile the named field of every row of the matcher's policy type.
        for (_, ctx) in contexts where ctx.hasEval {
            guard let rt = model.requests[ctx.requestKey], let pt = model.policies[ctx.policyKey],
                  var list = rows[ctx.policyKey] else { continue }
            let scope = NameScope(requestKey: ctx.requestKey, requestTokens: rt, policyKey: ctx.policyKey,
                                  policyTokens: pt, roleKeys: roleKeys, allowEval: false)
            for f in ctx.matcher.evalFields {
                for r in list.indices {
                    if list[r].rules.isEmpty { list[r].rules = Array(repeating: nil, count: pt.count) }
                    guard list[r].rules[f] == nil else { continue }
                    do {
                        list[r].rules[f] = try ExprParser.parse(list[r].strings[f], scope: scope)
                    } catch {
                        throw CasbinLoadError(file: policyFile, line: list[r].line,
                                              column: list[r].columns[f] + error.offset, message: error.message)
                    }
                }
            }
            rows[ctx.policyKey] = list
        }
        self.rows = rows
        for (key, ctx) in contexts {
            guard let (ri, pi) = ctx.matcher.indexableEquality else { continue }
            var byValue: [String: [Int]] = [:]
            for (k, row) in (rows[ctx.policyKey] ?? []).enumerated() { byValue[row.strings[pi], default: []].append(k) }
            contexts[key]?.index = RowIndex(requestField: ri, policyField: pi, rows: byValue)
        }
        self.contexts = contexts
    }

    /// Parses both texts and loads them.
    public convenience init(modelText: String, policyText: String, modelFile: String = "model",
                            policyFile: String = "policy") throws(CasbinLoadError) {
        try self.init(model: try CasbinModel(text: modelText, file: modelFile), policyText: policyText,
                      policyFile: policyFile)
    }

    /// The token names of request definition `key` (`["sub", "obj", "act"]`).
    public func requestTokens(_ key: String = "r") -> [String] { model.requests[key] ?? [] }

    /// Whether role definition `g` has domains (`g = _, _, _`).
    public var roleDomains: Bool { model.roles["g"] == 3 }

    /// Makes `user` a direct member of `roles` (in `domain`) of role definition `key` for one request.
    public func grant(user: String, roles: [String], domain: String = "", key: String = "g") -> RoleGrant? {
        guard let i = roleKeys.firstIndex(of: key), !roles.isEmpty else { return nil }
        return RoleGrant(roleIndex: i, user: user, domain: domain,
                         reach: roleGraphs[i].reachable(from: user, extra: roles, domain: domain))
    }

    /// Decides one request. `matcher` picks the `m` key (and with it r/p/e of the same suffix).
    /// - Throws: `CasbinEvalError` when the request has the wrong size or the matcher fails on it.
    public func enforce(_ request: [CasbinValue], matcher: String = "m", grant: RoleGrant? = nil)
        throws(CasbinEvalError) -> CasbinDecision
    {
        guard let ctx = contexts[matcher] else { throw CasbinEvalError("no matcher `\(matcher)`") }
        let tokenCount = model.requests[ctx.requestKey]?.count ?? 0
        guard request.count == tokenCount else {
            throw CasbinEvalError("the request has \(request.count) values, `\(ctx.requestKey)` has \(tokenCount)")
        }
        let env = Evaluator(request: request, graphs: roleGraphs, grant: grant, regexes: regexes)
        let list = rows[ctx.policyKey] ?? []
        if list.isEmpty {
            if ctx.hasEval { throw CasbinEvalError("eval() in the matcher needs policy rows") }
            let width = model.policies[ctx.policyKey]?.count ?? 0
            let empty = PolicyRow(values: Array(repeating: .string(""), count: width),
                                  strings: Array(repeating: "", count: width), line: 0, columns: [])
            let v = try env.evaluate(ctx.matcher, empty)
            // Without rows the matcher alone decides (deny-override allows whatever it says).
            return CasbinDecision(allowed: ctx.effect == .denyOverride || v.truthy, explain: [], policyType: nil,
                                  line: nil)
        }
        var sawAllow = false, sawDeny = false
        var firstAllow: String?
        var order: [Int]?
        if let ix = ctx.index, case .string(let s) = request[ix.requestField] { order = ix.rows[s] ?? [] }
        for k in 0..<(order?.count ?? list.count) {
            let row = list[order?[k] ?? k]
            let v = try env.evaluate(ctx.matcher, row)
            switch v {
            case .bool(let b): if !b { continue }
            case .double(let d): if d == 0 { continue }
            default: throw CasbinEvalError("the matcher must give a bool, got \(v.typeName)")
            }
            var isAllow = true, isDeny = false
            if let ei = ctx.effectIndex {
                isAllow = row.strings[ei] == "allow"
                isDeny = row.strings[ei] == "deny"
            }
            if isAllow {
                sawAllow = true
                if firstAllow == nil { firstAllow = ([ctx.policyKey] + row.strings).joined(separator: ", ") }
            }
            if isDeny { sawDeny = true }
            let settled: Bool
            switch ctx.effect {
            case .allowOverride: settled = sawAllow
            case .denyOverride, .allowAndDeny: settled = sawDeny
            case .priority, .subjectPriority: settled = sawAllow || sawDeny
            }
            if settled {
                let allowed: Bool
                switch ctx.effect {
                case .allowOverride: allowed = true
                case .denyOverride, .allowAndDeny: allowed = false
                case .priority, .subjectPriority: allowed = sawAllow
                }
                return CasbinDecision(allowed: allowed, explain: row.strings, policyType: ctx.policyKey, line: row.line)
            }
        }
        let allowed: Bool
        switch ctx.effect {
        case .allowOverride, .priority, .subjectPriority: allowed = false
        case .denyOverride: allowed = true
        case .allowAndDeny: allowed = sawAllow
        }
        return CasbinDecision(allowed: allowed, explain: [], policyType: nil, line: nil,
                              firstAllow: allowed ? firstAllow : nil)
    }

    static func stableSorted<K: Comparable>(_ rows: [PolicyRow], by key: (PolicyRow) -> K) -> [PolicyRow] {
        rows.enumerated().map { (key($0.element), $0.offset, $0.element) }
            .sorted { $0.0 != $1.0 ? $0.0 < $1.0 : $0.1 < $1.1 }
            .map { $0.2 }
    }

    /// Level of each `domain::subject` in the role tree: 0 for subjects nobody inherits from (the most
    /// specific), increasing towards the roots.
    static func subjectLevels(_ links: [[String]], file: String) throws(CasbinLoadError) -> [String: Int] {
        var pending: [(String, String)] = links.map { l in
            let d = l.count > 2 ? l[2] : ""
            return (d + "::" + l[0], d + "::" + l[1])
        }
        var unsorted = Set(pending.flatMap { [$0.0, $0.1] })
        var levels: [String: Int] = [:]
        var level = 0
        while !pending.isEmpty {
            let parents = Set(pending.map(\.1).filter { !$0.isEmpty })
            let current = unsorted.subtracting(parents)
            if current.isEmpty {
                throw CasbinLoadError(file: file, line: 1, column: 1, message: "cycle in the subject hierarchy")
            }
            for s in current { levels[s] = level }
            pending.removeAll { current.contains($0.0) }
            unsorted.subtract(current)
            level += 1
        }
        for s in unsorted { levels[s] = level }
        return levels
    }
}

extension Expr {
    var usesEval: Bool { !evalFields.isEmpty }

    /// Evaluating this never throws (so skipping it cannot hide an error).
    var infallible: Bool {
        switch self {
        case .literal, .request, .policy: return true
        case .compare(let es, let ops): return ops.allSatisfy { $0 == .eq || $0 == .ne } && es.allSatisfy(\.infallible)
        case .role(_, let args), .and(let args), .or(let args): return args.allSatisfy(\.infallible)
        case .not(let e): return e.infallible
        default: return false
        }
    }

    /// The first `r.x == p.y` operand of a top-level conjunction whose earlier operands are infallible.
    var indexableEquality: (request: Int, policy: Int)? {
        let operands: [Expr]
        if case .and(let es) = self { operands = es } else { operands = [self] }
        for e in operands {
            if case .compare(let xs, let ops) = e, ops == [.eq], xs.count == 2 {
                switch (xs[0], xs[1]) {
                case (.request(let r), .policy(let p)), (.policy(let p), .request(let r)): return (r, p)
                default: break
                }
            }
            if !e.infallible { return nil }
        }
        return nil
    }

    /// The policy fields named in `eval(…)` calls.
    var evalFields: [Int] {
        switch self {
        case .evalRule(let i): return [i]
        case .literal, .request, .policy: return []
        case .attribute(let e, _), .not(let e), .negate(let e): return e.evalFields
        case .arithmetic(_, let a, let b), .index(let a, let b):
            return a.evalFields + b.evalFields
        case .compare(let es, _), .list(let es), .call(_, let es), .role(_, let es), .and(let es), .or(let es):
            return es.flatMap(\.evalFields)
        }
    }
}

extension String {
    var isDigits: Bool { !isEmpty && utf8.allSatisfy { $0 >= 0x30 && $0 <= 0x39 } }
}
