import Foundation

/// The roles reached by the last (role definition, user, domain) looked up: within one request the same
/// user is asked about once per policy row, so this turns three hash lookups per row into one.
final class RoleMemo {
    var roleIndex = -1
    var user = ""
    var domain = ""
    var reach: Set<String> = []
}

/// Evaluates compiled matchers for one request against policy rows.
struct Evaluator {
    let request: [CasbinValue]
    let graphs: [RoleGraph]
    let grant: RoleGrant?
    let regexes: RegexCache
    let memo = RoleMemo()

    func evaluate(_ e: Expr, _ row: PolicyRow) throws(CasbinEvalError) -> CasbinValue {
        switch e {
        case .literal(let v): return v
        case .request(let i): return request[i]
        case .policy(let i): return row.values[i]
        case .attribute(let base, let name):
            let v = try evaluate(base, row)
            guard case .object(let o) = v else {
                throw CasbinEvalError("\(v.typeName) value has no attribute `\(name)`")
            }
            guard let a = o[name] else { throw CasbinEvalError("object has no attribute `\(name)`") }
            return a
        case .index(let base, let sub):
            let v = try evaluate(base, row)
            let k = try evaluate(sub, row)
            switch (v, k) {
            case (.array(let a), _):
                guard let i = k.integer else { throw CasbinEvalError("list index must be an integer") }
                let j = i < 0 ? Int64(a.count) + i : i
                guard j >= 0, j < a.count else { throw CasbinEvalError("list index out of range") }
                return a[Int(j)]
            case (.string(let s), _):
                guard let i = k.integer else { throw CasbinEvalError("string index must be an integer") }
                let chars = Array(s.unicodeScalars)
                let j = i < 0 ? Int64(chars.count) + i : i
                guard j >= 0, j < chars.count else { throw CasbinEvalError("string index out of range") }
                return .string(String(chars[Int(j)]))
            case (.object(let o), .string(let key)):
                guard let x = o[key] else { throw CasbinEvalError("no key \"\(key)\"") }
                return x
            default: throw CasbinEvalError("\(v.typeName) cannot be indexed")
            }
        case .not(let x): return .bool(!(try evaluate(x, row).truthy))
        case .negate(let x):
            let v = try evaluate(x, row)
            switch v {
            case .int(let i) where i != .min: return .int(-i)
            case .double(let d): return .double(-d)
            case .bool(let b): return .int(b ? -1 : 0)
            default: throw CasbinEvalError("cannot negate \(v.typeName)")
            }
        case .and(let items):
            var v = CasbinValue.bool(true)
            for x in items {
                v = try evaluate(x, row)
                if !v.truthy { return v }
            }
            return v
        case .or(let items):
            var v = CasbinValue.bool(false)
            for x in items {
                v = try evaluate(x, row)
                if v.truthy { return v }
            }
            return v
        case .compare(let operands, let ops):
            var left = try evaluate(operands[0], row)
            for (k, op) in ops.enumerated() {
                let right = try evaluate(operands[k + 1], row)
                if !(try compare(left, op, right)) { return .bool(false) }
                left = right
            }
            return .bool(true)
        case .arithmetic(let op, let a, let b):
            return try arithmetic(op, try evaluate(a, row), try evaluate(b, row))
        case .list(let items):
            var out: [CasbinValue] = []
            out.reserveCapacity(items.count)
            for x in items { out.append(try evaluate(x, row)) }
            return .array(out)
        case .call(let fn, let args):
            // Built-ins take two or three strings; no argument array per call.
            let a = try string(args[0], row, fn)
            let b = try string(args[1], row, fn)
            let c = args.count > 2 ? try string(args[2], row, fn) : ""
            return try call(fn, a, b, c)
        case .role(let gi, let args):
            let a = try evaluate(args[0], row)
            let b = try evaluate(args[1], row)
            var domain = ""
            if args.count == 3 { domain = try evaluate(args[2], row).description }
            guard case .string(let user) = a, case .string(let role) = b else { return .bool(a.looselyEquals(b)) }
            if user == role { return .bool(true) }
            if memo.roleIndex != gi || memo.user != user || memo.domain != domain {
                let graph = graphs[gi]
                if let grant, grant.roleIndex == gi, grant.user == user, !graph.withDomains || grant.domain == domain {
                    memo.reach = grant.reach
                } else {
                    memo.reach = graph.reach[graph.withDomains ? domain : ""]?[user] ?? []
                }
                memo.roleIndex = gi
                memo.user = user
                memo.domain = domain
            }
            return .bool(memo.reach.contains(role))
        case .evalRule(let i):
            guard i < row.rules.count, let rule = row.rules[i] else {
                throw CasbinEvalError("eval(): no rule compiled for this policy field")
            }
            return try evaluate(rule, row)
        }
    }

    private func compare(_ l: CasbinValue, _ op: CompareOp, _ r: CasbinValue) throws(CasbinEvalError) -> Bool {
        switch op {
        case .eq: return l.looselyEquals(r)
        case .ne: return !l.looselyEquals(r)
        case .isIn: return try contains(r, l)
        case .notIn: return !(try contains(r, l))
        case .lt, .le, .gt, .ge:
            guard let c = l.compare(r) else {
                throw CasbinEvalError("cannot order \(l.typeName) and \(r.typeName)")
            }
            switch op {
            case .lt: return c == -1
            case .le: return c == -1 || c == 0
            case .gt: return c == 1
            default: return c == 1 || c == 0
            }
        }
    }

    private func contains(_ container: CasbinValue, _ item: CasbinValue) throws(CasbinEvalError) -> Bool {
        switch container {
        case .array(let a): return a.contains { $0.looselyEquals(item) }
        case .string(let s):
            guard case .string(let sub) = item else { throw CasbinEvalError("`in <string>` needs a string on the left") }
            return sub.isEmpty || s.contains(sub)
        case .object(let o):
            guard case .string(let k) = item else { return false }
            return o[k] != nil
        default: throw CasbinEvalError("`in` needs a list or string on the right, got \(container.typeName)")
        }
    }

    private func arithmetic(_ op: ArithOp, _ a: CasbinValue, _ b: CasbinValue) throws(CasbinEvalError) -> CasbinValue {
        if op == .add, case .string(let x) = a, case .string(let y) = b { return .string(x + y) }
        if op == .add, case .array(let x) = a, case .array(let y) = b { return .array(x + y) }
        if let x = a.integer, let y = b.integer {
            switch op {
            case .add: let (r, o) = x.addingReportingOverflow(y); if !o { return .int(r) }
            case .sub: let (r, o) = x.subtractingReportingOverflow(y); if !o { return .int(r) }
            case .mul: let (r, o) = x.multipliedReportingOverflow(by: y); if !o { return .int(r) }
            case .div:
                guard y != 0 else { throw CasbinEvalError("division by zero") }
                return .double(Double(x) / Double(y))
            case .mod:
                guard y != 0 else { throw CasbinEvalError("modulo by zero") }
                guard x != .min else { break }
                let r = x % y
                return .int(r != 0 && (r < 0) != (y < 0) ? r + y : r)
            }
            throw CasbinEvalError("integer overflow")
        }
        guard let x = a.number, let y = b.number else {
            throw CasbinEvalError("unsupported operand types for arithmetic: \(a.typeName) and \(b.typeName)")
        }
        switch op {
        case .add: return .double(x + y)
        case .sub: return .double(x - y)
        case .mul: return .double(x * y)
        case .div:
            guard y != 0 else { throw CasbinEvalError("division by zero") }
            return .double(x / y)
        case .mod:
            guard y != 0 else { throw CasbinEvalError("modulo by zero") }
            let r = x.truncatingRemainder(dividingBy: y)
            return .double(r != 0 && (r < 0) != (y < 0) ? r + y : r)
        }
    }

    private func string(_ e: Expr, _ row: PolicyRow, _ fn: Builtin) throws(CasbinEvalError) -> String {
        let v = try evaluate(e, row)
        guard case .string(let s) = v else { throw CasbinEvalError("\(fn.rawValue)() takes strings, got \(v.typeName)") }
        return s
    }

    private func call(_ fn: Builtin, _ a: String, _ b: String, _ c: String) throws(CasbinEvalError) -> CasbinValue {
        switch fn {
        case .keyMatch: return .bool(Builtins.keyMatch(a, b))
        case .keyMatch2: return .bool(try Builtins.keyMatch2(a, b, regexes))
        case .keyMatch3: return .bool(try Builtins.keyMatch3(a, b, regexes))
        case .keyMatch4: return .bool(try Builtins.keyMatch4(a, b, regexes))
        case .keyMatch5: return .bool(try Builtins.keyMatch5(a, b, regexes))
        case .keyGet: return .string(Builtins.keyGet(a, b))
        case .keyGet2: return .string(try Builtins.keyGet2(a, b, c, regexes))
        case .keyGet3: return .string(try Builtins.keyGet3(a, b, c, regexes))
        case .regexMatch: return .bool(try Builtins.regexMatch(a, b, regexes))
        case .globMatch: return .bool(Builtins.globMatch(a, b))
        case .ipMatch: return .bool(try Builtins.ipMatch(a, b))
        case .timeMatch: return .bool(try Builtins.timeMatch(a, b, now: Date()))
        }
    }
}
