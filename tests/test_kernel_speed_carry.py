"""benchmarks/kernel_speed.py's carried-direction measurement on tiny sizes.

Deterministic: a McLachlan step whose first B reuses the previous step's direction skips exactly five
full-array NumPy calls (``|g|``, the row ``max``, two divisions and the ``vecdot`` of ``e``), counted by
the script's ``CountingArray``; the timings are only checked to exist (no failure probability).
"""
import math
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).parents[1] / "benchmarks"))

import kernel_speed as ks  # noqa: E402


def test_carried_direction_saves_five_passes_per_step():
    out = ks.carried_direction([(3, 5, 40), (1, 6, 40)], reps=1, passes_case=(16, 40), log=lambda *_: None)
    assert out["passes"]["plain"] - out["passes"]["carry"] == 5
    for row in out["timing"]:
        assert row["plain_us_per_step"] > 0 and math.isfinite(row["ratio"])
    assert "carried" in ks.render({"machine": "m", "date": "d", "minimal": [], "carried_direction": out,
                                   "passes": {"n_chains": 1, "d": 2, "passes_per_step": 1.0, "counts": {}}})
