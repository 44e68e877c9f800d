"""Case generators for the Cedar differential test (seeded, deterministic).

A case is what `cedar-eval` reads: {"policies": text, "entities": [...], "requests": [...]}. Requests name
entities as {"type", "id"} objects, which both engines accept.
"""
import json
import random

USERS = ["alice", "bob", "carol", "dave", "eve"]
GROUPS = ["eng", "ops", "all", "admins", "interns"]
DOCS = ["d1", "d2", "d3", "secret"]
ACTIONS = ["read", "write", "delete", "list", "readAll", "admin"]
STRINGS = ["", "a", "abc", "alice", "eng", "prod", "hello world", "x*y", "Ab", "\u00e9t\u00e9", "tab\tsep"]
IPS = ["10.0.0.1", "10.0.0.0/8", "192.168.1.10", "127.0.0.1", "224.0.0.1", "::1", "fe80::1", "2001:db8::/32",
       "2001:db8::5", "ff02::1", "0.0.0.0/0", "10.1.2.3/16", "127.5.0.1/8", "::ffff:1.2.3.4", "1.2.3", "01.2.3.4",
       "10.0.0.1/33", "10.0.0.1/", "::/0", "1:2:3:4:5:6:7::", "1::2::3"]
DECIMALS = ["0.0", "1.5", "-2.25", "3.1415", "100.0001", "-0.5", "922337203685477.5807", "1.23456", "1", "1.",
            "abc", "-922337203685477.5808", "922337203685477.5808"]
DATETIMES = ["2024-01-01", "2024-02-29", "2023-02-29", "2024-06-15T12:30:00Z", "2024-06-15T12:30:00.123Z",
             "2024-06-15T12:30:00+0200", "2024-06-15T12:30:00-0130", "1969-12-31T23:59:59Z", "2024-13-01",
             "2024-01-01T24:00:00Z", "2024-01-01T10:00:00", "2024-1-01", "2024-01-01T10:00:00+2400"]
DURATIONS = ["1h", "30m", "1d2h3m4s5ms", "-1d", "0ms", "90s", "1ms", "2h30m", "1s1ms", "1m1h", "", "-", "5x",
             "9223372036854775807ms", "106751991167d"]


def q(s):
    """A Cedar string literal."""
    return json.dumps(s, ensure_ascii=False)


def uid(t, i):
    return {"type": t, "id": i}


def ent(t, i):
    return f"{t}::{q(i)}"


class World:
    """A random entity graph: users in groups (3 levels), documents in folders, actions in action groups."""

    def __init__(self, rng):
        self.rng = rng
        r = rng
        ents = []
        # Group hierarchy: interns/admins -> eng -> all, ops -> all (sometimes varied).
        gparents = {"eng": ["all"], "ops": ["all"], "admins": ["eng"], "interns": ["eng"], "all": []}
        if r.random() < 0.3:
            gparents["ops"] = ["eng"]
        for g in GROUPS:
            ents.append({"uid": uid("Group", g), "attrs": {"name": g}, "parents": [uid("Group", p) for p in gparents[g]]})
        for u in USERS:
            if r.random() < 0.1:
                continue  # an unknown principal: no attributes, no parents
            attrs = {}
            if r.random() < 0.9:
                attrs["age"] = r.choice([0, 17, 18, 30, 65, -5, 9223372036854775807])
            if r.random() < 0.9:
                attrs["name"] = u
            if r.random() < 0.7:
                attrs["tags"] = r.sample(["a", "b", "c", "prod", "dev"], r.randint(0, 3))
            if r.random() < 0.6:
                attrs["manager"] = {"__entity": uid("User", r.choice(USERS))}
            if r.random() < 0.5:
                attrs["addr"] = {"__extn": {"fn": "ip", "arg": r.choice(IPS[:13])}}
            if r.random() < 0.5:
                attrs["score"] = {"__extn": {"fn": "decimal", "arg": r.choice(DECIMALS[:7])}}
            if r.random() < 0.6:
                attrs["info"] = {"region": r.choice(["eu", "us"]), "level": r.randint(0, 5),
                                 "deep": {"x": r.randint(0, 2)}}
            if r.random() < 0.5:
                attrs["active"] = r.random() < 0.5
            e = {"uid": uid("User", u), "attrs": attrs,
                 "parents": [uid("Group", g) for g in r.sample(GROUPS, r.randint(0, 2))]}
            if r.random() < 0.5:
                e["tags"] = {"env": r.choice(["prod", "dev"]), "n": r.randint(0, 3)}
            ents.append(e)
        ents.append({"uid": uid("Folder", "root"), "attrs": {}, "parents": []})
        ents.append({"uid": uid("Folder", "shared"), "attrs": {"public": True}, "parents": [uid("Folder", "root")]})
        for d in DOCS:
            attrs = {"owner": {"__entity": uid("User", r.choice(USERS))}, "public": r.random() < 0.5,
                     "size": r.randint(0, 1000), "labels": r.sample(["x", "y", "z"], r.randint(0, 2))}
            if r.random() < 0.3:
                del attrs["public"]
            ents.append({"uid": uid("Doc", d), "attrs": attrs,
                         "parents": [uid("Folder", r.choice(["root", "shared"]))]})
        aparents = {"read": ["readAll"], "list": ["readAll"], "write": ["admin"], "delete": ["admin"],
                    "readAll": ["admin"] if r.random() < 0.5 else [], "admin": []}
        for a in ACTIONS:
            ents.append({"uid": uid("Action", a), "attrs": {}, "parents": [uid("Action", p) for p in aparents[a]]})
        self.entities = ents

    def context(self):
        r = self.rng
        c = {}
        if r.random() < 0.8:
            c["n"] = r.choice([0, 1, 5, -3, 100, 9223372036854775807, -9223372036854775808])
        if r.random() < 0.7:
            c["s"] = r.choice(STRINGS)
        if r.random() < 0.6:
            c["flag"] = r.random() < 0.5
        if r.random() < 0.5:
            c["list"] = r.sample(["a", "b", "c", "prod"], r.randint(0, 3))
        if r.random() < 0.4:
            c["ip"] = {"__extn": {"fn": "ip", "arg": r.choice(IPS[:13])}}
        if r.random() < 0.4:
            c["who"] = {"__entity": uid("User", r.choice(USERS))}
        if r.random() < 0.3:
            c["rec"] = {"a": r.randint(0, 3), "b": {"c": r.choice(STRINGS)}}
        if r.random() < 0.3:
            c["ents"] = [{"__entity": uid("Group", g)} for g in r.sample(GROUPS, r.randint(0, 2))]
        return c

    def request(self):
        r = self.rng
        p = uid("User", r.choice(USERS + ["zed"])) if r.random() < 0.9 else uid("Group", r.choice(GROUPS))
        a = uid("Action", r.choice(ACTIONS + ["unknown"]))
        res = uid("Doc", r.choice(DOCS + ["missing"])) if r.random() < 0.85 else uid("Folder", "shared")
        return {"principal": p, "action": a, "resource": res, "context": self.context()}


class ExprGen:
    """Random, mostly well-typed Cedar expressions; a few are ill-typed on purpose to exercise errors."""

    def __init__(self, rng):
        self.r = rng

    def pick(self, *options):
        return self.r.choice(options)()

    def maybe_wrong(self, t, d):
        if self.r.random() < 0.04:
            other = self.r.choice([x for x in ["bool", "long", "string", "set", "entity", "record"] if x != t])
            return self.gen(other, d)
        return None

    def gen(self, t, d):
        w = self.maybe_wrong(t, d)
        if w is not None:
            return w
        return getattr(self, "g_" + t)(max(d, 0))

    def g_bool(self, d):
        r = self.r
        leaf = [
            lambda: r.choice(["true", "false"]),
            lambda: f"context has {r.choice(['n', 's', 'flag', 'list', 'ip', 'who', 'rec', 'nope'])}",
            lambda: f"principal has {r.choice(['age', 'name', 'tags', 'manager', 'info', 'active', 'addr', 'x'])}",
            lambda: f"resource has {r.choice(['owner', 'public', 'size', 'labels', 'zzz'])}",
            lambda: f"principal has info.{r.choice(['region', 'deep.x', 'deep.y', 'nope'])}",
            lambda: f"principal has \"{r.choice(['age', 'name', 'not there'])}\"",
            lambda: f"principal in {ent('Group', r.choice(GROUPS))}",
            lambda: f"principal is {r.choice(['User', 'Group', 'Doc', 'NS::User'])}",
            lambda: f"resource in {ent('Folder', r.choice(['root', 'shared']))}",
            lambda: f"action in {ent('Action', r.choice(ACTIONS))}",
            lambda: f"action in [{ent('Action', r.choice(ACTIONS))}, {ent('Action', r.choice(ACTIONS))}]",
            lambda: "context.flag",
            lambda: "principal.active",
            lambda: "resource.public",
            lambda: f"principal.hasTag({q(r.choice(['env', 'n', 'other']))})",
        ]
        if d <= 0:
            return r.choice(leaf)()
        return self.pick(
            lambda: r.choice(leaf)(),
            lambda: f"({self.gen('bool', d - 1)} && {self.gen('bool', d - 1)})",
            lambda: f"({self.gen('bool', d - 1)} || {self.gen('bool', d - 1)})",
            lambda: f"!{self.atom('bool', d - 1)}",
            lambda: f"({self.gen('long', d - 1)} {r.choice(['<', '<=', '>', '>='])} {self.gen('long', d - 1)})",
            lambda: self.eq(d),
            lambda: f"({self.gen('entity', d - 1)} in {self.gen('entity', d - 1)})",
            lambda: f"({self.gen('entity', d - 1)} in {self.entity_set(d - 1)})",
            lambda: f"({self.gen('string', d - 1)} like \"{self.pattern()}\")",
            lambda: f"{self.atom('set', d - 1)}.contains({self.gen(r.choice(['string', 'long', 'entity']), d - 1)})",
            lambda: f"{self.atom('set', d - 1)}.containsAll({self.atom('set', d - 1)})",
            lambda: f"{self.atom('set', d - 1)}.containsAny({self.atom('set', d - 1)})",
            lambda: f"{self.atom('set', d - 1)}.isEmpty()",
            lambda: f"(if {self.gen('bool', d - 1)} then {self.gen('bool', d - 1)} else {self.gen('bool', d - 1)})",
            lambda: f"({self.gen('entity', d - 1)} is {r.choice(['User', 'Group', 'Doc'])})",
            lambda: f"({self.gen('entity', d - 1)} is Group in {ent('Group', r.choice(GROUPS))})",
            lambda: f"({self.atom('record', d - 1)} has {r.choice(['a', 'b', 'region', 'level', 'x'])})",
            lambda: self.ip_bool(d),
            lambda: self.decimal_bool(d),
            lambda: self.time_bool(d),
        )

    def eq(self, d):
        t = self.r.choice(["long", "string", "entity", "set", "record", "bool"])
        t2 = t if self.r.random() < 0.85 else self.r.choice(["long", "string", "entity"])
        return f"({self.gen(t, d - 1)} {self.r.choice(['==', '!='])} {self.gen(t2, d - 1)})"

    def pattern(self):
        r = self.r
        parts = []
        for _ in range(r.randint(0, 4)):
            parts.append(r.choice(["*", "a", "b", "c", "l", "i", "e", " ", "\\*", "x", "**"]))
        return "".join(parts)

    def ip_lit(self):
        return f"ip({q(self.r.choice(IPS))})"

    def ip_bool(self, d):
        r = self.r
        x = r.choice([self.ip_lit(), "context.ip", "principal.addr", self.ip_lit()])
        m = r.choice(["isIpv4()", "isIpv6()", "isLoopback()", "isMulticast()", f"isInRange({self.ip_lit()})",
                      f"isInRange({x})"])
        if r.random() < 0.3:
            return f"({x} == {self.ip_lit()})"
        return f"{x}.{m}"

    def decimal_bool(self, d):
        r = self.r
        def dec():
            return r.choice([f"decimal({q(r.choice(DECIMALS))})", "principal.score"])
        m = r.choice(["lessThan", "lessThanOrEqual", "greaterThan", "greaterThanOrEqual"])
        if r.random() < 0.2:
            return f"({dec()} == {dec()})"
        if r.random() < 0.05:
            return f"({dec()} < {dec()})"
        return f"{dec()}.{m}({dec()})"

    def time_bool(self, d):
        r = self.r
        def dt():
            base = f"datetime({q(r.choice(DATETIMES))})"
            return r.choice([base, base, f"{base}.offset(duration({q(r.choice(DURATIONS))}))", f"{base}.toDate()"])
        def du():
            return r.choice([f"duration({q(r.choice(DURATIONS))})", f"{dt()}.toTime()",
                             f"{dt()}.durationSince({dt()})"])
        k = r.random()
        if k < 0.4:
            return f"({dt()} {r.choice(['<', '<=', '>', '>=', '==', '!='])} {dt()})"
        if k < 0.8:
            return f"({du()} {r.choice(['<', '<=', '>', '>=', '==', '!='])} {du()})"
        return f"({du()}.{r.choice(['toDays', 'toHours', 'toMinutes', 'toSeconds', 'toMilliseconds'])}() > {r.randint(-5, 100)})"

    def atom(self, t, d):
        e = self.gen(t, d)
        return e if e[0] in "([{\"" or e.isidentifier() else f"({e})"

    def g_long(self, d):
        r = self.r
        leaf = [
            lambda: str(r.choice([0, 1, 2, 7, 18, 65, 100, 9223372036854775807])),
            lambda: f"-{r.choice([1, 5, 9223372036854775808])}",
            lambda: "principal.age",
            lambda: "context.n",
            lambda: "resource.size",
            lambda: "principal.info.level",
            lambda: "context.rec.a",
            lambda: "principal.getTag(\"n\")",
        ]
        if d <= 0:
            return r.choice(leaf)()
        return self.pick(
            lambda: r.choice(leaf)(),
            lambda: f"({self.gen('long', d - 1)} {r.choice(['+', '-', '*'])} {self.gen('long', d - 1)})",
            lambda: f"-{self.atom('long', d - 1)}",
            lambda: f"(if {self.gen('bool', d - 1)} then {self.gen('long', d - 1)} else {self.gen('long', d - 1)})",
            lambda: f"duration({q(r.choice(DURATIONS))}).{r.choice(['toHours', 'toMinutes', 'toMilliseconds'])}()",
        )

    def g_string(self, d):
        r = self.r
        leaf = [
            lambda: q(r.choice(STRINGS)),
            lambda: "\"esc\\n\\t\\\"\\\\\\u{e9}\\x41\"",
            lambda: "principal.name",
            lambda: "context.s",
            lambda: "principal.info.region",
            lambda: "principal[\"name\"]",
            lambda: "context.rec.b.c",
            lambda: "principal.getTag(\"env\")",
        ]
        if d <= 0:
            return r.choice(leaf)()
        return self.pick(
            lambda: r.choice(leaf)(),
            lambda: f"(if {self.gen('bool', d - 1)} then {self.gen('string', d - 1)} else {self.gen('string', d - 1)})",
        )

    def entity_set(self, d):
        r = self.r
        items = [self.gen("entity", d) for _ in range(r.randint(0, 3))]
        if r.random() < 0.3:
            return "context.ents"
        return "[" + ", ".join(items) + "]"

    def g_set(self, d):
        r = self.r
        leaf = [
            lambda: "principal.tags",
            lambda: "context.list",
            lambda: "resource.labels",
            lambda: "[]",
            lambda: "[" + ", ".join(q(r.choice(["a", "b", "c", "prod", "x"])) for _ in range(r.randint(1, 3))) + "]",
            lambda: "[" + ", ".join(str(r.randint(0, 3)) for _ in range(r.randint(1, 3))) + "]",
            lambda: "context.ents",
        ]
        if d <= 0:
            return r.choice(leaf)()
        return self.pick(
            lambda: r.choice(leaf)(),
            lambda: "[" + ", ".join(self.gen(r.choice(["string", "long", "entity"]), d - 1)
                                    for _ in range(r.randint(0, 3))) + "]",
            lambda: self.entity_set(d - 1),
            lambda: "[[1, 2], [2, 1], {a: 1}]",
        )

    def g_entity(self, d):
        r = self.r
        leaf = [
            lambda: "principal",
            lambda: "resource",
            lambda: "action",
            lambda: ent("User", r.choice(USERS)),
            lambda: ent("Group", r.choice(GROUPS)),
            lambda: ent("Action", r.choice(ACTIONS)),
            lambda: ent("Folder", r.choice(["root", "shared"])),
            lambda: "principal.manager",
            lambda: "resource.owner",
            lambda: "context.who",
            lambda: ent("NS::User", "alice"),
        ]
        if d <= 0:
            return r.choice(leaf)()
        return self.pick(
            lambda: r.choice(leaf)(),
            lambda: f"(if {self.gen('bool', d - 1)} then {self.gen('entity', d - 1)} else {self.gen('entity', d - 1)})",
            lambda: "principal.manager.manager",
        )

    def g_record(self, d):
        r = self.r
        leaf = [
            lambda: "context",
            lambda: "principal.info",
            lambda: "context.rec",
            lambda: "{}",
            lambda: "{a: 1, \"b\": \"x\"}",
            lambda: "{region: \"eu\", level: 2, deep: {x: 1}}",
        ]
        if d <= 0:
            return r.choice(leaf)()
        return self.pick(
            lambda: r.choice(leaf)(),
            lambda: "{" + ", ".join(f"{k}: {self.gen(r.choice(['long', 'string', 'bool']), d - 1)}"
                                    for k in r.sample(["a", "b", "region", "level"], r.randint(0, 3))) + "}",
        )

    def scope_var(self, var):
        r = self.r
        k = r.random()
        if var == "principal":
            t, ids = "User", USERS
            gt, gids = "Group", GROUPS
        else:
            t, ids = "Doc", DOCS
            gt, gids = "Folder", ["root", "shared"]
        if k < 0.35:
            return var
        if k < 0.5:
            return f"{var} == {ent(t, r.choice(ids))}"
        if k < 0.7:
            return f"{var} in {ent(gt, r.choice(gids))}"
        if k < 0.8:
            return f"{var} is {r.choice([t, gt])}"
        return f"{var} is {r.choice([t, gt])} in {ent(gt, r.choice(gids))}"

    def scope_action(self):
        r = self.r
        k = r.random()
        if k < 0.4:
            return "action"
        if k < 0.6:
            return f"action == {ent('Action', r.choice(ACTIONS))}"
        if k < 0.8:
            return f"action in {ent('Action', r.choice(ACTIONS))}"
        return "action in [" + ", ".join(ent("Action", a) for a in r.sample(ACTIONS, r.randint(1, 3))) + "]"

    def policy(self, depth):
        r = self.r
        ann = ""
        if r.random() < 0.3:
            ann = f"@id({q('p' + str(r.randint(0, 99)))}) "
        if r.random() < 0.1:
            ann += "@advice(\"x\") "
        effect = "permit" if r.random() < 0.65 else "forbid"
        conds = ""
        for _ in range(r.choice([0, 0, 1, 1, 1, 2])):
            kw = "when" if r.random() < 0.75 else "unless"
            conds += f" {kw} {{ {self.gen('bool', depth)} }}"
        return (f"{ann}{effect}({self.scope_var('principal')}, {self.scope_action()}, "
                f"{self.scope_var('resource')}){conds};")


def generated_cases(seed, count):
    """`count` cases of 1-5 random policies over a random world, each with 4 requests."""
    rng = random.Random(seed)
    cases = []
    for _ in range(count):
        world = World(rng)
        gen = ExprGen(rng)
        n = rng.randint(1, 5)
        text = "\n".join(gen.policy(rng.choice([0, 1, 1, 2, 3])) for _ in range(n))
        cases.append({"policies": text, "entities": world.entities,
                      "requests": [world.request() for _ in range(5)]})
    return cases


def mutated_cases(seed, count):
    """Valid policy text with one random edit (a character dropped, doubled or replaced): parse errors and
    near-misses of the grammar."""
    rng = random.Random(seed)
    cases = []
    tokens = ["(", ")", "{", "}", "[", "]", ",", ";", ".", "::", "==", "=", "!", "-", "&&", "||", "in", "is",
              "has", "like", "if", "then", "else", "\"", "?principal", "@", "*", "/", "%", "<", "<=", "1", "x",
              "principal", "when", "unless", "true", ":", "\\", "99999999999999999999"]
    while len(cases) < count:
        world = World(rng)
        gen = ExprGen(rng)
        text = "\n".join(gen.policy(rng.randint(0, 2)) for _ in range(rng.randint(1, 3)))
        pos = rng.randrange(len(text))
        k = rng.random()
        if k < 0.3:
            text = text[:pos] + text[pos + 1:]
        elif k < 0.5:
            text = text[:pos] + text[pos] + text[pos:]
        else:
            text = text[:pos] + " " + rng.choice(tokens) + " " + text[pos:]
        cases.append({"policies": text, "entities": world.entities, "requests": [world.request() for _ in range(2)]})
    return cases


MCP_METHODS = ["tools/call", "tools/list", "prompts/get", "prompts/list", "resources/read", "resources/list"]
MCP_TOOLS = ["read_file", "write_file", "delete_repo", "search", "admin.reset", "admin.users"]
MCP_BACKENDS = ["git", "fs", "web"]


def mcp_cases(seed, count):
    """Cases shaped like the gateway's mapping: `User` principals with `id`/`groups`/`tenant` attributes and
    `Group` parents (3 levels), `Tool`/`Prompt`/`Resource` resources with `name`/`backend` and a `Backend`
    parent, `Action::"<method>"` actions, and a context with transport, peer, time and arguments."""
    rng = random.Random(seed)
    cases = []
    for _ in range(count):
        ents = [
            {"uid": uid("Group", "eng"), "attrs": {}, "parents": [uid("Group", "staff")]},
            {"uid": uid("Group", "ops"), "attrs": {}, "parents": [uid("Group", "staff")]},
            {"uid": uid("Group", "staff"), "attrs": {}, "parents": [uid("Group", "all")]},
            {"uid": uid("Group", "contractors"), "attrs": {}, "parents": [uid("Group", "all")]},
            {"uid": uid("Action", "tools/call"), "attrs": {}, "parents": [uid("Action", "use")]},
            {"uid": uid("Action", "prompts/get"), "attrs": {}, "parents": [uid("Action", "use")]},
            {"uid": uid("Action", "tools/list"), "attrs": {}, "parents": [uid("Action", "list")]},
        ]
        requests = []
        for _ in range(6):
            user = rng.choice(USERS)
            groups = rng.sample(["eng", "ops", "contractors", "nobody"], rng.randint(0, 2))
            attrs = {"id": user, "groups": groups}
            if rng.random() < 0.7:
                attrs["tenant"] = rng.choice(["acme", "globex"])
            if rng.random() < 0.5:
                attrs["clearance"] = rng.randint(0, 3)
            kind = rng.choice(["Tool", "Tool", "Tool", "Prompt", "Resource"])
            name = rng.choice(MCP_TOOLS) if kind != "Resource" else rng.choice(["file:///etc/passwd", "https://x/y"])
            backend = rng.choice(MCP_BACKENDS)
            p_ent = {"uid": uid("User", user), "attrs": attrs, "parents": [uid("Group", g) for g in groups]}
            r_ent = {"uid": uid(kind, name), "attrs": {"name": name, "backend": backend},
                     "parents": [uid("Backend", backend)]}
            ctx = {"transport": rng.choice(["http", "stdio"]), "peer": rng.choice(["127.0.0.1", "10.2.3.4", "::1"]),
                   "time": rng.choice(["2026-11-25T22:40:01.123Z", "2026-11-26T08:00:00.000Z"])}
            if rng.random() < 0.6:
                ctx["arguments"] = {"path": rng.choice(["/tmp/x", "/etc/passwd", "src/main.swift"]),
                                    "force": rng.random() < 0.5, "count": rng.randint(0, 10)}
            requests.append({"principal": uid("User", user), "action": uid("Action", rng.choice(MCP_METHODS)),
                             "resource": uid(kind, name), "context": ctx, "_extra": [p_ent, r_ent]})
        # Per-request entities differ; each case holds one request so its principal/resource entities fit.
        for req in requests:
            extra = req.pop("_extra")
            cases.append({"policies": mcp_policies(rng), "entities": ents + extra, "requests": [req]})
    return cases


def mcp_policies(rng):
    pool = [
        'permit(principal in Group::"staff", action == Action::"tools/list", resource);',
        'permit(principal in Group::"eng", action in Action::"use", resource is Tool) '
        'when { resource.backend == "git" };',
        'forbid(principal, action, resource) when { resource.name like "admin.*" } '
        'unless { principal in Group::"ops" };',
        'permit(principal, action, resource in Backend::"fs") when { principal.tenant == "acme" };',
        'forbid(principal, action == Action::"tools/call", resource) when { context has arguments && '
        'context.arguments.path like "/etc/*" };',
        'permit(principal, action, resource) when { principal.groups.contains("contractors") && '
        'context.transport == "stdio" };',
        'permit(principal, action, resource) when { ip(context.peer).isLoopback() };',
        'forbid(principal, action, resource) when { datetime(context.time) > datetime("2026-11-26") };',
        'permit(principal is User, action, resource) when { principal has clearance && principal.clearance >= 2 };',
        'permit(principal, action == Action::"tools/call", resource == Tool::"search");',
        'forbid(principal, action, resource is Resource) when { resource.name like "file://*" && '
        '!(principal in Group::"ops") };',
        'permit(principal, action, resource) when { context.arguments.count < 5 };',
        'permit(principal in Group::"all", action in [Action::"prompts/get", Action::"prompts/list"], resource);',
    ]
    return "\n".join(rng.sample(pool, rng.randint(1, 6)))
