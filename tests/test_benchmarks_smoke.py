"""Smoke test of benchmarks/blackjax_compare.py and benchmarks/step_anatomy.py on tiny sizes.

The benchmark scripts are run by hand; this test only keeps them from rotting (the functions run
and return the documented keys).  The one numerical assertion is deterministic: the ESH-update
variant proposed in docs/performance.md is bit-identical to smile_ref's ``_esh_core`` on random and
edge-case rows (failure probability 0: fixed seed, exact comparison).  The BlackJAX part is skipped
without jax/blackjax.
"""
import math
import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).parents[1] / "benchmarks"))

import blackjax_compare as bc  # noqa: E402
import step_anatomy as sa  # noqa: E402


def test_ours_columns_and_floor():
    row = bc.compare_case(2, 10, budget=0.0, max_calls=3, with_jax=False)
    for k in ("ours_grad", "ours_mclmc", "ours_smile"):
        assert row[k] > 0 and math.isfinite(row[k]), k
    assert row["ours_mclmc_rejected"] == 0 and row["ours_smile_rejected"] == 0
    rows, skipped = bc.compare((2,), (10, 10**9), 0.0, 3, max_state_gb=1.0, with_jax=False, log=lambda *_: None)
    assert [r["d"] for r in rows] == [10] and skipped[0]["d"] == 10**9
    assert "| 2 | 10 |" in bc.compare_table(rows)
    fl = sa.bytes_floor(64, 10**6, {"add_out_gbps": 10.0, "ns_per_normal": 10.0}, {"ours_mclmc": 2.0})
    assert fl["mclmc"]["stagewise_gb"] == pytest.approx(35 * 0.512)
    assert fl["mclmc"]["ours_gap_vs_stagewise"] == pytest.approx(2.0 / (35 * 0.0512))


def test_anatomy_parts_tiny():
    b = sa.breakdown("mclmc", 2, 10, steps=3)
    assert b["calls_per_step"]["B: ESH velocity update"] == 3 and b["calls_per_step"]["rng normal draws"] == 2
    assert sa.breakdown("smile", 2, 10, steps=3)["calls_per_step"]["gradient (target)"] == 2
    import smile_ref.integrators.isokinetic as iso

    assert not hasattr(iso._esh_core, "__wrapped__") and iso._esh_core.__name__ == "_esh_core"  # restored
    p = sa.esh_proposal(2, 10, budget=0.0)
    assert p["bit_identical"] and p["random_cases"] == 40
    assert sa.step_worker("mclmc", 2, 10, 3)["min"] > 0
    m = sa.memory_worker(2, 10, 2, 4)
    assert m["first"]["steps"] == 2 and m["rest"]["steps"] == 2
    assert "B: ESH" in sa.markdown({"bandwidth": [sa.bandwidth(1000)], "overhead": [], "breakdown": [b],
                                    "profile_small": "", "esh_proposal": [p], "env": [], "memory": m,
                                    "floor": {}})


def test_blackjax_steppers_tiny():
    jax = pytest.importorskip("jax")
    pytest.importorskip("blackjax")
    call, compile_s = bc.bj_stepper("mclmc", 2, 10, 0.5, 3.0)  # the "integrator" kind shares the code path
    call()
    call()
    assert compile_s > 0
    assert jax.config.jax_enable_x64
