"""validation/mile_ess_rules.py end to end on its tiny budget (``--quick``), and its decision rule.

Deterministic (fixed seeds); no statistical tolerance is involved."""
from __future__ import annotations

import importlib.util
import json
import math
import pathlib

import pytest


def _script():
    path = pathlib.Path(__file__).resolve().parents[1] / "validation" / "mile_ess_rules.py"
    spec = importlib.util.spec_from_file_location("mile_ess_rules", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_quick_end_to_end(tmp_path):
    """All targets, both rules, two seeds: records, summary and Markdown written; the rule acts only on L (the
    tuned step sizes of the two rules are identical, their L differ); ``--from-records`` rebuilds the summary."""
    mod = _script()
    assert mod.main(["--quick", "--out", str(tmp_path)]) == 0
    doc = json.loads((tmp_path / "mile_ess_rules.json").read_text())
    recs = doc["records"]
    assert {(r["target"], r["seed"], r["rule"]) for r in recs} == {
        (t, s, r) for t in mod.TARGETS for s in (0, 1) for r in mod.RULES}
    for r in recs:
        W, S, n = mod.BUDGETS["quick"][r["target"]]
        assert (r["n_warmup"], r["n_samples"], r["n_chains"]) == (W, S, n)
        assert r["grads_per_step"] == 2.0  # McLachlan: two gradients per step
        assert all(math.isfinite(r[k]) and r[k] > 0 for k in ("eps", "L", "x_min", "x_med", "x2_min", "x2_med"))
        assert r["x_min"] <= r["x_med"]
    assert all(r["logdensity"] > 0 and 0 < r["pred_min"] <= r["pred_med"] for r in recs if r["target"] == "mlp")
    for name, s in doc["summary"].items():
        assert s["eps_identical"], name
        assert s["L_ratio"][0] != 1.0, name
        assert s["better"] in ("split", "blackjax", None)
        assert set(s["paired"]) >= set(mod.DECISION[name])
    md = (tmp_path / "mile_ess_rules.md").read_text()
    assert "## mlp" in md and "| x² min |" in md and "Better on all three targets" in md

    out2 = tmp_path / "again"
    assert mod.main(["--quick", "--out", str(out2), "--from-records", str(tmp_path / "records_partial.json")]) == 0
    assert json.loads((out2 / "mile_ess_rules.json").read_text())["summary"] == doc["summary"]


def test_decide():
    """A rule wins only when every decision metric favours it and one by more than 2 SE."""
    mod = _script()
    m = ("x_min", "x2_min")
    assert mod.decide({"x_min": (3.0, 1.0), "x2_min": (0.1, 1.0)}, m) == "split"
    assert mod.decide({"x_min": (-3.0, 1.0), "x2_min": (-0.1, 1.0)}, m) == "blackjax"
    assert mod.decide({"x_min": (3.0, 1.0), "x2_min": (-0.1, 1.0)}, m) is None  # mixed signs
    assert mod.decide({"x_min": (1.5, 1.0), "x2_min": (1.5, 1.0)}, m) is None  # nothing beyond 2 SE


def test_bad_arguments(tmp_path):
    mod = _script()
    with pytest.raises(SystemExit):
        mod.main(["--quick", "--out", str(tmp_path), "--seeds", "3"])  # one seed: no standard error
    with pytest.raises(SystemExit):
        mod.main(["--quick", "--out", str(tmp_path), "--targets", "rosenbrock"])
