"""Differential test: the Rego engine (rego-eval) against regopy (rego-cpp) on generated and hand-written cases.

Each case is answered by regopy at test time, unless it carries "expect": those are the listed exceptions where
the reference is known to differ from OPA's documented semantics (each has its reason), and the expectation is
OPA's answer computed by hand.
"""
import json

import pytest

from conftest import run_eval
from opa_cases import all_cases

import regopy  # noqa: E402  (a missing reference engine fails the suite: a skipped differential test proves nothing)


def reference(case: dict) -> dict:
    """regopy's answer: {"value": v} | {"undefined": True} | {"error": True}."""
    r = regopy.Interpreter()
    try:
        for i, text in enumerate(case["modules"]):
            r.add_module(f"m{i}.rego", text)
        if "data" in case:
            r.add_data_json(json.dumps(case["data"]))
        if "input" in case:
            r.set_input_term(json.dumps(case["input"]))
        # regopy reports a query whose value is false as undefined: bind it to a variable instead.
        out = r.query("r := " + case["query"])
    except Exception:
        return {"error": True}
    if not out.ok():
        return {"error": True}
    if str(out).strip() == "undefined":
        return {"undefined": True}
    return {"value": json.loads(out.binding("r").json())}


def canon(v):
    """JSON with type tags, so that 1 == 1.0 but True != 1."""
    if isinstance(v, bool):
        return ["b", v]
    if isinstance(v, (int, float)):
        return ["n", float(v)]
    if isinstance(v, list):
        return ["a", [canon(x) for x in v]]
    if isinstance(v, dict):
        return ["o", sorted((k, canon(x)) for k, x in v.items())]
    return ["s", v]


def same(ours: dict, ref: dict) -> bool:
    if "error" in ref or "error" in ours:
        return "error" in ref and "error" in ours
    if "undefined" in ref or "undefined" in ours:
        return "undefined" in ref and "undefined" in ours
    return canon(ours["value"]) == canon(ref["value"])


def test_rego_matches_reference():
    cases = all_cases()
    assert len(cases) >= 500
    ours = run_eval("rego-eval", [{k: c[k] for k in ("modules", "data", "input", "query") if k in c} for c in cases])
    mismatches = []
    exceptions = 0
    for case, answer in zip(cases, ours):
        if "expect" in case:
            exceptions += 1
            ref = case["expect"]
        else:
            ref = reference(case)
        if not same(answer, ref):
            mismatches.append((case, answer, ref))
    report = []
    for case, answer, ref in mismatches[:5]:
        report.append(
            f"--- {case['name']}\n" + "\n".join(case["modules"]) + f"\ninput: {json.dumps(case.get('input'))}"
            f"\ndata: {json.dumps(case.get('data'))}\nquery: {case['query']}\nours: {json.dumps(answer)}"
            f"\nreference: {json.dumps(ref)}" + (f"\n(exception: {case['reason']})" if "reason" in case else ""))
    print(f"{len(cases)} cases, {exceptions} listed exceptions, {len(mismatches)} mismatches")
    assert not mismatches, f"{len(mismatches)} of {len(cases)} cases differ:\n" + "\n".join(report)


def test_load_errors_name_line_and_column():
    bad = [
        ("package t\nimport rego.v1\nx := \n", "3:"),
        ("package t\nimport rego.v1\na.b.c := 1\n", "unsupported"),
        ("package t\nimport rego.v1\nx := nosuch(1)\n", "3:6"),
        ("package t\nimport rego.v1\nx := 1 ^ 2\n", "3:8"),
    ]
    answers = run_eval("rego-eval", [{"modules": [text], "query": "data.t.x"} for text, _ in bad])
    for (text, want), answer in zip(bad, answers):
        assert "error" in answer and want in answer["error"], (text, answer)
