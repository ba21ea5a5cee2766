"""Run health (smile_ref.run.health): each trigger on constructed runs, the warning and strict=True end to end,
and no warning from healthy default runs of every registered sampler.

The constructed-run tests are deterministic.  The healthy-run tests are fixed-seed runs whose health
statistics are far from every threshold (measured: rejection fractions <= 4 % against 20 %, median
dE^2/d <= 1e-4 against 0.1, no non-finite value, no frozen chain), so they do not fail by chance.
"""
from __future__ import annotations

import doctest
import warnings

import numpy as np
import pytest

import smile_ref
import smile_ref.run.health as health_mod
from smile_ref import gradients, targets
from smile_ref.errors import RunHealthError, RunHealthWarning
from smile_ref.run.health import run_health
from smile_ref.tuners.base import Tuner

from .test_faults import TARGET, healthy_options


def _info(T=200, n=4, **over):
    info = {"rejected": np.zeros((T, n), bool), "nonfinite": np.zeros((T, n), bool),
            "step_size": np.full((T, n), 0.1)}
    info.update(over)
    return info


def _samples(n=4, m=200, d=3, seed=0):
    return np.random.default_rng(seed).standard_normal((n, m, d))


def test_doctests():
    assert doctest.testmod(health_mod, raise_on_error=False).failed == 0


def test_healthy_constructed_run():
    h = run_health(_samples(), _info(), sampler="sgld", n_warmup=0)
    assert h.ok and h.problems == () and not h.frozen.any()
    assert h.rhat_max is not None and h.rhat_max < 1.1 and h.ess_min > 100
    assert "ok" in str(h) and str(h) == h.summary()


def test_rejection_fraction_counts_sampling_steps_only():
    info = _info(T=300)
    info["rejected"][:100] = True  # warm-up: all rejected
    assert run_health(_samples(), info, sampler="smile", n_warmup=100).ok
    info["rejected"][100:150, 0] = True  # 25 % of the sampling steps of chain 0
    h = run_health(_samples(), info, sampler="smile", n_warmup=100)
    assert not h.ok and h.rejection_fraction.tolist() == [0.25, 0, 0, 0]
    assert "25.0 % of sampling steps rejected" in h.message() and "1/4 chains" in h.message()
    assert "tuner='mclmc'" in h.message()  # the SMILE remedy


def test_few_rejections_in_a_short_run_do_not_warn():
    info = _info(T=8)
    info["rejected"][:2, 0] = True  # 25 % but 2 steps
    assert run_health(_samples(m=8), info, sampler="smile", n_warmup=0).ok


def test_step_size_floor_and_collapse():
    eps = np.full((200, 4), 0.1)
    eps[150:, 1] = 1e-8
    h = run_health(_samples(), _info(step_size=eps), sampler="smile", n_warmup=0)
    assert h.at_floor.tolist() == [False, True, False, False]
    assert "floor (1e-08) in 1/4 chains" in h.message()
    eps = np.full((200, 4), 1e-3)
    eps[-1, 2] = 1e-9 * 0.5  # a shrink by more than 1e6, whatever the floor
    assert run_health(_samples(), _info(step_size=eps), sampler="x", n_warmup=0).at_floor[2]
    fixed = np.full((200, 4), 1e-9)  # a fixed small step is no collapse
    assert not run_health(_samples(), _info(step_size=fixed), sampler="x", n_warmup=0).at_floor.any()


def test_frozen_by_positions_and_by_rejections():
    s = _samples()
    s[0, -20:] = s[0, -20]  # last 20 = max(10, 10 %) draws identical
    h = run_health(s, _info(), sampler="sgld", n_warmup=0)
    assert h.frozen.tolist() == [True, False, False, False] and "1/4 chains frozen" in h.message()
    s = _samples()
    s[0, -19:] = s[0, -19]  # 19 identical: not frozen
    assert run_health(s, _info(), sampler="sgld", n_warmup=0).ok
    info = _info()
    info["rejected"][-20:, 3] = True
    h = run_health(_samples(), info, sampler="sgld", n_warmup=0)
    assert h.frozen[3] and not h.frozen[:3].any()


def test_iasg_window_means_are_not_frozen():
    s = _samples(m=100)
    s[:, 50:] = s[:, 50:51]  # one window mean repeated
    info = _info(T=100, window_end=np.zeros((100, 4), bool))
    info["window_end"][49] = True
    assert run_health(s, info, sampler="constant_sgd", n_warmup=0).ok
    del info["window_end"]
    assert not run_health(s, info, sampler="constant_sgd", n_warmup=0).ok


def test_nonfinite_steps_and_draws():
    info = _info(T=300)
    info["nonfinite"][10, 0] = True  # warm-up only: reported, not a problem
    h = run_health(_samples(), info, sampler="mclmc", n_warmup=100)
    assert h.ok and h.n_nonfinite.tolist() == [1, 0, 0, 0] and h.n_nonfinite_sampling.sum() == 0
    info["nonfinite"][150, 2] = True
    h = run_health(_samples(), info, sampler="mclmc", n_warmup=100)
    assert not h.ok and "1 sampling steps met non-finite values" in h.message()
    s = _samples()
    s[1, 5, 0] = np.nan
    h = run_health(s, _info(), sampler="mclmc", n_warmup=0)
    assert h.n_nonfinite_samples.tolist() == [0, 1, 0, 0] and "recorded draws are non-finite" in h.message()
    assert h.rhat_max is None  # not computed on non-finite draws


def test_energy_error_explosion():
    rs = np.random.default_rng(1)
    dE = 0.01 * rs.standard_normal((200, 4))
    assert run_health(_samples(), _info(energy_error=dE), sampler="smile", n_warmup=0).ok
    big = dE.copy()
    big[:, 0] = rs.standard_normal(200)  # median dE^2/d ~ 0.45 / 3 > 0.1
    h = run_health(_samples(), _info(energy_error=big), sampler="smile", n_warmup=0)
    assert not h.ok and "energy error explodes in 1/4" in h.message()
    spikes = dE.copy()
    spikes[::50, 1] = 1e3  # 2 % of the steps with dE^2/d > 100
    h = run_health(_samples(), _info(energy_error=spikes), sampler="smile", n_warmup=0)
    assert not h.ok and h.energy_spike_fraction[1] == pytest.approx(0.02)
    assert run_health(_samples(), _info(energy_error=big), sampler="smile", n_warmup=0, check_energy=False).ok


def test_chain_problems_labels():
    info = _info()
    info["rejected"][:, 0] = True
    h = run_health(_samples(), info, sampler="sgld", n_warmup=0)
    assert h.chain_problems(0) == ["100.0 % rejected", "frozen"] and h.chain_problems(1) == []


class _Halving:
    """A Tuner that halves the step size at every warm-up step (drives it to any floor)."""

    @staticmethod
    def make():
        return Tuner(lambda params: 0, lambda st, p, inp: (p._replace(step_size=p.step_size * 0.5), st), "halving")


def test_run_chains_warns_once_and_strict_raises():
    t = targets.Gaussian.diagonal(np.linspace(0.5, 2.0, 4))
    kw = dict(n_chains=2, n_steps=200, burn_in=40, seed=0, progress=False, step_size=0.1,
              gradient=gradients.AdditiveNoise(t, 1.0), tuner=_Halving.make())
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        res = smile_ref.run_chains("smile", t, **kw)
    health = [w for w in rec if issubclass(w.category, RunHealthWarning)]
    assert len(health) == 1 and not res.health.ok and res.health.at_floor.all()
    assert "step size reached the floor" in str(health[0].message)
    assert health[0].filename == __file__  # points at the caller of run_chains
    with pytest.raises(RunHealthError, match="floor"):
        smile_ref.run_chains("smile", t, strict=True, **kw)
    with pytest.raises(TypeError, match="strict must be a bool"):
        smile_ref.run_chains("smile", t, strict="yes", **kw)


def _healthy_gaussian_kwargs(name):
    """Default settings of each sampler on a 4-d diagonal Gaussian (GLM-only samplers on a linear regression)."""
    t = targets.Gaussian.diagonal(np.linspace(0.5, 2.0, 4))
    noise = gradients.AdditiveNoise(t, 1.0)
    kw = {
        "mclmc": dict(burn_in=500),
        "smile": dict(step_size=0.1, burn_in=200, gradient=noise),
        "psmile": dict(step_size=0.1, burn_in=200, gradient=noise),
        "sgld": dict(step_size=0.05),
        "psgld": dict(step_size=1e-3, gradient=noise),
        "sghmc": dict(step_size=0.01, alpha=0.1),
        "sghmc_adaptive": dict(step_size=0.01, alpha=0.1, burn_in=300, gradient=noise),
    }.get(name)
    if kw is None:  # bnp_sgld, constant_sgd need a GLM with data
        return TARGET, healthy_options(name)
    return t, kw


@pytest.mark.parametrize("name", smile_ref.samplers.available())
def test_healthy_default_runs_emit_nothing(name):
    t, kw = _healthy_gaussian_kwargs(name)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RunHealthWarning)
        res = smile_ref.run_chains(name, t, n_chains=4, n_steps=1000, seed=0, progress=False, **kw)
    assert res.health.ok, res.health.summary()
    assert res.health.rejection_fraction.max() <= 0.05


@pytest.mark.parametrize("name", ["smile", "psmile"])
def test_smile_exact_gradient_with_mclmc_tuner_is_healthy(name):
    t = targets.Gaussian.diagonal(np.linspace(0.5, 2.0, 4))
    with warnings.catch_warnings():
        warnings.simplefilter("error", RunHealthWarning)
        res = smile_ref.run_chains(name, t, n_chains=4, n_steps=1000, burn_in=300, seed=0, step_size=0.1,
                                   tuner="mclmc", progress=False)
    assert res.health.ok


def test_energy_limit_scales_with_the_tuners_own_target():
    """dE with dE^2/d = 0.33 at every step (MILE's measured median on the UCI MLPs) is an explosion for a tuner
    targeting 5e-4 (limit 0.1) but not for MILE, whose warm-up ends at Var[dE]/d = 0.1 (limit 200 x 0.1 = 20);
    10 x that target still fires.  The driver reads the target from the tuner."""
    n, m, d = 2, 100, 4
    rng = np.random.default_rng(0)
    samples = rng.normal(size=(n, m, d))
    for level, target, bad in [(0.33, None, True), (0.33, 0.1, False), (200.0, 0.1, True), (0.05, 5e-4, False)]:
        info = {"rejected": np.zeros((m, n), bool), "step_size": np.full((m, n), 0.1),
                "energy_error": np.full((m, n), np.sqrt(level * d))}
        h = run_health(samples, info, sampler="mclmc", n_warmup=0, energy_var_target=target)
        assert (not h.ok) == bad, (level, target, h.problems)
        assert h.energy_limit == (0.1 if target is None else max(0.1, 200 * target))
    from smile_ref.tuners.mclmc import mclmc_tuner

    assert mclmc_tuner().energy_var_target == 5e-4
    assert mclmc_tuner(energy_var_schedule="mile").energy_var_target == 0.1
