/// A built-in function: its value for the arguments, or nil when undefined (including type errors, which are
/// undefined rather than errors, as in non-strict evaluation).
typealias BuiltinFn = @Sendable ([Value]) -> Value?

/// An expression term. Parsing produces `.variable` and `.call`; `Compiler` resolves them into locals, refs
/// into `input`/`data`, built-ins and user functions before evaluation.
indirect enum Term: Sendable {
    case value(Value)
    case variable(String, SourcePos)
    case local(String)
    case input
    case data
    case ref(Term, [Term])
    case array([Term])
    case set([Term])
    case object([(Term, Term)])
    case arrayCompr(Term, [Literal])
    case setCompr(Term, [Literal])
    case objectCompr(Term, Term, [Literal])
    case call([String], [Term], SourcePos)
    case builtin(String, BuiltinFn, [Term])
    case userCall([String], [Term], SourcePos)
    case membership(Term?, Term, Term)
    case binary(String, Term, Term, SourcePos)
    case neg(Term, SourcePos)

    /// The dotted name when the term is a plain ref of identifiers (`a.b.c`), used for calls and `with`.
    var dottedName: [String]? {
        switch self {
        case .variable(let n, _): return [n]
        case .ref(let head, let path):
            guard var parts = head.dottedName else { return nil }
            for p in path {
                guard case .value(.string(let s)) = p else { return nil }
                parts.append(s)
            }
            return parts
        default: return nil
        }
    }
}

/// One expression of a rule body.
struct Literal: Sendable {
    var pos: SourcePos
    var negated: Bool
    var expr: Expr
    var withs: [With]
}

struct With: Sendable {
    var target: [String]
    var value: Term
    var pos: SourcePos
}

indirect enum Expr: Sendable {
    case term(Term)
    case unify(Term, Term)
    case assign(Term, Term)
    case someDecl([String])
    case someIn(Term?, Term, Term)
    case every(Term?, Term, Term, [Literal])
}

enum RuleKind: Sendable { case complete, partialSet, partialObject, function }

/// One rule definition as written; several definitions with the same name form one rule.
struct Rule: Sendable {
    var kind: RuleKind
    var name: String
    var pos: SourcePos
    /// The policy file, for evaluation errors that point at the rule.
    var file = ""
    var isDefault = false
    var args: [Term] = []
    var key: Term?
    /// nil means `true`.
    var value: Term?
    var body: [Literal] = []
    var elses: [ElseClause] = []
    /// `input.a.b == constant` tests the body starts with, checked before evaluating it: with many
    /// definitions of one rule (one per tool, group, backend…) most are skipped by a lookup, not an evaluation.
    var guards: [([String], Value)] = []
}

struct ElseClause: Sendable {
    var value: Term?
    var body: [Literal]
    var pos: SourcePos
}

struct Import: Sendable {
    var path: [String]
    var alias: String
    var pos: SourcePos
}

/// One parsed policy file.
struct Module: Sendable {
    var file: String
    var package: [String]
    var imports: [Import]
    var rules: [Rule]
}
