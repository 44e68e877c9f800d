"""Cases for the Rego differential test: generated authorization policies and hand-written feature cases.

A case is {"name", "modules": [policy text, …], "data"?: {…}, "input"?: …, "query": "data.…"}; a case may
carry "expect" (a hand-computed answer, OPA semantics) and "reason" when the reference engine is known to
differ from OPA (listed in SPEC.md §6 and in test_opa.py).
"""
import json
import random

HDR = "package mcpg.authz\nimport rego.v1\n"

USERS = ["alice", "bob", "carol", "dave", "eve"]
GROUPS = ["admins", "devs", "ops", "sales", "eng", "eng.platform", "eng.platform.sre"]
TOOLS = ["admin.reset", "admin.users.list", "db.query", "db.write", "fs.read", "fs.write", "search", "weather.today"]
BACKENDS = ["main", "db", "files", "web"]
ACTIONS = ["tools/call", "tools/list", "prompts/get", "resources/read"]
TENANTS = ["acme", "globex", None]


def gen_input(rng: random.Random) -> dict:
    tenant = rng.choice(TENANTS)
    principal = {
        "id": rng.choice(USERS),
        "groups": rng.sample(GROUPS, rng.randint(0, 3)),
        "attributes": {"level": rng.randint(0, 5), "dept": rng.choice(["eng", "sales", "hr"])},
    }
    if tenant is not None:
        principal["tenant"] = tenant
    tool = rng.choice(TOOLS)
    ctx = {"transport": rng.choice(["http", "stdio"]), "peer": rng.choice(["10.1.2.3", "192.168.0.9", "127.0.0.1"]),
           "time": rng.choice(["2026-01-05T09:30:00+00:00", "2026-03-07T22:15:00+00:00"])}
    if rng.random() < 0.5:
        ctx["arguments"] = {"path": rng.choice(["/tmp/a", "/etc/passwd", "/home/x/y"]), "limit": rng.randint(1, 200)}
    return {"principal": principal, "action": rng.choice(ACTIONS),
            "resource": {"type": "tool", "name": tool, "backend": rng.choice(BACKENDS)}, "context": ctx}


def gen_data(rng: random.Random) -> dict:
    roles = {}
    for g in GROUPS:
        roles[g] = rng.sample(TOOLS, rng.randint(0, 4))
    return {"roles": roles, "blocked": rng.sample(USERS, 1), "limits": {g: rng.randint(1, 100) for g in GROUPS[:4]},
            "parents": {"eng.platform.sre": "eng.platform", "eng.platform": "eng", "ops": "eng"}}


def cond(rng: random.Random) -> str:
    """One body expression over input and data."""
    u, g, t, b = rng.choice(USERS), rng.choice(GROUPS), rng.choice(TOOLS), rng.choice(BACKENDS)
    choices = [
        f'input.principal.id == "{u}"',
        f'input.principal.id != "{u}"',
        f'"{g}" in input.principal.groups',
        f'not "{g}" in input.principal.groups',
        f'some g in input.principal.groups; startswith(g, "{g.split(".")[0]}")',
        f'input.resource.name == "{t}"',
        f'startswith(input.resource.name, "{t.split(".")[0]}.")',
        f'endswith(input.resource.name, ".{t.split(".")[-1]}")',
        f'glob.match("{t.split(".")[0]}.*", ["."], input.resource.name)',
        f'glob.match("{t.split(".")[0]}.**", [], input.resource.name)',
        f'regex.match("^{t.split(".")[0]}\\\\.", input.resource.name)',
        f'input.principal.attributes.level >= {rng.randint(0, 5)}',
        f'input.principal.attributes.level * 2 + 1 > {rng.randint(0, 11)}',
        f'input.principal.attributes.dept == "{rng.choice(["eng", "sales", "hr"])}"',
        f'input.resource.backend == "{b}"',
        f'input.resource.backend in {{"{b}", "{rng.choice(BACKENDS)}"}}',
        f'input.action == "{rng.choice(ACTIONS)}"',
        f'input.principal.tenant == "{rng.choice(["acme", "globex"])}"',
        'input.principal.tenant',
        'not input.principal.tenant',
        f'count(input.principal.groups) > {rng.randint(0, 2)}',
        'some g in input.principal.groups; input.resource.name in data.roles[g]',
        'some g; input.principal.groups[g]; g >= 0',
        'g := input.principal.groups[_]; input.resource.name in data.roles[g]',
        'not input.principal.id in data.blocked',
        'input.principal.id in data.blocked',
        'input.context.arguments.limit <= 100',
        'startswith(input.context.arguments.path, "/tmp/")',
        f'input.context.transport == "{rng.choice(["http", "stdio"])}"',
        'lower(input.principal.id) == input.principal.id',
        'count([x | some x in input.principal.groups; contains(x, ".")]) > 0',
        'every g in input.principal.groups { startswith(g, "sales") == false }',
        f'helper_level(input.principal) > {rng.randint(0, 5)}',
        'is_admin',
        f'in_tree(input.principal.groups, "{rng.choice(["eng", "eng.platform", "ops"])}")',
        'max(object.keys(data.limits)) != ""',
        'sum([data.limits[g] | some g in input.principal.groups; data.limits[g]]) > 20',
        f'split(input.resource.name, ".")[0] == "{t.split(".")[0]}"',
        f'time.weekday(time.parse_rfc3339_ns(input.context.time)) == "{rng.choice(["Monday", "Saturday"])}"',
        'time.clock(time.parse_rfc3339_ns(input.context.time))[0] < 18',
        f'object.get(input.context, ["arguments", "limit"], 0) > {rng.randint(0, 150)}',
        'sprintf("%s@%s", [input.principal.id, input.resource.backend]) != "eve@db"',
        f'indexof(input.resource.name, ".") == {rng.randint(-1, 5)}',
        f'substring(input.resource.name, 0, 2) == "{t[:2]}"',
    ]
    return rng.choice(choices)


PRELUDE = """
is_admin if "admins" in input.principal.groups
is_admin if input.principal.id == "alice"
helper_level(p) := p.attributes.level if p.attributes.dept == "eng"
else := 0
in_tree(groups, root) if {
    some g in groups
    g == root
}
in_tree(groups, root) if {
    some g in groups
    data.parents[g] == root
}
in_tree(groups, root) if {
    some g in groups
    data.parents[data.parents[g]] == root
}
"""


def body(rng: random.Random) -> str:
    n = rng.randint(1, 3)
    lines = [cond(rng) for _ in range(n)]
    if rng.random() < 0.5:
        return "{\n    " + "\n    ".join(lines) + "\n}"
    return "{ " + "; ".join(lines) + " }"


def gen_policy(rng: random.Random) -> str:
    out = [HDR, PRELUDE]
    style = rng.randint(0, 3)
    if style == 0:
        out.append("default allow := false")
        for _ in range(rng.randint(1, 4)):
            out.append(f"allow if {body(rng)}")
    elif style == 1:
        for _ in range(rng.randint(1, 3)):
            out.append(f'deny contains "deny-{rng.randint(0, 99)}" if {body(rng)}')
        for i in range(rng.randint(1, 3)):
            out.append(f'permit contains "allow-{i}" if {body(rng)}')
        out.append("allow := false if count(deny) > 0\nelse := true if count(permit) > 0")
        out.append("reasons := deny if count(deny) > 0\nelse := permit")
    elif style == 2:
        out.append("default allow := false")
        out.append(f'allow if {{\n    not deny_any\n    {cond(rng)}\n}}')
        out.append(f"deny_any if {body(rng)}")
        out.append(f'reasons contains msg if {{\n    deny_any\n    msg := sprintf("denied %s for %s", [input.resource.name, input.principal.id])\n}}')
    else:
        out.append(f'grants[g] := tools if {{ some g in input.principal.groups; tools := object.get(data.roles, g, []) }}')
        out.append('allowed_tools := {t | some ts in grants; some t in ts}')
        out.append(f'allow if {{ input.resource.name in allowed_tools; {cond(rng)} }}')
        out.append(f'allow := false if {{ not input.resource.name in allowed_tools }}')
        out.append('reasons := [sprintf("%v", [count(allowed_tools)])]')
    return "\n".join(out) + "\n"


def generated(seed: int = 20261126, policies: int = 110, inputs: int = 4) -> list:
    rng = random.Random(seed)
    cases = []
    for p in range(policies):
        text = gen_policy(rng)
        data = gen_data(rng)
        for i in range(inputs):
            inp = gen_input(rng)
            q = rng.choice(["data.mcpg.authz.allow", "data.mcpg.authz.allow", "data.mcpg.authz.reasons",
                            "data.mcpg.authz"])
            cases.append({"name": f"gen-{p}-{i}", "modules": [text], "data": data, "input": inp, "query": q})
    return cases


# Hand-written cases: (name, policy body after the header, input, query suffix under data.t, data).
ORDER = "OPA orders values of different types (null < boolean < number < string < array < object < set); regopy does not"
SETORDER = "OPA iterates sets in sorted order; regopy in insertion order"


def hand() -> list:
    cases = []

    def add(name, body, inp=None, q="x", data=None, expect=None, reason=None, modules=None):
        c = {"name": name, "modules": modules or ["package t\nimport rego.v1\n" + body], "query": "data.t" + ("." + q if q else "")}
        if modules is not None and q.startswith("data."):
            c["query"] = q
        if inp is not None:
            c["input"] = inp
        if data is not None:
            c["data"] = data
        if expect is not None:
            c["expect"] = expect
            c["reason"] = reason
        cases.append(c)

    # rules, defaults, else chains, conflicts
    add("complete-true", "x if input.a == 1", {"a": 1})
    add("complete-undef", "x if input.a == 1", {"a": 2})
    add("complete-false-default", "default x := false\nx if input.a == 1", {"a": 2})
    add("complete-value", 'x := "v" if input.a', {"a": True})
    add("complete-same-twice", "x := 1 if true\nx := 1 if input.a", {"a": True})
    add("complete-conflict", "x := 1 if true\nx := 2 if input.a", {"a": True})
    add("complete-conflict-one-body", "x := y if { some y in input.a }", {"a": [1, 2]})
    add("complete-no-conflict-one-body", "x := y if { some y in input.a }", {"a": [3, 3]})
    add("else-first", "x := 1 if input.a == 1\nelse := 2 if input.a == 2\nelse := 3", {"a": 1})
    add("else-second", "x := 1 if input.a == 1\nelse := 2 if input.a == 2\nelse := 3", {"a": 2})
    add("else-last", "x := 1 if input.a == 1\nelse := 2 if input.a == 2\nelse := 3", {"a": 9})
    add("default-overridden", "default x := 7\nx := 8 if input.a", {"a": True})
    add("default-used", "default x := 7\nx := 8 if input.a", {"a": False})
    add("multiple-bodies-or", "x if input.a == 1\nx if input.b == 2", {"a": 0, "b": 2})
    add("rule-no-body", "x := [1, 2, {\"k\": true}]")
    add("rule-eq-syntax", "x = 5 if true")
    add("rule-ref-other", "y := 3\nx := y + 1")
    add("rule-ref-undefined", "y if false\nx := 1 if y")
    add("rule-not-undefined", "y if false\nx := 1 if not y")
    add("rule-not-false", "default y := false\nx := 1 if not y")
    # partial sets and objects
    add("set-rule", 'x contains v if { some v in input.a; v > 1 }', {"a": [1, 2, 3, 2]})
    add("set-rule-empty", 'x contains v if { some v in input.a; v > 10 }', {"a": [1, 2]})
    add("set-rule-multi", 'x contains "a" if input.p\nx contains "b" if input.q\nx contains "c"', {"p": True, "q": False})
    add("set-member-lookup", 's contains v if { some v in input.a }\nx := s[2]', {"a": [1, 2]})
    add("set-member-missing", 's contains v if { some v in input.a }\nx := s[5]', {"a": [1, 2]})
    add("obj-rule", 'x[k] := v if { some k, v in input.o; v > 1 }', {"o": {"a": 1, "b": 2, "c": 3}})
    add("obj-rule-conflict", 'x[k] := v if { some v in input.a; k := "same" }', {"a": [1, 2]})
    add("obj-rule-lookup", 'o[k] := v if { some k, v in input.o }\nx := o.b', {"o": {"a": 1, "b": 2}})
    add("obj-rule-iter", 'o[k] := v if { some k, v in input.o }\nx := [k | o[k] > 1]', {"o": {"a": 1, "b": 2, "c": 5}})
    # functions
    add("fn-basic", "f(a) := a * 2\nx := f(4)")
    add("fn-multi-def", 'f(a) := "big" if a > 10\nf(a) := "small" if a <= 10\nx := [f(1), f(11)]')
    add("fn-conflict", 'f(a) := 1 if a > 0\nf(a) := 2 if a > 5\nx := f(7)')
    add("fn-bool", 'f(a) if a > 0\nx := f(1)')
    add("fn-bool-undef", 'f(a) if a > 0\nx := f(-1)')
    add("fn-pattern-arg", 'f([a, b]) := a + b\nx := f([2, 3])')
    add("fn-else", 'f(a) := "pos" if a > 0\nelse := "nonpos"\nx := [f(1), f(-1)]')
    add("fn-const-arg", 'f("a") := 1\nf("b") := 2\nx := [f("a"), f("b")]')
    add("fn-undefined-arg", 'f(a) := 1\nx := f(input.missing)', {})
    add("fn-calls-fn", 'g(a) := a + 1\nf(a) := g(a) * 10\nx := f(1)')
    # refs, iteration, unification
    add("ref-deep", "x := input.a.b[1].c", {"a": {"b": [{"c": 1}, {"c": 2}]}})
    add("ref-iter-var", "x := {v | v := input.a[i].c; i > 0}", {"a": [{"c": 1}, {"c": 2}, {"c": 3}]})
    add("ref-iter-obj", "x := {k | input.o[k] == 1}", {"o": {"a": 1, "b": 2, "c": 1}})
    add("ref-bracket-string", 'x := input["a-b"].c', {"a-b": {"c": 9}})
    add("ref-missing", "x := input.a.b.c", {"a": {}})
    add("ref-index-oob", "x := input.a[5]", {"a": [1]})
    add("ref-string-index", "x := input.a[0]", {"a": "str"})
    add("ref-data", "x := data.roles.admins", None, "x", {"roles": {"admins": ["a", "b"]}})
    add("ref-data-var", 'x := {r | data.roles[r][_] == "b"}', None, "x", {"roles": {"admins": ["a", "b"], "devs": ["b"], "x": []}})
    add("unify-bind", "x := y if { y = 3 }")
    add("unify-array", "x := [a, b] if { [a, b] = [1, 2] }")
    add("unify-array-both", "x := [a, b] if { [a, 2] = [1, b] }")
    add("unify-fail", "x := 1 if { [a, 3] = [1, 2] }")
    add("unify-obj", 'x := a if { {"k": a} = {"k": 5} }')
    add("assign-array", "x := a + b if { [a, b] := [1, 2] }")
    add("eq-vs-unify", "x if { input.a == 1 }\ny if { input.a = 1 }\nz := [x, y]", {"a": 1}, "z")
    add("eq-number-float", "x := 1 == 1.0")
    add("eq-types", 'x := [1 == "1", null == false, [] == {}, {} == set()]')
    add("cmp-ops", "x := [1 < 2, 2 <= 2, 3 > 4, 4 >= 5, 1 != 2, \"a\" < \"b\"]")
    add("cmp-mixed-types", 'x := [null < false, false < 0, 0 < "", "" < [], [] < {}, {} < set()]',
        expect={"value": [True] * 6}, reason=ORDER)
    add("arith", "x := [1 + 2, 5 - 7, 3 * 4, 7 / 2, 8 / 4, 7 % 3, -7 % 3, 2.5 * 2, 0.5 + 0.25]")
    add("arith-div-zero", "x := 1 / 0")
    add("arith-type-error", 'x := input.a + 1', {"a": "s"})
    add("neg-var", "x := -input.a", {"a": 3})
    # not / some / every / in
    add("not-basic", "x if not input.a", {"a": False})
    add("not-undefined", "x if not input.missing", {})
    add("not-in", 'x if not "z" in input.a', {"a": ["a"]})
    add("some-in-array", "x := [v | some v in input.a]", {"a": [3, 1]})
    add("some-kv-array", "x contains [i, v] if { some i, v in input.a }", {"a": ["p", "q"]})
    add("some-kv-object", "x := {k: v | some k, v in input.o}", {"o": {"b": 1, "a": 2}})
    add("some-in-set", "x := [v | some v in {3, 1, 2}]", expect={"value": [1, 2, 3]}, reason=SETORDER)
    add("some-decl", "x := [i | some i; input.a[i] > 1]", {"a": [1, 2, 3]})
    add("some-in-undefined", "x := [v | some v in input.missing]", {})
    add("every-true", "x if { every v in input.a { v > 0 } }", {"a": [1, 2]})
    add("every-false", "x if { every v in input.a { v > 1 } }", {"a": [1, 2]})
    add("every-empty", "x if { every v in input.a { v > 1 } }", {"a": []})
    add("every-kv", "x if { every k, v in input.o { startswith(k, \"a\"); v > 0 } }", {"o": {"ab": 1, "ac": 2}})
    add("every-not", 'x if { every g in input.a { not startswith(g, "s") } }', {"a": ["a", "s"]}, expect={"undefined": True},
        reason="regopy evaluates `not` inside an `every` body wrongly (always true)")
    add("every-object-values", "x if { every v in input.o { v > 1 } }", {"o": {"a": 1}})
    add("in-array", 'x := ["a" in input.a, "z" in input.a]', {"a": ["a", "b"]})
    add("in-set", "x := [1 in {1, 2}, 3 in {1, 2}]")
    add("in-object-values", 'x := [1 in {"a": 1}, "a" in {"a": 1}]')
    add("in-string", 'x := "a" in "abc"')
    # comprehensions and literals
    add("compr-array", "x := [y | some v in input.a; v != 2; y := v * 2]", {"a": [1, 2, 3]})
    add("compr-set", "x := {y | some v in input.a; y := v % 2}", {"a": [1, 2, 3]})
    add("compr-obj", 'x := {k: count(v) | some k, v in input.o}', {"o": {"a": "xyz", "b": [1]}})
    add("compr-obj-conflict", 'x := {"k": v | some v in input.a}', {"a": [1, 2]})
    add("compr-nested", "x := [[y | some y in a] | some a in input.a]", {"a": [[1], [2, 3]]})
    add("literal-set-dedup", "x := {1, 2, 1, \"a\"}")
    add("literal-empty", "x := [[], {}, set()]")
    add("literal-multiline", 'x := {\n  "a": [\n    1,\n    2,\n  ],\n  "b": {3, 4},\n}')
    add("set-ops", "x := [{1, 2} | {2, 3}, {1, 2} & {2, 3}, {1, 2} - {2, 3}]")
    add("package-doc", "a := 1\nb contains 2\nc if false\nf(x) := x", None, "")
    # with
    add("with-input-path", "y := input.a.b\nx := v if { v := y with input.a.b as 7 }", {"a": {"b": 1}})
    add("with-data-path", "y := data.cfg.limit\nx := v if { v := y with data.cfg as {\"limit\": 3} }", None, "x", {"cfg": {"limit": 1}})
    add("with-input-whole", "y := input.a\nx := v if { v := y with input as {\"a\": 5} }", {"a": 1},
        expect={"value": 5}, reason="regopy crashes (segfault) on `with input as {...}`")
    add("with-not", "y if input.a == 1\nx if { not y with input.a as 2 }", {"a": 1})
    # built-ins: strings
    add("b-count", 'x := [count("héllo"), count([1, 2]), count({"a": 1}), count({1})]')
    add("b-sum-max-min", "x := [sum([1, 2.5]), max([3, 1, 2]), min({4, 2}), sum([])]")
    add("b-max-empty", "x := max([])")
    add("b-sort", 'x := [sort([3, 1, 2]), sort({"b", "a"})]')
    add("b-sort-mixed", 'x := sort(["b", 1, null])', expect={"value": [None, 1, "b"]}, reason=ORDER)
    add("b-concat", 'x := [concat(", ", ["a", "b"]), concat("", [])]')
    add("b-concat-set", 'x := concat("-", {"z", "y"})', expect={"value": "y-z"}, reason=SETORDER)
    add("b-str-preds", 'x := [contains("abc", "b"), startswith("abc", "ab"), endswith("abc", "bc"), contains("abc", "")]')
    add("b-case", 'x := [lower("AbC"), upper("aBc")]')
    add("b-split", 'x := [split("a.b.c", "."), split("abc", ""), split("", ","), split("a,,b", ",")]')
    add("b-replace", 'x := [replace("a.b.c", ".", "/"), replace("aaa", "a", "bb")]')
    add("b-trim", 'x := [trim("xxaxx", "x"), trim_left("xxaxx", "x"), trim_right("xxaxx", "x"), trim_prefix("abc", "ab"), trim_suffix("abc", "bc"), trim_space("  a b \\n")]')
    add("b-sprintf", 'x := sprintf("%s is %d, %v %v %v", ["a", 5, [1, "b"], {"k": 1}, 1.5])')
    add("b-sprintf-set", 'x := sprintf("%v|%v|%v", [{1, 2}, true, null])')
    add("b-indexof", 'x := [indexof("abcb", "b"), indexof("abc", "z"), indexof("héllo", "l")]')
    add("b-substring", 'x := [substring("abcdef", 1, 3), substring("abc", 1, -1), substring("abc", 5, 1), substring("héllo", 1, 2)]')
    add("b-substring-neg", 'x := substring("abc", -1, 2)')
    add("b-format-int", "x := [format_int(255, 16), format_int(10, 10), format_int(3.9, 10)]")
    add("b-format-int-neg", "x := format_int(-17, 16)", expect={"value": "-11"},
        reason="OPA writes negative numbers with a sign; regopy in two's complement")
    add("b-format-int-2", "x := format_int(8, 2)", expect={"value": "1000"}, reason="regopy formats 8 in base 2 as \"00\"")
    add("b-to-number", 'x := [to_number("42"), to_number("1.5"), to_number(true), to_number(null), to_number(7)]')
    add("b-to-number-bad", 'x := to_number("abc")')
    add("b-regex", 'x := [regex.match("^a.c$", "abc"), regex.match("[0-9]+", "ab"), regex.match("b", "abc")]')
    add("b-glob", 'x := [glob.match("*.b", ["."], "a.b"), glob.match("*.b", ["."], "a.c.b"), glob.match("**.b", ["."], "a.c.b"), glob.match("a?c", [], "abc"), glob.match("{x,y}.*", ["."], "y.z"), glob.match("[ab]c", [], "bc")]')
    add("b-glob-default-delim", 'x := [glob.match("a*", [], "a.b"), glob.match("a*", null, "a.b")]')
    add("b-glob-slash", 'x := [glob.match("/tmp/*", ["/"], "/tmp/a"), glob.match("/tmp/*", ["/"], "/tmp/a/b"), glob.match("/tmp/**", ["/"], "/tmp/a/b")]')
    add("b-array", "x := [array.concat([1], [2, 3]), array.slice([1, 2, 3, 4], 1, 3), array.slice([1, 2], -1, 10), array.slice([1, 2], 2, 1)]")
    add("b-object-get", 'x := [object.get({"a": 1}, "a", 0), object.get({"a": 1}, "b", 0), object.get({"a": {"b": 2}}, ["a", "b"], 0), object.get({"a": {"b": 2}}, ["a", "c"], "d")]')
    add("b-object-keys", 'x := object.keys({"a": 1, "b": 2})')
    add("b-object-union", 'x := object.union({"a": 1, "b": {"c": 1}}, {"b": 2, "e": 3})')
    add("b-object-union-nested", 'x := object.union({"a": 1, "b": {"c": 1}}, {"b": {"d": 2}, "e": 3})',
        expect={"value": {"a": 1, "b": {"c": 1, "d": 2}, "e": 3}},
        reason="OPA merges nested objects recursively; regopy replaces them")
    add("b-object-remove", 'x := [object.remove({"a": 1, "b": 2}, ["a"]), object.remove({"a": 1, "b": 2}, {"b"})]')
    add("b-union-intersection", "x := [union({{1, 2}, {3}}), intersection({{1, 2}, {2, 3}})]")
    add("b-types", 'x := [is_string("a"), is_number(1), is_boolean(false), is_array([]), is_set(set()), is_object({}), is_null(null)]')
    add("b-type-false", 'x := is_string(1)')
    add("b-type-name", 'x := [type_name(1), type_name("a"), type_name([]), type_name({}), type_name(set()), type_name(null), type_name(true)]')
    add("b-time-now", "x := time.now_ns() > 1700000000000000000")
    add("b-time-parse-offset", 'x := time.parse_rfc3339_ns("2026-03-07T22:15:00+02:00")')
    add("b-time-parse-z", 'x := time.parse_rfc3339_ns("2026-03-07T22:15:00Z")', expect={"value": 1772921700000000000},
        reason="regopy returns undefined for times ending in Z")
    add("b-time-parse-frac", 'x := time.parse_rfc3339_ns("2026-03-07T22:15:00.5-01:30")')
    add("b-time-parse-bad", 'x := time.parse_rfc3339_ns("yesterday")')
    add("b-time-date", "x := [time.date(0), time.date(1772921700000000000), time.clock(1772921700000000000), time.weekday(1772921700000000000)]")
    add("b-time-date-tz", 'x := time.date([1772921700000000000, "UTC"])')
    add("b-time-add-date", "x := [time.add_date(1772921700000000000, 0, 1, 0), time.add_date(1772921700000000000, 1, -3, 40)]")
    add("b-time-leap", 'x := time.date(time.add_date(time.parse_rfc3339_ns("2024-01-31T00:00:00+00:00"), 0, 1, 0))')
    add("b-json", 'x := [json.marshal({"b": [1, "x"], "a": null}), json.unmarshal("{\\"a\\": [1, 2.5]}")]')
    add("b-json-bad", 'x := json.unmarshal("{bad")')
    add("b-base64", 'x := [base64.encode("hello"), base64.decode("aGVsbG8=")]')
    add("b-replace-n", 'x := strings.replace_n({"a": "1", "b": "2"}, "abcab")')
    add("b-units", 'x := [units.parse_bytes("10KB"), units.parse_bytes("1KiB"), units.parse_bytes("5"), units.parse_bytes("2MiB")]')
    add("b-abs-round", "x := [abs(-3), round(2.5), ceil(1.2), floor(-1.2)]")
    # net.cidr_contains: not implemented in the reference; expectations computed by hand from OPA's docs
    cidr_reason = "regopy does not implement net.cidr_contains (hand-computed OPA answer)"
    add("b-cidr-ip-in", 'x := net.cidr_contains("10.0.0.0/8", "10.1.2.3")', expect={"value": True}, reason=cidr_reason)
    add("b-cidr-ip-out", 'x := net.cidr_contains("10.0.0.0/8", "11.1.2.3")', expect={"value": False}, reason=cidr_reason)
    add("b-cidr-cidr-in", 'x := net.cidr_contains("10.0.0.0/8", "10.2.0.0/16")', expect={"value": True}, reason=cidr_reason)
    add("b-cidr-cidr-wider", 'x := net.cidr_contains("10.1.0.0/16", "10.0.0.0/8")', expect={"value": False}, reason=cidr_reason)
    add("b-cidr-v6", 'x := net.cidr_contains("2001:db8::/32", "2001:db8:1::1")', expect={"value": True}, reason=cidr_reason)
    add("b-cidr-mixed", 'x := net.cidr_contains("10.0.0.0/8", "2001:db8::1")', expect={"value": False}, reason=cidr_reason)
    add("b-cidr-bad", 'x := net.cidr_contains("10.0.0.0/99", "10.0.0.1")', expect={"undefined": True}, reason=cidr_reason)
    add("b-cidr-peer", 'x if net.cidr_contains("192.168.0.0/16", input.context.peer)', {"context": {"peer": "192.168.7.7"}},
        expect={"value": True}, reason=cidr_reason)
    # imports, packages, data
    lib = "package lib.util\nimport rego.v1\nis_admin(p) if \"admins\" in p.groups\nlevel := 3\n"
    add("import-data-alias", "", {"p": {"groups": ["admins"]}}, "data.app.x", modules=[
        lib, "package app\nimport rego.v1\nimport data.lib.util as u\nx := [u.is_admin(input.p), u.level]"])
    add("import-data-plain", "", None, "data.app.x", modules=[
        lib, "package app\nimport rego.v1\nimport data.lib.util\nx := util.level + 1"])
    add("import-input-alias", "", {"principal": {"id": "a"}}, "data.app.x", modules=[
        "package app\nimport rego.v1\nimport input.principal as p\nx := p.id"])
    add("future-keywords", "", {"a": [1]}, "data.app.x", modules=[
        "package app\nimport future.keywords.if\nimport future.keywords.in\nx if 1 in input.a"])
    add("data-full-call", "", None, "data.app.x", modules=[lib, "package app\nimport rego.v1\nx := data.lib.util.is_admin({\"groups\": [\"admins\"]})"])
    add("data-subtree", "", None, "data.lib", modules=[lib])
    add("data-merged", "", None, "data.lib", {"lib": {"other": 1}}, modules=[lib])
    add("two-modules-one-package", "", {"a": 1}, "data.app", modules=[
        "package app\nimport rego.v1\nx if input.a == 1", "package app\nimport rego.v1\ny := x"])
    add("raw-string", "x := `a\\b`")
    add("comments", "# leading\nx := 1 # trailing\n# end\n")
    # more semantics
    add("reorder-safety", "x := y if { y > 1; y = input.a }", {"a": 5})
    add("some-i-ref", 'x := [i | some i; input.a[i].b == "x"]', {"a": [{"b": "x"}, {"b": "y"}, {"b": "x"}]})
    add("some-pattern", "x contains a + b if { some [a, b] in input.pairs }", {"pairs": [[1, 2], [3, 4]]})
    add("literal-index", 'x := [{"a": 1}["a"], [5, 6][1], {1, 2}[2]]')
    add("string-escapes", 'x := ["a\\"b", "tab\\tnl\\n", "\\u00e9"]')
    add("count-empty", "x := count(input.a) == 0", {"a": []})
    add("startswith-type", "x := startswith(input.a, \"a\")", {"a": 1})
    add("concat-type", 'x := concat(",", [1, 2])')
    add("upper-sharp-s", 'x := upper("straße")')
    add("upper-unicode", 'x := [upper("é"), lower("É")]', expect={"value": ["É", "é"]},
        reason="OPA maps case for all of Unicode; regopy only for ASCII")
    add("regex-invalid", 'x := regex.match("(", "a")')
    add("json-marshal-set", "x := json.marshal({2, 1})")
    add("object-get-nonobj", 'x := object.get([1], 0, "d")')
    add("array-slice-neg", "x := array.slice([1, 2, 3], -2, 2)")
    add("base64-bad", 'x := base64.decode("%%%")', expect={"undefined": True},
        reason="a built-in error is undefined in OPA's default (non-strict) mode; regopy reports an error")
    add("add-date-overflow", 'x := time.date(time.add_date(time.parse_rfc3339_ns("2025-01-31T10:00:00+00:00"), 0, 1, 0))')
    add("to-number-exp", 'x := to_number("1e3")')
    add("rem-zero", "x := 5 % 0")
    add("complete-multi-iter", "x := input.a[_]", {"a": [1, 2]})
    add("complete-multi-iter-same", "x := input.a[_]", {"a": [4, 4]})
    add("not-fn", 'f(a) if a > 1\nx if not f(input.v)', {"v": 0})
    add("not-partial-set", 's contains v if { some v in input.a }\nx if not s[3]', {"a": [1, 2]})
    add("fn-with-else-chain", 'f(a) := "x" if a == 1\nelse := "y" if a == 2\nelse := "z"\nx := [f(1), f(2), f(3)]')
    add("every-object", 'x if { every k, v in input.o { v == count(k) } }', {"o": {"a": 1, "bb": 2}})
    add("every-object-false", 'x if { every k, v in input.o { v == count(k) } }', {"o": {"a": 1, "bb": 3}})
    add("with-in-function", 'g := input.a\nf(v) := r if { r := g with input.a as v }\nx := f(9)', {"a": 1})
    add("data-rule-iter", "p := {\"k\": 1}\nq := 2\nx := [k | data.t.p[k]]")
    add("nested-compr-outer-var", "x := [[a, b] | some a in input.a; b := [c | some c in input.b; c > a]]", {"a": [1, 2], "b": [1, 2, 3]})
    add("set-compr-iter", "s := {a | some a in input.a}\nx := [v | s[v]]", {"a": ["b", "a", "b"]},
        expect={"value": ["a", "b"]}, reason=SETORDER)
    add("obj-keys-number", 'x contains k if { some k, _ in {"b": 1, "a": 2} }')
    add("assign-obj-pattern", 'x := v if { {"a": v} := input.o }', {"o": {"a": 7}})
    add("unify-deep", "x := [a, b] if { [a, [b, 3]] = [1, [2, 3]] }")
    add("arith-int-float", "x := [3 / 1.5, 2 * 0.5, 10 - 2.5]")
    add("neq-types", 'x := [1 != "1", [1] != [1]]')
    add("in-precedence", 'x := 1 + 1 in {2}')
    add("chained-refs", 'x := input.a[input.i][input.j]', {"a": [[1, 2], [3, 4]], "i": 1, "j": 0})
    add("ref-var-key", 'x := {v | v := input.o[k]; startswith(k, "a")}', {"o": {"ab": 1, "b": 2, "ac": 3}})
    add("time-clock-weekday", 'x := [time.clock(time.parse_rfc3339_ns("2026-11-26T23:59:58+00:00")), time.weekday(time.parse_rfc3339_ns("2026-11-26T23:59:58+00:00"))]')
    # errors at load
    add("parse-error", "x := ")
    add("parse-unsupported-head", "a.b.c := 1", expect={"error": True}, reason="rule heads with dotted names are outside the supported subset: a load error by design")
    add("parse-unknown-fn", "x := nosuch(1)")
    add("parse-bad-char", "x := 1 ^ 2")
    add("unsafe-var", "x := y", expect={"error": True}, reason="regopy gives undefined for an unsafe variable; OPA rejects the module")
    return cases


def all_cases() -> list:
    return hand() + generated()


if __name__ == "__main__":
    for c in all_cases()[:3]:
        print(json.dumps(c))
