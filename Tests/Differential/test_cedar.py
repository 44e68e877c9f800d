"""Differential test: mcpg's Cedar engine (cedar-eval) against cedarpy 4.12.2 (the official Rust engine).

Each request is decided by both; the decision (Allow/Deny/NoDecision), the determining policy ids and the ids
of the policies that errored must agree exactly. Policy ids are positional (`policy0`, …) in both.
"""
import json
import re

import pytest

import cedarpy  # noqa: E402  (a missing reference engine fails the suite: a skipped differential test proves nothing)

from cedar_cases import World, generated_cases, mcp_cases, mutated_cases, uid  # noqa: E402

ERR_ID = re.compile(r"error while evaluating policy `([^`]+)`")

# Known differences where mcpg follows Cedar's documented semantics instead of the reference engine: none so far.
EXCEPTIONS: dict = {}


def reference(case):
    """cedarpy's answers for every request of `case`, normalised to the eval tool's shape."""
    out = []
    try:
        results = cedarpy.is_authorized_batch(case["requests"], case["policies"], json.dumps(case["entities"]))
    except Exception as e:  # noqa: BLE001 - an exception is cedarpy's way of saying "no decision" here
        return [{"decision": "NoDecision", "reasons": [], "errors": [], "why": str(e)} for _ in case["requests"]]
    for r in results:
        d = r.decision.value
        if d == "NoDecision":
            out.append({"decision": d, "reasons": [], "errors": [], "why": r.diagnostics.errors})
            continue
        errs = []
        for m in r.diagnostics.errors:
            found = ERR_ID.search(m)
            errs.append(found.group(1) if found else m)
        out.append({"decision": d, "reasons": sorted(r.diagnostics.reasons), "errors": sorted(errs)})
    return out


def mine(answer):
    return [{"decision": a["decision"], "reasons": sorted(a["reasons"]), "errors": sorted(a["errors"])}
            for a in answer["results"]]


def key(a):
    return (a["decision"], a["reasons"], a["errors"])


def check(eval_tool, cases, label):
    answers = eval_tool("cedar-eval", cases)
    mismatches = []
    total = 0
    for case, ans in zip(cases, answers):
        assert "results" in ans, f"eval tool failed on a case: {ans}"
        want = reference(case)
        got = mine(ans)
        for i, (w, g) in enumerate(zip(want, got)):
            total += 1
            if key(w) != key(g) and (case["policies"], i) not in EXCEPTIONS:
                mismatches.append((case, i, w, ans["results"][i]))
    if mismatches:
        lines = [f"{len(mismatches)} of {total} {label} requests disagree; first ones:"]
        for case, i, w, g in mismatches[:5]:
            lines.append("--- policies:\n" + case["policies"])
            lines.append("request: " + json.dumps(case["requests"][i]))
            lines.append("entities: " + json.dumps(case["entities"])[:3000])
            lines.append("cedarpy: " + json.dumps(w))
            lines.append("mcpg:    " + json.dumps(g))
        pytest.fail("\n".join(lines))
    return total


def test_generated(eval_tool):
    cases = generated_cases(seed=20261126, count=400)
    n = check(eval_tool, cases, "generated")
    print(f"cedar generated: {len(cases)} policy sets, {n} requests agree")


def test_gateway_shaped(eval_tool):
    cases = mcp_cases(seed=3, count=60)
    n = check(eval_tool, cases, "gateway-shaped")
    print(f"cedar gateway-shaped: {len(cases)} policy sets, {n} requests agree")


def test_mutated(eval_tool):
    cases = mutated_cases(seed=7, count=300)
    n = check(eval_tool, cases, "mutated")
    print(f"cedar mutated: {len(cases)} policy sets, {n} requests agree")


# Hand-written policies, one per feature and error path. Each runs against a fixed world and requests.
HANDWRITTEN = [
    # scope
    'permit(principal, action, resource);',
    'permit(principal == User::"alice", action, resource);',
    'permit(principal in Group::"all", action, resource);',
    'permit(principal is User, action, resource);',
    'permit(principal is User in Group::"eng", action, resource);',
    'permit(principal is Group, action, resource);',
    'permit(principal, action == Action::"read", resource);',
    'permit(principal, action in Action::"admin", resource);',
    'permit(principal, action in [Action::"read", Action::"write"], resource);',
    'permit(principal, action in [], resource);',
    'permit(principal, action, resource == Doc::"d1");',
    'permit(principal, action, resource in Folder::"root");',
    'permit(principal, action, resource is Doc in Folder::"shared");',
    'permit(principal, action, resource,);',
    'permit(principal == ?principal, action, resource);',
    'permit(principal, action, resource in ?resource);',
    'permit(principal, action in NS::Action::"x", resource);',
    # effects and combinations
    'permit(principal, action, resource); forbid(principal == User::"bob", action, resource);',
    'forbid(principal, action, resource) unless { principal in Group::"eng" }; permit(principal, action, resource);',
    '@id("a") permit(principal, action, resource); @id("b") permit(principal in Group::"eng", action, resource);',
    '@id permit(principal, action, resource);',
    '@if("x") @principal("y") permit(principal, action, resource);',
    'forbid(principal, action, resource);',
    '',
    '// only a comment\n',
    'permit(principal, action, resource) when { true } when { context.n > 0 } unless { context.flag };',
    # literals and arithmetic
    'permit(principal, action, resource) when { 9223372036854775807 > 0 };',
    'permit(principal, action, resource) when { -9223372036854775808 < 0 };',
    'permit(principal, action, resource) when { 9223372036854775808 > 0 };',
    'permit(principal, action, resource) when { --9223372036854775808 < 0 };',
    'permit(principal, action, resource) when { -(-9223372036854775807 - 1) < 0 };',
    'permit(principal, action, resource) when { 9223372036854775807 + 1 > 0 };',
    'permit(principal, action, resource) when { -9223372036854775807 - 2 < 0 };',
    'permit(principal, action, resource) when { 4611686018427387904 * 2 > 0 };',
    'permit(principal, action, resource) when { 3 * -4 == -12 && 2 - 5 == -3 };',
    'permit(principal, action, resource) when { ----5 == 5 };',
    'permit(principal, action, resource) when { -----5 == -5 };',
    'permit(principal, action, resource) when { !!!!true };',
    'permit(principal, action, resource) when { !!!!!true };',
    'permit(principal, action, resource) when { 10 / 2 == 5 };',
    'permit(principal, action, resource) when { 10 % 3 == 1 };',
    'permit(principal, action, resource) when { 1 + "a" == 2 };',
    'permit(principal, action, resource) when { 1 < 2 < 3 };',
    'permit(principal, action, resource) when { (1 < 2) == true };',
    'permit(principal, action, resource) when { "a" < "b" };',
    'permit(principal, action, resource) when { 1 = 1 };',
    # strings and like
    'permit(principal, action, resource) when { "a\\"b" == "a\\u{22}b" };',
    'permit(principal, action, resource) when { "\\x41" == "A" && "\\t" != "t" && "\\0" != "" };',
    'permit(principal, action, resource) when { "\\q" == "q" };',
    'permit(principal, action, resource) when { "\\xff" == "" };',
    'permit(principal, action, resource) when { "multi\nline" like "multi*line" };',
    'permit(principal, action, resource) when { "a*b" like "a\\*b" && !("axb" like "a\\*b") };',
    'permit(principal, action, resource) when { "abc" like "*" && "" like "*" && "abc" like "a*c" };',
    'permit(principal, action, resource) when { principal.name like "al*" };',
    'permit(principal, action, resource) when { 1 like "1" };',
    'permit(principal, action, resource) when { "x" like principal.name };',
    'permit(principal, action, resource) when { "été" like "ét*" };',
    # sets and records
    'permit(principal, action, resource) when { [1, 2, 2] == [2, 1] };',
    'permit(principal, action, resource) when { [1, [2]].contains([2]) };',
    'permit(principal, action, resource) when { [1, 2, 3].containsAll([1, 3]) && [1].containsAny([3, 1]) };',
    'permit(principal, action, resource) when { [].isEmpty() && ![1].isEmpty() };',
    'permit(principal, action, resource) when { 1.contains(1) };',
    'permit(principal, action, resource) when { [1].containsAll(1) };',
    'permit(principal, action, resource) when { [1].isEmpty(1) };',
    'permit(principal, action, resource) when { [1].contains() };',
    'permit(principal, action, resource) when { {a: 1, b: {c: 2}} == {b: {c: 2}, a: 1} };',
    'permit(principal, action, resource) when { {a: 1}.a == 1 && {"b c": 2}["b c"] == 2 };',
    'permit(principal, action, resource) when { {a: 1}.b == 1 };',
    'permit(principal, action, resource) when { {a: 1, a: 2}.a == 1 };',
    'permit(principal, action, resource) when { {a: 1} has a && !({a: 1} has b) && {"x y": 1} has "x y" };',
    'permit(principal, action, resource) when { {if: 1}.if == 1 };',
    'permit(principal, action, resource) when { {principal: 1}.principal == 1 };',
    'permit(principal, action, resource) when { [1, 2,].contains(2) };',
    'permit(principal, action, resource) when { [,] == [] };',
    # entities, attributes, has, in, is
    'permit(principal, action, resource) when { principal.age >= 18 };',
    'permit(principal, action, resource) when { principal has age && principal.age >= 18 };',
    'permit(principal, action, resource) when { principal has info.deep.x && principal.info.deep.x >= 0 };',
    'permit(principal, action, resource) when { principal has info.nope };',
    'permit(principal, action, resource) when { principal["age"] > 0 };',
    'permit(principal, action, resource) when { principal.manager.name == "alice" };',
    'permit(principal, action, resource) when { resource.owner == principal };',
    'permit(principal, action, resource) when { User::"nobody".age > 1 };',
    'permit(principal, action, resource) when { User::"nobody" has age };',
    'permit(principal, action, resource) when { User::"nobody" in Group::"eng" };',
    'permit(principal, action, resource) when { Group::"admins" in Group::"all" };',
    'permit(principal, action, resource) when { Group::"all" in Group::"admins" };',
    'permit(principal, action, resource) when { principal in [Group::"ops", Group::"interns"] };',
    'permit(principal, action, resource) when { principal in [principal, 1] };',
    'permit(principal, action, resource) when { principal in "x" };',
    'permit(principal, action, resource) when { 1 in [1] };',
    'permit(principal, action, resource) when { principal is User && !(principal is Group) };',
    'permit(principal, action, resource) when { 1 is User };',
    'permit(principal, action, resource) when { principal is NS::User };',
    'permit(principal, action, resource) when { A::B::"x" == A::B::"x" && A::B::"x" != A::"x" };',
    'permit(principal, action, resource) when { action in Action::"admin" };',
    'permit(principal, action, resource) when { context.who in Group::"eng" };',
    'permit(principal, action, resource) when { context has who && context.who.age > 1 };',
    'permit(principal, action, resource) when { principal.hasTag("env") && principal.getTag("env") == "prod" };',
    'permit(principal, action, resource) when { principal.getTag("nope") == 1 };',
    'permit(principal, action, resource) when { User::"nobody".hasTag("env") };',
    'permit(principal, action, resource) when { User::"nobody".getTag("env") == "x" };',
    'permit(principal, action, resource) when { principal.getTag(1) == "x" };',
    'permit(principal, action, resource) when { 1.hasTag("x") };',
    # if-then-else and short circuit
    'permit(principal, action, resource) when { if principal has age then principal.age > 20 else false };',
    'permit(principal, action, resource) when { if 1 then true else false };',
    'permit(principal, action, resource) when { false && (1 + "a" == 1) };',
    'permit(principal, action, resource) when { true || (1 + "a" == 1) };',
    'permit(principal, action, resource) when { true && 1 };',
    'permit(principal, action, resource) when { false || "x" };',
    'permit(principal, action, resource) when { 1 };',
    'permit(principal, action, resource) when { if true then 1 else 2 } ;',
    'permit(principal, action, resource) when { 1 + if true then 1 else 2 == 2 };',
    # extensions
    'permit(principal, action, resource) when { ip("10.0.0.1").isInRange(ip("10.0.0.0/8")) };',
    'permit(principal, action, resource) when { ip("10.0.0.1").isIpv4() && ip("::1").isIpv6() && ip("::1").isLoopback() };',
    'permit(principal, action, resource) when { ip("224.1.1.1").isMulticast() && ip("ff02::1").isMulticast() };',
    'permit(principal, action, resource) when { ip("127.0.0.1/4").isLoopback() };',
    'permit(principal, action, resource) when { ip("10.0.0.1") == ip("10.0.0.1/32") };',
    'permit(principal, action, resource) when { ip("10.0.0.0/24") == ip("10.0.0.1/24") };',
    'permit(principal, action, resource) when { ip("::ffff:1.2.3.4").isIpv6() };',
    'permit(principal, action, resource) when { ip("1.2.3.4", "x").isIpv4() };',
    'permit(principal, action, resource) when { ip(1).isIpv4() };',
    'permit(principal, action, resource) when { isIpv4(ip("1.2.3.4")) };',
    'permit(principal, action, resource) when { "1.2.3.4".ip() };',
    'permit(principal, action, resource) when { ip("1.2.3.4").isInRange("1.0.0.0/8") };',
    'permit(principal, action, resource) when { ip("1.2.3.4").isInRange(ip("::/0")) };',
    'permit(principal, action, resource) when { foo("x") };',
    'permit(principal, action, resource) when { principal.foo() };',
    'permit(principal, action, resource) when { decimal("1.5").lessThan(decimal("2.25")) };',
    'permit(principal, action, resource) when { decimal("1.5") == decimal("1.50") };',
    'permit(principal, action, resource) when { decimal("1.5") < decimal("2.0") };',
    'permit(principal, action, resource) when { decimal("1.23456").lessThan(decimal("2.0")) };',
    'permit(principal, action, resource) when { decimal("-0.5").greaterThanOrEqual(decimal("-0.5")) };',
    'permit(principal, action, resource) when { decimal("1.5").lessThan(1) };',
    'permit(principal, action, resource) when { datetime("2024-01-01") < datetime("2024-01-01T00:00:01Z") };',
    'permit(principal, action, resource) when { datetime("2024-06-15T12:00:00+0200") == datetime("2024-06-15T10:00:00Z") };',
    'permit(principal, action, resource) when { datetime("2024-01-01").offset(duration("1d")) == datetime("2024-01-02") };',
    'permit(principal, action, resource) when { datetime("2024-01-02").durationSince(datetime("2024-01-01")) == duration("24h") };',
    'permit(principal, action, resource) when { datetime("1969-12-31T23:00:00Z").toTime() == duration("23h") };',
    'permit(principal, action, resource) when { datetime("1969-12-31T23:00:00Z").toDate() == datetime("1969-12-31") };',
    'permit(principal, action, resource) when { duration("-1d2h").toHours() == -26 };',
    'permit(principal, action, resource) when { duration("1m1h").toHours() == 1 };',
    'permit(principal, action, resource) when { datetime("2024-02-30") < datetime("2025-01-01") };',
    'permit(principal, action, resource) when { datetime("2024-01-01") < duration("1h") };',
    # syntax errors
    'permit(principal, action, resource)',
    'permit(principal, action);',
    'permit(principal, action, resource, context);',
    'permit(action, principal, resource);',
    'allow(principal, action, resource);',
    'permit(principal, action, resource) where { true };',
    'permit(principal, action, resource) when { };',
    'permit(principal, action, resource) when { true ;',
    'permit(principal, action == User::"x", resource);',
    'permit(principal, action is Action, resource);',
    'permit(principal == User::"a" , action, resource) when { principal == ?principal };',
    'permit(principal == ?resource, action, resource);',
    'permit(principal is User == User::"a", action, resource);',
    'permit(principal in Group::"a" is User, action, resource);',
    'permit(principal = User::"a", action, resource);',
    'permit(principal > User::"a", action, resource);',
    'permit(principal: User, action, resource);',
    'permit(principal, action, resource) when { foo };',
    'permit(principal, action, resource) when { User };',
    'permit(principal, action, resource) when { principal.if == 1 };',
    'permit(principal, action, resource) when { principal has true };',
    'permit(principal, action, resource) when { principal has 1 };',
    'permit(principal, action, resource) when { principal like 1 };',
    'permit(principal, action, resource) when { principal is "User" };',
    'permit(principal, action, resource) when { principal is User::"a" };',
    'permit(principal, action, resource) when { principal[age] > 1 };',
    'permit(principal, action, resource) when { principal("x") };',
    'permit(principal, action, resource) when { (1)(2) };',
    'permit(principal, action, resource) when { User.foo };',
    'permit(principal, action, resource) when { in::"x" == 1 };',
    'permit(principal, action, resource) when { __cedar::"x" == 1 };',
    'permit(principal, action, resource) when { "unterminated };',
    'permit(principal, action, resource) when { 1 # 2 };',
    '@id("a") @id("b") permit(principal, action, resource);',
    '@id(1) permit(principal, action, resource);',
    'permit(principal, action, resource) when { User::{id: "x"} == 1 };',
    'permit(principal, action, resource) when { ?principal == 1 };',
    'permit(principal == ?foo, action, resource);',
    'permit(principal, action, resource);;',
]


# Edge cases of the grammar, escapes and extension literals.
HANDWRITTEN += [
 'permit(principal, action in (Action::"read"), resource);',
 'permit(principal, action == (Action::"read"), resource);',
 'permit(principal == (User::"alice"), action, resource);',
 'permit(principal, action, resource) when { principal has if };',
 'permit(principal, action, resource) when { principal has then };',
 'permit(principal, action, resource) when { context.principal == 1 };',
 '@id("a\\nb") permit(principal, action, resource);',
 '@id("a") ',
 'permit(principal, action, resource) when { -(1) == -1 && 1---1 == 2 && - 1 == -1 };',
 'permit(principal, action, resource) when { if true then true else false && false };',
 'permit(principal, action, resource) when { "\\u{1F600}" like "*" && "\\u{1_F600}" == "\\u{1F600}" };',
 'permit(principal, action, resource) when { "\\u{110000}" == "" };',
 'permit(principal, action, resource) when { "\\u{D800}" == "" };',
 'permit(principal, action, resource) when { "\\u{}" == "" };',
 'permit(principal, action, resource) when { "\\u{1234567}" == "" };',
 'permit(principal, action, resource) when { "\\x7F" == "\\x7f" };',
 'permit(principal, action, resource) when { "\\x80" == "" };',
 'permit(principal, action, resource) when { "a\\\nb" == "ab" };',
 'permit(principal, action, resource) when { "\\\'" == "\'" };',
 'permit(principal, action, resource) when { User::"" == User::"" };',
 'permit(principal, action, resource)\r\nwhen { true };// c\r',
 'permit(principal is User in Group::"eng", action, resource is Doc);',
 'permit(principal, action, resource) when { principal is User in [Group::"eng"] };',
 'permit(principal, action, resource) when { principal is User in 1 };',
 'permit(principal, action, resource) when { principal.tags.contains(1) == false };',
 'permit(principal, action, resource) when { [ip("1.2.3.4")].contains(ip("1.2.3.4/32")) };',
 'permit(principal, action, resource) when { decimal("1.0") == decimal("1.0000") };',
 'permit(principal, action, resource) when { {a: 1} == {a: 1, b: 2} };',
 'permit(principal, action, resource) when { principal["tags"].isEmpty() || true };',
 'permit(principal, action, resource) when { principal.name.like("x") };',
 'permit(principal, action, resource) when { principal.contains(1) };',
 'permit(principal, action, resource) when { ip("1.2.3.4").contains(1) };',
 'permit(principal, action, resource) when { ip("1.2.3.4").isInRange(ip("1.2.3.4"), 1) };',
 'permit(principal, action, resource) when { ip("1.2.3.4").isLoopback(1) };',
 'permit(principal, action, resource) when { decimal("1.0").lessThan() };',
 'permit(principal, action, resource) when { datetime("2024-01-01T00:00:00.1Z") == datetime("2024-01-01") };',
 'permit(principal, action, resource) when { datetime("2024-01-01T00:00:60Z") == datetime("2024-01-01") };',
 'permit(principal, action, resource) when { datetime("0000-01-01") < datetime("2024-01-01") };',
 'permit(principal, action, resource) when { datetime("9999-12-31T23:59:59.999-2359") > datetime("2024-01-01") };',
 'permit(principal, action, resource) when { duration("1d1d") == duration("2d") };',
 'permit(principal, action, resource) when { duration("-9223372036854775808ms").toMilliseconds() < 0 };',
 'permit(principal, action, resource) when { duration("9223372036854775808ms").toMilliseconds() < 0 };',
 'permit(principal, action, resource) when { duration("-0ms") == duration("0ms") };',
 'permit(principal, action, resource) when { duration("1h").offset(duration("1h")) == 1 };',
 'permit(principal, action, resource) when { datetime("1970-01-01").toTime() == duration("0ms") && datetime("1969-12-31T00:00:00Z").toTime() == duration("0ms") };',
 'permit(principal, action, resource) when { ip("10.0.0.1/08").isIpv4() };',
 'permit(principal, action, resource) when { ip("::1/128").isLoopback() && !ip("::1/127").isLoopback() };',
 'permit(principal, action, resource) when { ip("1::1:2:3:4:5:6:7").isIpv6() };',
 'permit(principal, action, resource) when { ip("::1:2:3:4:5:6:7").isIpv6() };',
 'permit(principal, action, resource) when { ip("1:2:3:4:5:6:7:8:9").isIpv6() };',
 'permit(principal, action, resource) when { ip("FFFF::").isMulticast() };',
 'permit(principal, action, resource) when { ip(" 1.2.3.4").isIpv4() };',
 'permit(principal, action, resource) when { ip("0.0.0.0/0").isInRange(ip("1.2.3.4/0")) };',
 'permit(principal, action, resource) when { ip("1.2.3.4").isInRange(ip("1.2.3.0/24")) && ip("1.2.3.0/24").isInRange(ip("1.2.3.4")) };',
 'permit(principal, action, resource) when { principal == principal.manager.manager };',
 'permit(principal, action, resource) when { action.x == 1 };',
 'permit(principal, action, resource) when { context.ents.contains(Group::"eng") };',
 'permit(principal, action, resource) when { principal in principal };',
 'permit(principal, action, resource) when { Action::"read" in [Action::"readAll", 1] };',
 'permit(principal, action, resource) when { [] in [] };',
 'permit ( principal , action , resource ) ; forbid(principal,action,resource) when {principal has "" };',
 'permit(principal, action, resource) when { {"": 1} has "" };',
 'permit(principal, action, resource) when { principal has age.x };',
 'permit(principal, action, resource) when { principal has "a".b };',
 'permit(principal, action, resource) when { principal has a["b"] };',
 'permit(principal, action, resource) when { principal has age && principal.age has x };',
 'permit(principal, action, resource) when { 1 has x };',
 'permit(principal, action, resource) when { principal.age.x == 1 };',
 'permit(principal, action, resource) when { true.foo };',
 'permit(principal, action, resource) when { "a".foo };',
 'permit(principal, action, resource) when { "a"["b"] };',
 'permit(principal, action, resource) when { 1.foo };',
 'permit(principal, action, resource) when { [1].foo };',
 'permit(principal, action, resource) when { principal.manager has manager };',
    'permit(principal, action in ([Action::"read", (Action::"write")]), resource);',
    'permit(principal, action in [[Action::"read"]], resource);',
    'permit(principal == (?principal), action, resource);',
    'permit(principal in [User::"alice"], action, resource);',
    'permit(principal, action == [Action::"read"], resource);',
    'permit(principal, action in ?resource, resource);',
]

def handwritten_cases():
    import random
    rng = random.Random(99)
    world = World(rng)
    reqs = [
        {"principal": uid("User", u), "action": uid("Action", a), "resource": uid("Doc", d),
         "context": {"n": 3, "flag": f, "who": {"__entity": uid("User", "alice")}, "s": "x"}}
        for u, a, d, f in [("alice", "read", "d1", True), ("bob", "write", "d2", False), ("eve", "admin", "d3", True),
                           ("zed", "list", "missing", False), ("carol", "delete", "secret", True)]
    ]
    reqs.append({"principal": uid("Group", "eng"), "action": uid("Action", "read"), "resource": uid("Folder", "root"),
                 "context": {}})
    return [{"policies": p, "entities": world.entities, "requests": reqs} for p in HANDWRITTEN]


def test_handwritten(eval_tool):
    cases = handwritten_cases()
    n = check(eval_tool, cases, "hand-written")
    print(f"cedar hand-written: {len(cases)} policy sets, {n} requests agree")


def test_data_errors(eval_tool):
    """Bad entity JSON and bad request values: no decision from either engine."""
    base = World(__import__("random").Random(5)).entities
    req = {"principal": uid("User", "alice"), "action": uid("Action", "read"), "resource": uid("Doc", "d1"),
           "context": {}}
    pol = "permit(principal, action, resource) when { context has x };"
    bad_entities = [
        base + [{"uid": uid("User", "x"), "attrs": {"a": 1.5}, "parents": []}],
        base + [{"uid": uid("User", "x"), "attrs": {"a": None}, "parents": []}],
        base + [{"uid": uid("User", "x"), "attrs": {"a": {"__extn": {"fn": "ip", "arg": "bad"}}}, "parents": []}],
        base + [{"uid": uid("User", "x"), "attrs": {"a": {"__extn": {"fn": "decimal", "arg": "1.23456"}}},
                 "parents": []}],
        base + [{"uid": uid("User", "x"), "attrs": {"a": {"__extn": {"fn": "nope", "arg": "1"}}}, "parents": []}],
        base + [{"uid": uid("User", "x"), "attrs": {"a": {"__entity": {"type": "Bad Type", "id": "x"}}},
                 "parents": []}],
        base + [{"uid": uid("User", "x"), "attrs": {"a": 1}, "parents": []},
                {"uid": uid("User", "x"), "attrs": {"a": 2}, "parents": []}],
        base + [{"uid": uid("User", "x"), "attrs": {"a": 1}, "parents": []},
                {"uid": uid("User", "x"), "attrs": {"a": 1}, "parents": []}],
        base + [{"uid": uid("User", "x"), "attrs": {"a": {"__extn": {"fn": "ip", "arg": "10.0.0.1"}},
                                                     "b": {"__entity": uid("User", "alice")},
                                                     "c": {"type": "User", "id": "alice"}}, "parents": []}],
        base + [{"uid": uid("User", "x"), "attrs": {}, "parents": [uid("User", "x")]}],
    ]
    cases = [{"policies": pol, "entities": e, "requests": [req]} for e in bad_entities]
    for ctx in [{"x": 1.5}, {"x": None}, {"x": [1, None]}, {"x": {"__extn": {"fn": "ip", "arg": "nope"}}},
                {"x": {"__entity": uid("User", "bob")}}, {"x": {"__extn": {"fn": "decimal", "arg": "2.5"}}},
                {"x": {"y": {"z": [1, 2, {"w": "v"}]}}}]:
        cases.append({"policies": pol, "entities": base, "requests": [dict(req, context=ctx)]})
    for p, a, r in [("User", "read", "Doc"), ("A::B", "read", "Doc"), ("Bad Type", "read", "Doc")]:
        cases.append({"policies": "permit(principal, action, resource);", "entities": base,
                      "requests": [{"principal": uid(p, "x"), "action": uid("Action", a), "resource": uid(r, "y"),
                                    "context": {}}]})
    n = check(eval_tool, cases, "data-error")
    print(f"cedar data errors: {len(cases)} cases, {n} requests agree")


def cedar_value(v):
    """The gateway's context/attribute conversion, for the reference side."""
    if isinstance(v, bool) or isinstance(v, int) or isinstance(v, str):
        return v
    if isinstance(v, float):
        text = repr(v)
        m = re.fullmatch(r"-?\d+\.(\d+)", text)
        if m and len(m.group(1)) <= 4 and abs(v) < 9e14:
            return {"__extn": {"fn": "decimal", "arg": text}}
        return text
    if isinstance(v, list):
        return [cedar_value(x) for x in v if x is not None]
    if isinstance(v, dict):
        return {k: cedar_value(x) for k, x in v.items() if x is not None}
    raise TypeError(v)


RESOURCE_TYPES = {"tool": "Tool", "prompt": "Prompt", "resource": "Resource", "resource_template": "ResourceTemplate"}


def gateway_reference(g):
    """What the plugin mapping should decide, computed by cedarpy over explicitly built entities."""
    p = g["principal"]
    attrs = {k: cedar_value(v) for k, v in p.get("attributes", {}).items() if v is not None}
    attrs.update({"id": p["id"], "groups": p["groups"]})
    if p.get("tenant") is not None:
        attrs["tenant"] = p["tenant"]
    p_ent = {"uid": uid("User", p["id"]), "attrs": attrs, "parents": [uid("Group", x) for x in p["groups"]]}
    out = []
    for qy in g["queries"]:
        rtype = RESOURCE_TYPES[qy["type"]]
        r_ent = {"uid": uid(rtype, qy["name"]), "attrs": {"name": qy["name"], "backend": qy["backend"]},
                 "parents": [uid("Backend", qy["backend"])]}
        req = {"principal": uid("User", p["id"]), "action": uid("Action", qy["action"]),
               "resource": uid(rtype, qy["name"]), "context": cedar_value(g["context"])}
        r = cedarpy.is_authorized(req, g["policies"], json.dumps(g["entities"] + [p_ent, r_ent]))
        errs = sorted(ERR_ID.search(m).group(1) for m in r.diagnostics.errors)
        reasons = sorted(r.diagnostics.reasons)
        if r.decision.value == "Allow":
            out.append(("allow", reasons))
        elif reasons or errs:
            out.append(("deny", sorted(reasons + [e + ": error" for e in errs])))
        else:
            out.append(("noMatch", []))
    return out


def gateway_cases(seed, count):
    import random
    from cedar_cases import MCP_BACKENDS, MCP_METHODS, MCP_TOOLS, mcp_cases, mcp_policies
    rng = random.Random(seed)
    base = mcp_cases(seed, 1)[0]["entities"][:7]
    cases = []
    for _ in range(count):
        groups = rng.sample(["eng", "ops", "contractors", "nobody"], rng.randint(0, 2))
        attributes = {"clearance": rng.randint(0, 3), "score": rng.choice([0.5, 1.5, 2.25, 1e-7, 3.14159]),
                      "dept": rng.choice(["rd", "hr"]), "gone": None, "list": [1, None, 2]}
        policies = mcp_policies(rng) + "\n" + rng.choice([
            'permit(principal, action, resource) when { principal.score.greaterThan(decimal("1.0")) };',
            'permit(principal, action, resource) when { principal.list.contains(2) && !(principal has gone) };',
            'forbid(principal, action, resource) when { context.ratio == "1e-07" };',
            'permit(principal, action, resource) when { principal.dept == "rd" && principal.clearance > 1 };',
        ])
        queries = [{"action": rng.choice(MCP_METHODS), "type": rng.choice(["tool", "tool", "prompt", "resource"]),
                    "name": rng.choice(MCP_TOOLS), "backend": rng.choice(MCP_BACKENDS)} for _ in range(8)]
        context = {"transport": rng.choice(["http", "stdio"]), "peer": rng.choice(["127.0.0.1", "10.2.3.4"]),
                   "time": "2026-11-25T22:40:01.123Z", "ratio": rng.choice([1e-7, 0.25]), "session": None,
                   "arguments": {"path": rng.choice(["/etc/x", "/tmp/y"]), "count": rng.randint(0, 9)}}
        principal = {"id": rng.choice(["alice", "bob"]), "groups": groups, "attributes": attributes}
        if rng.random() < 0.7:
            principal["tenant"] = rng.choice(["acme", "globex"])
        cases.append({"gateway": {"policies": policies, "entities": base, "principal": principal,
                                  "queries": queries, "context": context}})
    return cases


def test_gateway_mapping(eval_tool):
    """The plugin's mapping (principal/resource/context entities) decides as cedarpy does on the same entities."""
    cases = gateway_cases(seed=11, count=80)
    answers = eval_tool("cedar-eval", cases)
    total = 0
    bad = []
    for case, ans in zip(cases, answers):
        want = gateway_reference(case["gateway"])
        got = [(r["outcome"], sorted(re.sub(r": error: .*", ": error", x) for x in r["reasons"]))
               for r in ans["results"]]
        for i, (w, g) in enumerate(zip(want, got)):
            total += 1
            if w != g:
                bad.append((case["gateway"]["policies"], case["gateway"]["queries"][i], w, g))
    assert not bad, f"{len(bad)} of {total} disagree; first: {bad[:3]}"
    print(f"cedar gateway mapping: {len(cases)} calls, {total} queries agree")


def test_gateway_speed(eval_tool):
    """Prints the time of one 10,000-query call (no assertion: timing depends on the machine and build)."""
    from cedar_cases import mcp_cases
    pol = "\n".join(
        [f'permit(principal in Group::"team{i}", action == Action::"tools/list", resource is Tool) '
         f'when {{ resource.backend == "b{i % 7}" }};' for i in range(20)]
        + [f'forbid(principal, action, resource == Tool::"danger{i}");' for i in range(10)]
        + [f'permit(principal in Group::"org{i % 3}", action in [Action::"tools/list", Action::"tools/call"], resource) '
           f'when {{ resource.name like "read_*" && context.transport == "http" }};' for i in range(10)]
        + [f'permit(principal, action, resource in Backend::"b{i}") when {{ principal.groups.contains("team{i}") }};'
           for i in range(10)])
    ents = ([{"uid": uid("Group", f"team{t}"), "attrs": {}, "parents": [uid("Group", f"org{t % 3}")]} for t in range(20)]
            + [{"uid": uid("Group", f"org{o}"), "attrs": {}, "parents": [uid("Group", "company")]} for o in range(3)])
    queries = [{"action": "tools/list", "type": "tool", "name": f"read_{k}" if k % 2 else f"w{k}",
                "backend": f"b{k % 7}"} for k in range(10_000)]
    case = {"gateway": {"policies": pol, "entities": ents, "queries": queries, "repeat": 3,
                        "principal": {"id": "alice", "groups": ["team3", "team10"], "tenant": "acme"},
                        "context": {"transport": "http", "peer": "127.0.0.1", "time": "2026-11-25T22:40:01.123Z"}}}
    ans = eval_tool("cedar-eval", [case])[0]
    us = ans["micros"]
    print(f"cedar speed: 50 policies, 3-level groups, 10,000 queries in {us / 1000:.1f} ms "
          f"({10_000 / (us / 1e6):,.0f} decisions/s)")
