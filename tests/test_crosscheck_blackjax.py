"""Small run of ``python -m validation.crosscheck_blackjax``.

Skipped where jax/blackjax are not installed; CI installs the 'crosscheck' extra (README's test
command), so it runs there.
"""
import importlib

import numpy as np
import pytest

jax = pytest.importorskip("jax")
pytest.importorskip("blackjax")


def _mod():
    return importlib.import_module("validation.crosscheck_blackjax")


def test_deterministic_agrees_with_blackjax():
    """20 float64 steps of leapfrog and McLachlan from identical (x, u, eps), no refresh, on the
    Gaussian, funnel and logistic regression: positions, velocities and cumulative kinetic-energy
    change agree with BlackJAX to 1e-12 (deterministic; observed ~1e-14)."""
    jax.config.update("jax_enable_x64", True)
    rows = _mod().deterministic(d=5, n_chains=2, n_steps=20)
    assert len(rows) == 6
    for r in rows:
        assert r["max_dev_any"] < 1e-12, r


def test_main_skips_cleanly_or_runs(tmp_path):
    """The CLI returns 0 and writes JSON + Markdown (deterministic part only, 5 steps)."""
    assert _mod().main(["--steps", "5", "--skip-stochastic", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "blackjax_crosscheck.json").exists()
    assert (tmp_path / "blackjax_crosscheck.md").read_text().startswith("| target")


def test_sgld_sghmc_match_exact_stationary_variance():
    """Small SGLD/SGHMC run (ours and BlackJAX's diffusions, additive gradient noise, d = 4): each
    E[x_i^2] agrees with the exact stationary variance of its own discretisation (discrete Lyapunov
    equation, not computed by the code under test) at |z| < 4.5 with batch-means SEs; 16 z-tests,
    Bonferroni: failure probability < 16 * 6.8e-6 ~ 1e-4 (fixed seed, so deterministic)."""
    from validation._crosscheck_sgmcmc import sgmcmc

    jax.config.update("jax_enable_x64", True)

    rows = sgmcmc(n_chains=8, burn_in=1000, n_steps=4000)
    assert len(rows) == 8
    for r in rows:
        assert abs(r["z_ours"]) < 4.5 and abs(r["z_bj"]) < 4.5, r
