/// A position in policy text, 1-based.
public struct SourceLocation: Sendable, Equatable, CustomStringConvertible {
    public var line: Int
    public var column: Int
    public var description: String { "\(line):\(column)" }
}

/// A policy text that could not be parsed; `description` reads `line:col: message`.
public struct CedarParseError: Error, Sendable, Equatable, CustomStringConvertible {
    public var location: SourceLocation
    public var message: String
    public var description: String { "\(location): \(message)" }
}

/// The four request variables.
public enum Variable: Sendable, Equatable {
    case principal, action, resource, context
}

/// Binary operators after desugaring (`!=`, `>`, `>=` become `!`, `<`, `<=`).
enum BinaryOp: Sendable {
    case eq, less, lessEq, add, sub, mul, inOp, contains, containsAll, containsAny, getTag, hasTag
}

/// Extension functions and methods, resolved at parse time.
enum ExtensionFunction: String, Sendable {
    case ip, isIpv4, isIpv6, isLoopback, isMulticast, isInRange
    case decimal, lessThan, lessThanOrEqual, greaterThan, greaterThanOrEqual
    case datetime, duration, offset, durationSince, toDate, toTime
    case toDays, toHours, toMinutes, toSeconds, toMilliseconds

    /// True for names written as `x.name(...)`; false for constructors written `name(...)`.
    var isMethod: Bool {
        switch self {
        case .ip, .decimal, .datetime, .duration: return false
        default: return true
        }
    }

    var arity: Int {
        switch self {
        case .ip, .decimal, .datetime, .duration: return 1
        case .isInRange, .lessThan, .lessThanOrEqual, .greaterThan, .greaterThanOrEqual, .offset, .durationSince:
            return 2
        default: return 1
        }
    }
}

/// One element of a `like` pattern.
enum PatternElement: Sendable, Equatable {
    case char(Unicode.Scalar)
    case wildcard
}

/// A Cedar expression.
indirect enum Expr: Sendable {
    case literal(CedarValue)
    case variable(Variable)
    case ifThenElse(Expr, Expr, Expr)
    case and(Expr, Expr)
    case or(Expr, Expr)
    /// `a && b && c …` kept flat, so a long chain does not make a deep tree.
    case andAll([Expr])
    case orAll([Expr])
    case not(Expr)
    case neg(Expr)
    case binary(BinaryOp, Expr, Expr)
    case isEmpty(Expr)
    case getAttr(Expr, String)
    case hasAttr(Expr, String)
    case like(Expr, [PatternElement])
    case isType(Expr, String)
    case call(ExtensionFunction, [Expr])
    case set([Expr])
    case record([(String, Expr)])

    /// True when the expression is a literal (used to skip work at evaluation time).
    var literalValue: CedarValue? {
        if case .literal(let v) = self { return v }
        return nil
    }
}

/// Scope constraint on `principal` or `resource`.
enum ScopeConstraint: Sendable {
    case any
    case eq(EntityUID)
    case inEntity(EntityUID)
    case isType(String)
    case isTypeIn(String, EntityUID)
    /// A template slot: the policy is a template and never applies on its own.
    case slot
}

/// Scope constraint on `action`.
enum ActionConstraint: Sendable {
    case any
    case eq(EntityUID)
    case inAny([EntityUID])
}

/// `permit` or `forbid`.
public enum Effect: String, Sendable {
    case permit, forbid
}

/// One parsed policy (or template, when its scope holds a slot). A class: a request walks every policy, and
/// a reference is cheaper to pass around than the policy's fields.
public final class Policy: Sendable {
    public let effect: Effect
    /// Annotations in source order; `@id` without a value is `""`.
    public let annotations: [(key: String, value: String)]
    public let location: SourceLocation
    let principal: ScopeConstraint
    let action: ActionConstraint
    let resource: ScopeConstraint
    /// `when` conditions as is and `unless` conditions negated, in source order.
    let conditions: [Expr]

    init(effect: Effect, annotations: [(key: String, value: String)], location: SourceLocation,
         principal: ScopeConstraint, action: ActionConstraint, resource: ScopeConstraint, conditions: [Expr]) {
        self.effect = effect
        self.annotations = annotations
        self.location = location
        self.principal = principal
        self.action = action
        self.resource = resource
        self.conditions = conditions
    }

    /// The value of the `@id` annotation, if present.
    public var idAnnotation: String? { annotations.first { $0.key == "id" }?.value }
    /// True when the policy has template slots (it is kept, but never evaluated).
    public var isTemplate: Bool {
        if case .slot = principal { return true }
        if case .slot = resource { return true }
        return false
    }
}
