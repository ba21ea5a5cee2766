"""Tests of the scoring of ``validation/sg_mclmc_regime_map.py`` (the SG-MCLMC bias regime map).

Deterministic (failure probability 0): the pass rule ``max(4 SE, 3 %)`` per coordinate and the coverage rule
``|sim - pred| <= err + 3 SE`` per entry on synthetic per-chain estimates with known means and SEs; the cell
matrix; the markdown table.
"""
from __future__ import annotations

import numpy as np

from validation import sg_mclmc_regime_map as rm


def _est(mean, se, M=400, seed=0):
    """Per-chain estimates ``(M, d, d)`` whose sample mean and SE are exactly ``mean`` and ``se``."""
    d = mean.shape[0]
    z = np.random.default_rng(seed).standard_normal((M, d, d))
    z = (z - z.mean(0)) / z.std(0, ddof=1)
    z = (z + np.swapaxes(z, 1, 2)) / 2
    z = (z - z.mean(0)) / z.std(0, ddof=1)
    return mean + z * se * np.sqrt(M)


def test_compare_pass_and_cover_rules():
    St = np.diag([0.5, 1.0, 1.5])
    C = np.diag([0.6, 1.0, 1.6])
    se = 0.01 * np.ones((3, 3))
    # 2.5 % off on x1 with SE 1 % of C_11 (1.5 SE): within 3 % (pass) and covered by a zero stated error (<= 3 SE)
    r = rm.compare(C, 0.0, _est(C + np.diag([0.015, 0.0, 0.0]), se), St)
    assert r["passes"] and r["covered"] and abs(r["max_rel_dev_diag"] - 0.025) < 1e-9
    # 8.3 % off (5 SE > 4 SE and > 3 %): fails both; a stated error of 0.03 covers it (2 SE left), still fails
    est = _est(C + np.diag([0.05, 0.0, 0.0]), se)
    r = rm.compare(C, 0.0, est, St)
    assert not r["passes"] and not r["covered"] and abs(r["max_abs_z_diag"] - 5.0) < 1e-9
    r = rm.compare(C, 0.03, est, St)
    assert r["covered"] and not r["passes"]
    # with twice the SE, 4 SE = 0.08 > 0.05: passes
    assert rm.compare(C, 0.0, _est(C + np.diag([0.05, 0.0, 0.0]), 2 * se), St)["passes"]
    assert abs(r["pred_ratio"][0] - 1.2) < 1e-12 and r["max_abs_z_target"] > 8


def test_cells_and_table():
    names = [c["name"] for c in rm.cells()]
    assert len(names) == len(set(names)) == 4 * 3 * 2 + 2
    for c in rm.cells():
        St, S = rm.case(c["d"], c["rate"], c["eps"], c["rotated"])
        r = rm.regime_numbers(St, S, c["eps"])
        assert abs(r["rate"] - c["rate"]) < 1e-9 and r["kick"] <= 0.31
    St = np.diag([0.5, 1.0, 1.5])
    rec = dict(rm.cells()[0], rate_sigma_min=0.065, kick=0.08, warned=True)
    rec.update(rm.compare(St, 0.01, _est(St, 0.01 * np.ones((3, 3))), St))
    md = rm.markdown_table([rec])
    assert "d3-weak-aligned" in md and "1/1 cells pass" in md
