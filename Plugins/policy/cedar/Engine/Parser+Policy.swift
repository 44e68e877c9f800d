/// Policies: annotations, effect, scope and conditions.
extension Parser {
    mutating func parsePolicy() throws(CedarParseError) -> Policy {
        let start = tok.location
        var annotations: [(key: String, value: String)] = []
        while isPunct("@") {
            let at = take().location
            let (key, _) = try anyIdent()
            var value = ""
            if isPunct("(") {
                _ = take()
                guard case .string(let raw) = tok.kind else { throw error("expected a string annotation value") }
                let loc = take().location
                value = try Self.unescaped(raw, loc)
                try expect(")")
            }
            if annotations.contains(where: { $0.key == key }) {
                throw error("duplicate annotation: @\(key)", at: at)
            }
            annotations.append((key, value))
        }
        let (effectName, effectLoc) = try anyIdent()
        guard let effect = Effect(rawValue: effectName) else {
            throw error("invalid policy effect: \(effectName)", at: effectLoc)
        }
        try expect("(")
        var principal = ScopeConstraint.any
        var action = ActionConstraint.any
        var resource = ScopeConstraint.any
        var count = 0
        while !isPunct(")") {
            switch count {
            case 0: principal = try parsePrincipalOrResource(.principal)
            case 1: action = try parseActionScope()
            case 2: resource = try parsePrincipalOrResource(.resource)
            default: throw error("this policy has an extra element in the scope")
            }
            count += 1
            if isPunct(",") { _ = take() } else { break }
        }
        if count < 3 {
            let missing = ["principal", "action", "resource"][count]
            throw error("this policy is missing the `\(missing)` variable in the scope")
        }
        try expect(")")
        var conditions: [Expr] = []
        while case .ident(let kw) = tok.kind {
            let kwLoc = take().location
            guard kw == "when" || kw == "unless" else { throw error("invalid policy condition: \(kw)", at: kwLoc) }
            try expect("{")
            if isPunct("}") { throw error("`\(kw)` condition clause cannot be empty", at: kwLoc) }
            clauseStart = i
            defer { clauseStart = Int.max }
            let e = try toExpr(try parseExpr())
            if treeDepth(e) > Self.maxTreeDepth {
                throw error("`\(kw)` condition is nested too deeply (more than \(Self.maxTreeDepth) levels)", at: kwLoc)
            }
            try expect("}")
            conditions.append(kw == "when" ? e : .not(e))
        }
        guard isPunct(";") else { throw error("expected `;` at the end of the policy, found \(describe(tok))") }
        _ = take()
        return Policy(
            effect: effect, annotations: annotations, location: start, principal: principal, action: action,
            resource: resource, conditions: conditions)
    }

    mutating func parsePrincipalOrResource(_ v: Variable) throws(CedarParseError) -> ScopeConstraint {
        let name = v == .principal ? "principal" : "resource"
        let (got, loc) = try anyIdent()
        guard got == name else {
            if ["principal", "action", "resource"].contains(got) {
                throw error("found the variable `\(got)` where the variable `\(name)` must be used", at: loc)
            }
            throw error("found an invalid variable in the policy scope: \(got)", at: loc)
        }
        if isPunct(":") { throw error("type constraints using `:` are not supported") }
        var type: String?
        if isIdent("is") {
            _ = take()
            let (path, ploc) = try parsePath()
            if isPunct("::") { throw error("right hand side of an `is` expression must be an entity type name") }
            type = try Self.validName(path, ploc)
        }
        if isPunct("==") || isIdent("in") {
            let isEq = isPunct("==")
            let opLoc = take().location
            if isEq && type != nil { throw error("`is` cannot be used together with `==`", at: opLoc) }
            let target: EntityUID?
            switch try parseScopeTarget(listAllowed: false) {
            case .slot(let s, let sloc):
                guard s == name else { throw error("`?\(s)` is not a valid template slot here", at: sloc) }
                target = nil
            case .uid(let u, _): target = u
            case .list: throw error("expected a single entity uid")
            }
            if isIdent("is") { throw error("when `is` and `in` are used together, `is` must come first") }
            guard let target else { return .slot }
            if isEq { return .eq(target) }
            if let type { return .isTypeIn(type, target) }
            return .inEntity(target)
        }
        if isPunct("=") { throw error("'=' is not a valid operator in Cedar") }
        if case .punct(let p) = tok.kind, ["<", "<=", ">", ">=", "!="].contains(p) {
            throw error("invalid operator in the policy scope: \(p)")
        }
        if let type { return .isType(type) }
        return .any
    }

    mutating func parseActionScope() throws(CedarParseError) -> ActionConstraint {
        let (got, loc) = try anyIdent()
        guard got == "action" else {
            if ["principal", "resource"].contains(got) {
                throw error("found the variable `\(got)` where the variable `action` must be used", at: loc)
            }
            throw error("found an invalid variable in the policy scope: \(got)", at: loc)
        }
        if isPunct(":") { throw error("type constraints using `:` are not supported") }
        if isIdent("is") { throw error("`is` cannot appear in the action scope") }
        func checkAction(_ uid: EntityUID, _ loc: SourceLocation) throws(CedarParseError) {
            let base = uid.type.split(separator: ":").last.map(String.init) ?? uid.type
            guard base == "Action" else {
                throw CedarParseError(
                    location: loc, message: "expected an entity uid with type `Action` but got `\(uid)`")
            }
        }
        if isPunct("==") || isIdent("in") {
            let isEq = isPunct("==")
            _ = take()
            let target = try parseScopeTarget(listAllowed: !isEq)
            if isIdent("is") { throw error("`is` cannot appear in the action scope") }
            switch target {
            case .slot(let s, let sloc): throw error("`?\(s)` is not allowed in the action scope", at: sloc)
            case .uid(let u, let loc):
                try checkAction(u, loc)
                return isEq ? .eq(u) : .inAny([u])
            case .list(let items):
                for (u, loc) in items { try checkAction(u, loc) }
                return .inAny(items.map(\.0))
            }
        }
        if isPunct("=") { throw error("'=' is not a valid operator in Cedar") }
        if case .punct(let p) = tok.kind, ["<", "<=", ">", ">=", "!="].contains(p) {
            throw error("invalid operator in the action scope: \(p)")
        }
        return .any
    }

    enum ScopeTarget {
        case uid(EntityUID, SourceLocation)
        case slot(String, SourceLocation)
        case list([(EntityUID, SourceLocation)])
    }

    /// The right side of `==`/`in` in a scope: an entity uid, a slot, or (for actions) a list of uids, each
    /// possibly in parentheses.
    mutating func parseScopeTarget(listAllowed: Bool) throws(CedarParseError) -> ScopeTarget {
        if isPunct("(") {
            _ = take()
            let inner = try parseScopeTarget(listAllowed: listAllowed)
            try expect(")")
            return inner
        }
        if case .slot(let s) = tok.kind {
            let loc = take().location
            return .slot(s, loc)
        }
        if isPunct("[") {
            let loc = take().location
            guard listAllowed else { throw error("expected a single entity uid, found a list", at: loc) }
            let items = try commaList(until: "]") {
                (p: inout Parser) throws(CedarParseError) -> (EntityUID, SourceLocation) in
                guard case .uid(let u, let l) = try p.parseScopeTarget(listAllowed: false) else {
                    throw p.error("expected an entity uid in the list")
                }
                return (u, l)
            }
            try expect("]")
            return .list(items)
        }
        let loc = tok.location
        return .uid(try parseEntityRef(), loc)
    }
}
