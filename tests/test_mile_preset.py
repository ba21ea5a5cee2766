"""MILE's warm-up as the SMILE authors' code runs it: ``mclmc`` ``preset="authors"`` and the tuner options
behind it (``schedule_divisor``, ``moment_weight``, ``ess_method="blackjax"``).  All tests deterministic;
the step-for-step comparison with the authors' code is ``validation/crosscheck_authors.py``."""
from __future__ import annotations

import math

import numpy as np
import pytest

import smile_ref
from smile_ref.backend import get_backend, to_numpy
from smile_ref.gradients import Exact
from smile_ref.samplers import get
from smile_ref.samplers.mclmc import MILE_AUTHORS_TUNER
from smile_ref.targets import Gaussian
from smile_ref.tuners import TuneInput, TuningParams, mclmc_tuner
from smile_ref.tuners.mclmc import ess_blackjax

from .conftest import assert_backend

NP64 = get_backend("numpy")


def _ar1(T, d, phi, seed):
    e = np.random.default_rng(seed).standard_normal((T, d))
    x = np.zeros_like(e)
    for t in range(T):
        x[t] = (phi * x[t - 1] if t else 0.0) + e[t]
    return x


# BlackJAX 1.7.1's effective_sample_size(x[None]) of _ar1(T, 4, phi, T) (float64), recorded
BLACKJAX_ESS = {
    (9, 0.99): [8.12400317017754, 4.5408497847202405, 6.152909915634763, 4.252812294661034],
    (201, -0.3): [204.47614474013642, 407.2194421364716, 432.90918342835414, 307.55174358845375],
    (1000, 0.95): [36.728104986412774, 39.72227471342902, 34.68849288270848, 32.52241420394041],
}


def test_ess_blackjax_matches_recorded_blackjax():
    """Against values recorded from BlackJAX's own ``effective_sample_size`` (single chain): a series so short
    and correlated that the positive sequence runs to its end (T = 9), an odd length with negative correlation
    (ESS > T), a long strongly correlated one.  The slow test below recomputes them with BlackJAX."""
    for (T, phi), ref in BLACKJAX_ESS.items():
        np.testing.assert_allclose(ess_blackjax(_ar1(T, 4, phi, T)), ref, rtol=1e-12)


@pytest.mark.slow
@pytest.mark.parametrize("T,phi", [(9, 0.99), (201, -0.3), (25, 0.9), (200, 0.5), (50, 0.0), (4000, 0.99)])
def test_ess_blackjax_matches_blackjax(T, phi):
    jax = pytest.importorskip("jax")
    pytest.importorskip("blackjax")
    jax.config.update("jax_enable_x64", True)
    from blackjax.diagnostics import effective_sample_size

    x = _ar1(T, 4, phi, T)
    np.testing.assert_allclose(ess_blackjax(x), np.asarray(effective_sample_size(x[None])), rtol=1e-12)


def test_ess_blackjax_backend(backend):
    """Every backend gives the NumPy float64 values (float32 to 1e-4)."""
    x = _ar1(400, 3, 0.6, 1)
    out = ess_blackjax(backend.asarray(x))
    assert_backend(out, backend, (3,))
    tol = 1e-4 if backend.dtype == backend.xp.float32 else 1e-12
    np.testing.assert_allclose(to_numpy(out), ess_blackjax(x), rtol=tol)


def _drive(tuner, n, d, N, eps0, dE_law, positions, stop):
    params = TuningParams(NP64.full((n,), eps0), NP64.full((n,), math.sqrt(d)))
    state = tuner.init(params)
    used = []
    for t in range(stop):
        eps = to_numpy(params.step_size).astype(np.float64)
        x = positions(t)
        inp = TuneInput(np.asarray(dE_law(t, eps)), np.asarray(x), np.zeros(n, bool), t, N, d)
        params, state = tuner.update(state, params, inp)
        used.append(eps)
    return params, state, np.array(used)


def test_schedule_divisor_n12_plus_1():
    """With N_eff -> 1 the EMA is memoryless, so eps_{t+1} = eps_t (dE_t^2/(d V*(t)) + 1e-8)^{-1/6} exposes
    V*(t) = 0.5 - 0.4 min(t / (n1 + n2 + 1), 1) at every step of phases 1+2 (n1 + n2 = 90)."""
    n, d, N = 2, 3, 100
    z = np.random.default_rng(20).standard_normal((N, n))
    tuner = mclmc_tuner(num_effective_samples=1 + 1e-12, energy_var_schedule="mile", schedule_divisor="n12+1")
    _, _, used = _drive(tuner, n, d, N, 0.1, lambda t, e: z[t] * e**3, lambda t: np.zeros((n, d)), 90)
    V = 0.5 - 0.4 * np.minimum(np.arange(89) / 91, 1.0)
    pred = used[:-1] * ((z[:89] * used[:-1] ** 3) ** 2 / (d * V[:, None]) + 1e-8) ** (-1 / 6)
    np.testing.assert_allclose(used[1:], pred, rtol=1e-9)


@pytest.mark.parametrize("moment_weight", ["step", "updated"])
def test_moment_weight(moment_weight):
    """Phase-2 L = sqrt(sum_i weighted Var x_i) with the weights the step size used in each step ("step") or
    the one after its update ("updated", MILE's code), written out by hand."""
    n, d, N = 3, 4, 100
    rs = np.random.default_rng(3)
    xs = rs.standard_normal((N, n, d)) * np.array([0.5, 1.0, 2.0, 3.0])
    z = rs.standard_normal((N, n))
    tuner = mclmc_tuner(frac_tune1=0.2, frac_tune2=0.5, frac_tune3=0.0, moment_weight=moment_weight)
    params, _, used = _drive(tuner, n, d, N, 0.3, lambda t, e: z[t] * 2.0 * e**3, lambda t: xs[t], 71)
    w = used[20:70] if moment_weight == "step" else used[21:71]  # (50, n)
    x = xs[20:70]
    mean = (w[..., None] * x).sum(0) / w.sum(0)[:, None]
    var = (w[..., None] * (x - mean) ** 2).sum(0) / w.sum(0)[:, None]
    np.testing.assert_allclose(to_numpy(params.L), np.sqrt(var.sum(-1)), rtol=1e-12)


def test_mclmc_preset_authors_settings():
    t = Gaussian.diagonal(np.ones(20))
    k = get("mclmc")(t, Exact(t), NP64, n_warmup=100, preset="authors")
    assert k.step_size0 == 0.005 and k.L0 == 15.0
    assert MILE_AUTHORS_TUNER == {"energy_var_schedule": "mile", "num_effective_samples": 100,
                                  "schedule_divisor": "n12+1", "moment_weight": "updated", "ess_method": "blackjax",
                                  "frac_tune1": 0.8, "frac_tune2": 0.1, "frac_tune3": 0.1}  # their phase_ratio
    big = Gaussian.diagonal(np.ones(400))
    assert get("mclmc")(big, Exact(big), NP64, n_warmup=100, preset="authors").L0 == 20.0
    k = get("mclmc")(t, Exact(t), NP64, step_size=0.01, n_warmup=100, preset="authors", L=3.0,
                     tuner_options={"ess_method": "split"})
    assert k.step_size0 == 0.01 and k.L0 == 3.0
    with pytest.raises(ValueError, match="tuner must be 'mile'"):
        get("mclmc")(t, Exact(t), NP64, n_warmup=100, preset="authors", tuner="mclmc")
    with pytest.raises(ValueError, match="preset must be None or 'authors'"):
        get("mclmc")(t, Exact(t), NP64, n_warmup=100, preset="mile")
    with pytest.raises(TypeError, match="tuner_options must be a dict"):
        get("mclmc")(t, Exact(t), NP64, n_warmup=100, preset="authors", tuner_options=[1])
    with pytest.raises(TypeError, match="unexpected keyword argument 'N_eff'"):
        get("mclmc")(t, Exact(t), NP64, n_warmup=100, preset="authors", tuner_options={"N_eff": 100})


def test_tuner_bad_options():
    for name, bad in (("schedule_divisor", "n12"), ("moment_weight", "new"), ("ess_method", "arviz")):
        with pytest.raises(ValueError, match=f"{name} must be one of"):
            mclmc_tuner(**{name: bad})


def test_mclmc_preset_authors_run_chains():
    """Through the driver: a 250-step MILE warm-up on a d = 20 Gaussian gives finite, positive (eps, L) and
    L away from its initial 15 (the ESS window ran)."""
    t = Gaussian.diagonal(np.logspace(-1, 1, 20))
    res = smile_ref.run_chains("mclmc", t, preset="authors", n_chains=2, n_steps=50, burn_in=250, seed=0,
                               progress=False)
    L = res.info["L"][-1]
    eps = res.info["step_size"][-1]
    assert np.all(np.isfinite(L)) and np.all(L > 0) and np.all(np.abs(L - 15.0) > 1e-6)
    assert np.all(np.isfinite(eps)) and np.all(eps > 0) and np.all(eps != 0.005)
