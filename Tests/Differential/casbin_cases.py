"""Case generators for the Casbin differential test: models of each type, seeded random policies and requests.

A case is {"name", "model", "policy", "request", ["matcher"]}: the same texts and request go to pycasbin and
to casbin-eval. Request values that are objects stand for ABAC entities (`r.sub.Age`).
"""
import random

HEAD3 = "[request_definition]\nr = sub, obj, act\n\n[policy_definition]\n"
ALLOW = "[policy_effect]\ne = some(where (p.eft == allow))\n"

MODELS = {
    "acl": HEAD3 + "p = sub, obj, act\n\n" + ALLOW + "\n[matchers]\nm = r.sub == p.sub && r.obj == p.obj && r.act == p.act\n",
    "acl_root": HEAD3 + "p = sub, obj, act\n" + ALLOW
    + "[matchers]\nm = r.sub == p.sub && r.obj == p.obj && r.act == p.act || r.sub == \"root\"\n",
    "restful": HEAD3 + "p = sub, obj, act\n" + ALLOW
    + "[matchers]\nm = r.sub == p.sub && keyMatch2(r.obj, p.obj) && regexMatch(r.act, p.act)\n",
    "keymatch": HEAD3 + "p = sub, obj, act\n" + ALLOW
    + "[matchers]\nm = r.sub == p.sub && keyMatch(r.obj, p.obj) && r.act == p.act\n",
    "keymatch3": HEAD3 + "p = sub, obj, act\n" + ALLOW
    + "[matchers]\nm = r.sub == p.sub && keyMatch3(r.obj, p.obj) && r.act == p.act\n",
    "keymatch4": HEAD3 + "p = sub, obj, act\n" + ALLOW
    + "[matchers]\nm = r.sub == p.sub && keyMatch4(r.obj, p.obj) && r.act == p.act\n",
    "keymatch5": HEAD3 + "p = sub, obj, act\n" + ALLOW
    + "[matchers]\nm = r.sub == p.sub && keyMatch5(r.obj, p.obj) && r.act == p.act\n",
    "glob": HEAD3 + "p = sub, obj, act\n" + ALLOW
    + "[matchers]\nm = r.sub == p.sub && globMatch(r.obj, p.obj) && r.act == p.act\n",
    "rbac": HEAD3 + "p = sub, obj, act\n\n[role_definition]\ng = _, _\n\n" + ALLOW
    + "\n[matchers]\nm = g(r.sub, p.sub) && r.obj == p.obj && r.act == p.act\n",
    "rbac_resource": HEAD3 + "p = sub, obj, act\n[role_definition]\ng = _, _\ng2 = _, _\n" + ALLOW
    + "[matchers]\nm = g(r.sub, p.sub) && g2(r.obj, p.obj) && r.act == p.act\n",
    "rbac_domain": "[request_definition]\nr = sub, dom, obj, act\n[policy_definition]\np = sub, dom, obj, act\n"
    "[role_definition]\ng = _, _, _\n" + ALLOW
    + "[matchers]\nm = g(r.sub, p.sub, r.dom) && r.dom == p.dom && r.obj == p.obj && r.act == p.act\n",
    "rbac_deny": HEAD3 + "p = sub, obj, act, eft\n[role_definition]\ng = _, _\n"
    "[policy_effect]\ne = some(where (p.eft == allow)) && !some(where (p.eft == deny))\n"
    "[matchers]\nm = g(r.sub, p.sub) && r.obj == p.obj && r.act == p.act\n",
    "deny_override": HEAD3 + "p = sub, obj, act, eft\n[role_definition]\ng = _, _\n"
    "[policy_effect]\ne = !some(where (p.eft == deny))\n"
    "[matchers]\nm = g(r.sub, p.sub) && keyMatch(r.obj, p.obj) && r.act == p.act\n",
    "priority": HEAD3 + "p = priority, sub, obj, act, eft\n[role_definition]\ng = _, _\n"
    "[policy_effect]\ne = priority(p.eft) || deny\n"
    "[matchers]\nm = g(r.sub, p.sub) && r.obj == p.obj && r.act == p.act\n",
    "subject_priority": HEAD3 + "p = sub, obj, act, eft\n[role_definition]\ng = _, _\n"
    "[policy_effect]\ne = subjectPriority(p.eft) || deny\n"
    "[matchers]\nm = g(r.sub, p.sub) && r.obj == p.obj && r.act == p.act\n",
    "subject_priority_dom": "[request_definition]\nr = sub, obj, dom, act\n[policy_definition]\n"
    "p = sub, obj, dom, act, eft\n[role_definition]\ng = _, _, _\n"
    "[policy_effect]\ne = subjectPriority(p.eft) || deny\n"
    "[matchers]\nm = g(r.sub, p.sub, r.dom) && r.dom == p.dom && r.obj == p.obj && r.act == p.act\n",
    "ipmatch": HEAD3 + "p = sub, obj, act\n" + ALLOW
    + "[matchers]\nm = ipMatch(r.sub, p.sub) && r.obj == p.obj && r.act == p.act\n",
    "abac_owner": HEAD3 + "p = sub, obj, act\n" + ALLOW
    + "[matchers]\nm = r.sub.Name == r.obj.Owner || r.sub.Name == p.sub && r.obj.Name == p.obj && r.act == p.act\n",
    "abac_eval": HEAD3 + "p = sub_rule, obj, act\n" + ALLOW
    + "[matchers]\nm = eval(p.sub_rule) && r.obj == p.obj && r.act == p.act\n",
    "abac_expr": HEAD3 + "p = sub, obj, act\n" + ALLOW
    + "[matchers]\nm = r.sub.Name == p.sub && r.act in ('read', 'write', \"list\") && "
    "(r.sub.Level + 1 > 3 || r.sub.Dept + \"/\" + r.act == p.obj) && !(r.obj.Locked == True)\n",
    "multi": "[request_definition]\nr = sub, obj, act\nr2 = sub, obj\n[policy_definition]\np = sub, obj, act\n"
    "p2 = sub, obj, eft\n[role_definition]\ng = _, _\n[policy_effect]\ne = some(where (p.eft == allow))\n"
    "e2 = some(where (p2.eft == allow))\n[matchers]\nm = g(r.sub, p.sub) && r.obj == p.obj && r.act == p.act\n"
    "m2 = g(r2.sub, p2.sub) && keyMatch(r2.obj, p2.obj)\n",
}

USERS = ["alice", "bob", "carol", "dave", "root"]
ROLES = ["admin", "editor", "viewer", "ops", "auditor"]
OBJS = ["data1", "data2", "data3", "tool.search", "tool.exec"]
ACTS = ["read", "write", "list"]
DOMS = ["t1", "t2", "t3"]
PATHS = ["/alice_data/hello", "/alice_data/x/y", "/bob_data/1", "/api/users/42", "/api/users/42/posts",
         "/api/items", "/api/items/7", "/pen/1/pen/1", "/pen/1/pen/2", "/files/a.txt", "/files/a/b.txt",
         "/public/index.html", "/search?q=1", "/api/users/42?verbose=1", "/"]
IPS = ["192.168.2.123", "192.168.2.1", "192.168.3.4", "10.0.0.1", "10.1.2.3", "127.0.0.1", "::1",
       "2001:db8::1", "2001:db9::1"]
NETS = ["192.168.2.0/24", "10.0.0.0/8", "127.0.0.1", "192.168.2.1/32", "2001:db8::/32", "::1", "0.0.0.0/0",
        "192.168.0.0/16", "192.168.2.0/255.255.255.0"]


def _lines(rows):
    return "\n".join(", ".join(r) for r in rows) + "\n"


def _role_links(rng, subjects, roles, n, domain=None):
    links = []
    for _ in range(n):
        a = rng.choice(subjects + roles)
        b = rng.choice(roles)
        if a != b:
            links.append(["g", a, b] + ([domain()] if domain else []))
    return links


def gen_simple(rng, name, n_pol, n_req, objs, req_objs, acts_pat=None, subjects=USERS):
    rows = [["p", rng.choice(subjects), rng.choice(objs), rng.choice(acts_pat or ACTS)] for _ in range(n_pol)]
    policy = _lines(rows)
    cases = [{"name": name, "model": MODELS[name], "policy": policy,
              "request": [rng.choice(subjects + ["eve"]), rng.choice(req_objs), rng.choice(ACTS + ["GET", "POST"])]}
             for _ in range(n_req)]
    return _bias(rng, cases, rows, 2, take_sub=name in ("acl", "acl_root"))


def gen_restful(rng, n_req):
    pats = ["/alice_data/*", "/alice_data/:resource", "/api/users/:id", "/api/users/:id/posts", "/api/*",
            "/api/items/:id", "/files/*", "/:any", "*", "/api/items"]
    acts = ["GET", "POST", "(GET)|(POST)", "^GET$", "GET|DELETE", "^(read)|(write)$", "read", "^li"]
    rows = [["p", rng.choice(USERS[:2]), rng.choice(pats), rng.choice(acts)] for _ in range(8)]
    return [{"name": "restful", "model": MODELS["restful"], "policy": _lines(rows),
             "request": [rng.choice(USERS[:2]), rng.choice(PATHS), rng.choice(["GET", "POST", "DELETE", "read", "list",
                                                                           "aGET", "GETx"])]}
            for _ in range(n_req)]


def gen_keymatch(rng, name, pats, n_req):
    rows = [["p", rng.choice(USERS[:2]), rng.choice(pats), rng.choice(ACTS[:2])] for _ in range(8)]
    return [{"name": name, "model": MODELS[name], "policy": _lines(rows),
             "request": [rng.choice(USERS[:2]), rng.choice(PATHS), rng.choice(ACTS[:2])]} for _ in range(n_req)]


def gen_rbac(rng, name, n_req, eft=False, priority=False, deny_bias=0.3):
    rows = []
    for _ in range(10):
        sub = rng.choice(USERS + ROLES)
        row = ["p"] + ([str(rng.randint(0, 20))] if priority else []) + [sub, rng.choice(OBJS[:3]), rng.choice(ACTS)]
        if eft:
            row.append("deny" if rng.random() < deny_bias else "allow")
        rows.append(row)
    if name == "deny_override":
        for r in rows:
            r[2] = rng.choice(["data*", "data1", "tool.*", "*"])
    links = _role_links(rng, USERS, ROLES, 7)
    if name == "subject_priority":
        # subjectPriority needs a cycle-free hierarchy: links only point to later roles.
        links = []
        for u in USERS:
            if rng.random() < 0.7:
                links.append(["g", u, rng.choice(ROLES)])
        for i, r in enumerate(ROLES[:-1]):
            if rng.random() < 0.5:
                links.append(["g", r, rng.choice(ROLES[i + 1:])])
    policy = _lines(rows + links)
    cases = [{"name": name, "model": MODELS[name], "policy": policy,
              "request": [rng.choice(USERS + ROLES[:2] + ["eve"]), rng.choice(OBJS[:3]), rng.choice(ACTS)]}
             for _ in range(n_req)]
    if priority:
        rows = [[r[0]] + r[2:] for r in rows]
    return _bias(rng, cases, rows, 2, take_sub=name in ("acl", "acl_root"))


def gen_rbac_resource(rng, n_req):
    groups = ["data_group", "tool_group", "all"]
    rows = [["p", rng.choice(USERS + ROLES), rng.choice(groups + OBJS), rng.choice(ACTS)] for _ in range(8)]
    links = _role_links(rng, USERS, ROLES, 6)
    links += [["g2", rng.choice(OBJS + groups), rng.choice(groups)] for _ in range(6)]
    cases = [{"name": "rbac_resource", "model": MODELS["rbac_resource"], "policy": _lines(rows + links),
              "request": [rng.choice(USERS), rng.choice(OBJS + ["data_group"]), rng.choice(ACTS)]}
             for _ in range(n_req)]
    return _bias(rng, cases, rows, 2)


def gen_rbac_domain(rng, n_req):
    rows = [["p", rng.choice(ROLES + USERS[:2]), rng.choice(DOMS), rng.choice(OBJS[:3]), rng.choice(ACTS)]
            for _ in range(10)]
    links = _role_links(rng, USERS, ROLES, 14, domain=lambda: rng.choice(DOMS))
    cases = [{"name": "rbac_domain", "model": MODELS["rbac_domain"], "policy": _lines(rows + links),
              "request": [rng.choice(USERS), rng.choice(DOMS + ["t9"]), rng.choice(OBJS[:3]), rng.choice(ACTS)]}
             for _ in range(n_req)]
    return _bias(rng, cases, rows, 3)


def gen_subject_priority_dom(rng, n_req):
    links = []
    for d in DOMS[:2]:
        for u in USERS:
            if rng.random() < 0.6:
                links.append(["g", u, rng.choice(ROLES[:3]), d])
        for i, r in enumerate(ROLES[:2]):
            links.append(["g", r, rng.choice(ROLES[i + 1:3]), d])
    rows = [["p", rng.choice(USERS + ROLES[:3]), rng.choice(OBJS[:2]), rng.choice(DOMS[:2]), rng.choice(ACTS[:2]),
             rng.choice(["allow", "deny"])] for _ in range(10)]
    cases = [{"name": "subject_priority_dom", "model": MODELS["subject_priority_dom"], "policy": _lines(rows + links),
              "request": [rng.choice(USERS), rng.choice(OBJS[:2]), rng.choice(DOMS[:2]), rng.choice(ACTS[:2])]}
             for _ in range(n_req)]
    return cases


def gen_ip(rng, n_req):
    rows = [["p", rng.choice(NETS), rng.choice(OBJS[:2]), rng.choice(ACTS)] for _ in range(6)]
    return [{"name": "ipmatch", "model": MODELS["ipmatch"], "policy": _lines(rows),
             "request": [rng.choice(IPS), rng.choice(OBJS[:2]), rng.choice(ACTS)]} for _ in range(n_req)]


def _person(rng):
    return {"Name": rng.choice(USERS), "Age": rng.randint(10, 70), "Dept": rng.choice(["eng", "ops", "hr"]),
            "Level": rng.randint(0, 5)}


def gen_abac(rng, n_req):
    cases = []
    rows = [["p", rng.choice(USERS), rng.choice(OBJS[:3]), rng.choice(ACTS)] for _ in range(5)]
    for _ in range(n_req):
        obj = {"Name": rng.choice(OBJS[:3]), "Owner": rng.choice(USERS), "Locked": rng.random() < 0.3}
        cases.append({"name": "abac_owner", "model": MODELS["abac_owner"], "policy": _lines(rows),
                      "request": [_person(rng), obj, rng.choice(ACTS)]})
    rules = ["r.sub.Age > 18", "r.sub.Age < 30 && r.sub.Dept == 'eng'", "r.sub.Dept in ('ops', 'hr')",
             "r.sub.Level >= 3 || r.sub.Name == 'alice'", "!(r.sub.Age > 60)", "r.sub.Age + r.sub.Level > 40",
             "r.sub.Name != 'bob' and r.sub.Level * 2 == 4"]
    rows = [["p", rng.choice(rules), rng.choice(OBJS[:3]), rng.choice(ACTS)] for _ in range(6)]
    for _ in range(n_req):
        cases.append({"name": "abac_eval", "model": MODELS["abac_eval"], "policy": _lines(rows),
                      "request": [_person(rng), rng.choice(OBJS[:3]), rng.choice(ACTS)]})
    rows = [["p", rng.choice(USERS), rng.choice(["eng/read", "ops/write", "hr/list", "x"]), rng.choice(ACTS)]
            for _ in range(6)]
    for _ in range(n_req):
        cases.append({"name": "abac_expr", "model": MODELS["abac_expr"], "policy": _lines(rows),
                      "request": [_person(rng), {"Locked": rng.random() < 0.2}, rng.choice(ACTS + ["delete"])]})
    return cases


def gen_multi(rng, n_req):
    rows = [["p", rng.choice(USERS + ROLES), rng.choice(OBJS[:3]), rng.choice(ACTS)] for _ in range(6)]
    rows += [["p2", rng.choice(USERS + ROLES), rng.choice(["data*", "tool.*", "data1", "*"]),
              rng.choice(["allow", "deny"])] for _ in range(6)]
    policy = _lines(rows + _role_links(rng, USERS, ROLES, 5))
    cases = []
    for _ in range(n_req):
        if rng.random() < 0.5:
            r = rng.choice(rows[:6])
            cases.append({"name": "multi", "model": MODELS["multi"], "policy": policy,
                          "request": [rng.choice(USERS), r[2], r[3]]})
        elif rng.random() < 0.3:
            cases.append({"name": "multi", "model": MODELS["multi"], "policy": policy,
                          "request": [rng.choice(USERS), rng.choice(OBJS), rng.choice(ACTS)]})
        else:
            cases.append({"name": "multi_m2", "model": MODELS["multi"], "policy": policy, "matcher": "m2",
                          "request": [rng.choice(USERS), rng.choice(OBJS)]})
    return cases


def _bias(rng, cases, policy_rows, width, take_sub=False):
    """Rewrites about half of the requests to reuse (obj, act, …) of a random policy row, so matches are common."""
    rows = [r for r in policy_rows if r and r[0] == "p" and len(r) - 1 >= width]
    for c in cases:
        if rows and rng.random() < 0.5 and not isinstance(c["request"][0], dict):
            r = rng.choice(rows)[1:]
            req = list(c["request"])
            # keep the subject, take the remaining positions from the row
            if take_sub and rng.random() < 0.7:
                req[0] = r[0]
            for i in range(1, len(req)):
                if i < len(r) and isinstance(req[i], str) and not r[i].startswith(("/", "(", "^", "*")):
                    req[i] = r[i]
            c["request"] = req
    return cases


def random_cases(seed=20261126):
    rng = random.Random(seed)
    cases = []
    for _ in range(4):
        cases += gen_simple(rng, "acl", 8, 15, OBJS[:3], OBJS[:3])
        cases += gen_simple(rng, "acl_root", 6, 10, OBJS[:3], OBJS[:3])
        cases += gen_restful(rng, 20)
        cases += gen_keymatch(rng, "keymatch", ["/alice_data/*", "/api/*", "/api/users/*", "*", "/files/a.txt"], 10)
        cases += gen_keymatch(rng, "keymatch3", ["/api/users/{id}", "/api/{x}/{y}", "/pen/{id}/pen/{id}",
                                                  "/files/*", "/alice_data/{r}"], 10)
        cases += gen_keymatch(rng, "keymatch4", ["/pen/{id}/pen/{id}", "/api/users/{id}", "/api/{a}/{b}/posts",
                                                  "/files/*"], 10)
        cases += gen_keymatch(rng, "keymatch5", ["/api/users/{id}", "/search", "/api/*", "/files/{f}"], 10)
        cases += gen_keymatch(rng, "glob", ["/files/*", "/api/*/*", "/api/users/?2", "/files/*.txt",
                                             "/alice_data/*", "/*", "/api/items/[0-9]", "/api/items/[!0-9]*"], 10)
        cases += gen_rbac(rng, "rbac", 20)
        cases += gen_rbac_resource(rng, 15)
        cases += gen_rbac_domain(rng, 20)
        cases += gen_rbac(rng, "rbac_deny", 20, eft=True)
        cases += gen_rbac(rng, "deny_override", 15, eft=True)
        cases += gen_rbac(rng, "priority", 20, eft=True, priority=True, deny_bias=0.5)
        cases += gen_rbac(rng, "subject_priority", 15, eft=True, deny_bias=0.5)
        cases += gen_subject_priority_dom(rng, 10)
        cases += gen_ip(rng, 12)
        cases += gen_abac(rng, 10)
        cases += gen_multi(rng, 12)
    return cases


def _m(matcher, head=HEAD3 + "p = sub, obj, act\n", effect=ALLOW, extra=""):
    return head + extra + effect + "[matchers]\nm = " + matcher + "\n"


def hand_cases():
    """Hand-written cases for each feature and error path: (case, expected_kind or None)."""
    acl = MODELS["acl"]
    c = []

    def add(name, model, policy, request, **kw):
        c.append(dict(name=name, model=model, policy=policy, request=request, **kw))

    # Comments, blank lines, continuation lines in the model; comments and blanks in the CSV.
    add("model_comments", "# a model\n[request_definition]\nr = sub, obj, act ; not a comment here\n\n"
        .replace(" ; not a comment here", "") + "[policy_definition]\n; another comment\np = sub, obj, act\n"
        + ALLOW + "[matchers]\nm = r.sub == p.sub && \\\n    r.obj == p.obj \\\n  && r.act == p.act # trailing\n",
        "# comment\n\np, alice, data1, read\n   \np, bob, data2, write\n", ["bob", "data2", "write"])
    add("csv_parens", _m("eval(p.sub) && r.obj == p.obj", head=HEAD3 + "p = sub, obj\n"),
        "p, r.sub.Dept in ('eng', 'ops'), data1\n", [{"Dept": "ops"}, "data1", "read"])
    add("csv_spaces", acl, "p,alice ,  data1,read\n", ["alice", "data1", "read"])
    add("empty_policy_allow", _m("r.sub == 'root'"), "", ["root", "x", "y"])
    add("empty_policy_deny", _m("r.sub == 'root'"), "", ["bob", "x", "y"])
    add("empty_policy_deny_override", _m("r.sub == p.sub", effect="[policy_effect]\ne = !some(where (p.eft == deny))\n",
                                         head=HEAD3 + "p = sub, obj, act, eft\n"), "", ["bob", "x", "y"])
    add("g_self", MODELS["rbac"], "p, alice, data1, read\n", ["alice", "data1", "read"])
    # A role chain longer than the hierarchy limit is cut off.
    chain = "".join(f"g, u{i}, u{i + 1}\n" for i in range(12))
    for k in (8, 9, 10, 11):
        add(f"role_depth_{k}", MODELS["rbac"], f"p, u{k}, data1, read\n" + chain, ["u0", "data1", "read"])
    add("role_cycle", MODELS["rbac"], "p, b, data1, read\ng, a, b\ng, b, a\n", ["a", "data1", "read"])
    add("domain_other", MODELS["rbac_domain"], "p, admin, t1, data1, read\ng, alice, admin, t2\n",
        ["alice", "t1", "data1", "read"])
    add("domain_extra_field", MODELS["rbac_domain"], "p, admin, t1, data1, read\ng, alice, admin, t1, extra\n",
        ["alice", "t1", "data1", "read"])
    add("priority_strings", MODELS["priority"].replace("priority, sub", "priority, sub"),
        "p, b, alice, data1, read, deny\np, a, alice, data1, read, allow\n", ["alice", "data1", "read"])
    add("priority_numeric_order", MODELS["priority"],
        "p, 10, alice, data1, read, deny\np, 9, alice, data1, read, allow\n", ["alice", "data1", "read"])
    add("eft_other", MODELS["rbac_deny"], "p, alice, data1, read, maybe\n", ["alice", "data1", "read"])
    add("no_eft_priority", _m("r.sub == p.sub", effect="[policy_effect]\ne = priority(p.eft) || deny\n"),
        "p, alice, data1, read\n", ["alice", "data1", "read"])
    # Expression language details.
    exprs = [
        ("r.sub == 'a' or r.obj == 'b'", ["x", "b", "c"]),
        ("not r.sub == 'a'", ["a", "b", "c"]),
        ("!r.sub == 'a'", ["b", "b", "c"]),
        ("r.sub + r.obj == 'ab'", ["a", "b", "c"]),
        ("1 + 2 * 3 == 7 && 7 / 2 == 3.5 && 7 % 3 == 1 && -7 % 3 == 2", ["a", "b", "c"]),
        ("r.sub in ('a', 'b')", ["b", "x", "y"]),
        ("r.sub not in ('a', 'b')", ["b", "x", "y"]),
        ("r.sub in ['a', 'b'] && r.obj in ('x',)", ["a", "x", "y"]),
        ("'lic' in r.sub", ["alice", "x", "y"]),
        ("r.sub.Age >= 18 && r.sub.Age < 65", [{"Age": 18}, "x", "y"]),
        ("r.sub.Age > 17.5", [{"Age": 18}, "x", "y"]),
        ("1 < r.sub.Age < 10", [{"Age": 18}, "x", "y"]),
        ("r.sub.Address.City == 'Oslo'", [{"Address": {"City": "Oslo"}}, "x", "y"]),
        ("r.sub.Missing == 1", [{"Age": 1}, "x", "y"]),
        ("r.sub.Age > 'x'", [{"Age": 1}, "x", "y"]),
        ("r.sub + 1 == 2", ["a", "x", "y"]),
        ("r.sub == 1", ["1", "x", "y"]),
        ("r.sub.Flag", [{"Flag": True}, "x", "y"]),
        ("r.sub.Flag == True", [{"Flag": True}, "x", "y"]),
        ("r.sub.N", [{"N": 1}, "x", "y"]),
        ("r.sub.F", [{"F": 1.5}, "x", "y"]),
        ("r.sub.Tags[0] == 'a'", [{"Tags": ["a"]}, "x", "y"]),
        ("'a' in r.sub.Tags", [{"Tags": ["a", "b"]}, "x", "y"]),
        ("r.sub == \"it's\"", ["it's", "x", "y"]),
        ("keyGet(r.obj, '/api/*') == 'users/1'", ["a", "/api/users/1", "y"]),
        ("keyGet2(r.obj, '/api/:res/:id', 'id') == '7'", ["a", "/api/items/7", "y"]),
        ("keyGet3(r.obj, '/api/{res}/{id}', 'res') == 'items'", ["a", "/api/items/7", "y"]),
        ("keyMatch2(r.obj, '/api/:id/*')", ["a", "/api/x/y/z", "y"]),
        ("keyMatch2(r.obj, '/file.txt')", ["a", "/fileXtxt", "y"]),
        ("regexMatch(r.obj, 'b+')", ["a", "abbbc", "y"]),
        ("regexMatch(r.obj, '[')", ["a", "abbbc", "y"]),
        ("ipMatch(r.sub, '10.0.0.0/8')", ["300.1.1.1", "x", "y"]),
        ("ipMatch(r.sub, 'not-an-ip')", ["10.0.0.1", "x", "y"]),
        ("globMatch(r.obj, '*.txt')", ["a", "b.txt", "y"]),
        ("globMatch(r.obj, '/a/*a.txt')", ["a", "/a/b.txt", "y"]),
        ("timeMatch('2000-01-01 00:00:00', '2999-12-31 23:59:59')", ["a", "x", "y"]),
        ("timeMatch('_', '2001-01-01 00:00:00')", ["a", "x", "y"]),
        ("timeMatch('2999-01-01 00:00:00', '_')", ["a", "x", "y"]),
        ("timeMatch('2001-02-30 00:00:00', '_')", ["a", "x", "y"]),
        ("timeMatch('yesterday', '_')", ["a", "x", "y"]),
        ("unknownFn(r.sub)", ["a", "x", "y"]),
        ("r.sub ==", ["a", "x", "y"]),
        ("r.nope == 'a'", ["a", "x", "y"]),
    ]
    for i, (m, req) in enumerate(exprs):
        add(f"expr_{i}", _m(m), "p, a, b, c\n", req)
    # Row index: reversed equality, non-string request values, a failing operand before the equality.
    rev = MODELS["rbac"].replace("r.obj == p.obj", "p.obj == r.obj")
    add("index_reversed", rev, "p, admin, data1, read\ng, alice, admin\n", ["alice", "data1", "read"])
    add("index_int_value", MODELS["acl"], "p, alice, 1, read\n", ["alice", 1, "read"])
    add("index_object_value", MODELS["acl"], "p, alice, 1, read\n", ["alice", {"a": 1}, "read"])
    add("index_error_first", _m("r.sub.Age > 1 && r.obj == p.obj"), "p, a, b, c\np, a, x, c\n",
        [{"Age": "old"}, "x", "c"])
    add("index_error_after", _m("r.obj == p.obj && r.sub.Age > 1"), "p, a, b, c\np, a, x, c\n",
        [{"Age": "old"}, "zzz", "c"])
    add("index_regex_before", _m("regexMatch(r.sub, p.sub) && r.obj == p.obj"), "p, [, b, c\np, a, x, c\n",
        ["a", "x", "c"])
    # Requests of the wrong size; load errors.
    add("request_size", acl, "p, alice, data1, read\n", ["alice", "data1"])
    add("policy_size", acl, "p, alice, data1\n", ["alice", "data1", "read"])
    add("model_no_equals", acl.replace("p = sub, obj, act", "p sub, obj, act"), "p, a, b, c\n", ["a", "b", "c"])
    add("model_bad_effect", acl.replace("some(where (p.eft == allow))", "some(where (p.eft == maybe))"),
        "p, a, b, c\n", ["a", "b", "c"])
    add("model_no_matcher", acl.split("[matchers]")[0], "p, a, b, c\n", ["a", "b", "c"])
    add("g_too_few", MODELS["rbac"], "p, a, b, c\ng, alice\n", ["alice", "b", "c"])
    return c
