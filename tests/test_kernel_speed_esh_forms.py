"""benchmarks/kernel_speed.py's robust-vs-lean ESH measurement on tiny sizes.

Deterministic pass counts (the script's ``CountingArray``): with the direction carried, a McLachlan step
of the robust form makes 34 full-array calls in its three B's (8 + 13 + 13) and the lean form 15
(5 + 5 + 5), so the integrator step differs by 19; one ESH call is 13 (robust) and 6 (lean: ``h . h``,
``u . u``, ``u . h``, two products and a sum).  Timings are only checked to exist (no failure probability).
"""
import math
import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).parents[1] / "benchmarks"))

import kernel_speed as ks  # noqa: E402


def test_esh_forms_passes_and_timing_rows():
    if not pathlib.Path(ks.DEFAULT_MINIMAL).is_file():
        pytest.skip("minimal loop not available")
    minimal = ks.load_minimal(ks.DEFAULT_MINIMAL)
    out = ks.esh_forms(minimal, [(3, 5, 20), (1, 6, 20)], reps=1, passes_case=(16, 40), log=lambda *_: None)
    p = out["passes"]
    assert p["step_robust"] - p["step_lean"] == 19
    assert (p["esh_call_robust"], p["esh_call_lean"]) == (13, 6)
    for row in out["timing"]:
        assert row["step_lean_us"] > 0 and math.isfinite(row["esh_lean_ratio"])
    md = ks.render({"machine": "m", "date": "d", "minimal": [], "esh_forms": out})
    assert "ESH forms" in md and "step_lean" in md
