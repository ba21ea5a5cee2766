"""SMILE/pSMILE with default options are healthy, and the Gamma-tuner death spiral stays documented.

The health checks are deterministic: one fixed seed per case, no statistical tolerance.  "Healthy" is the
criterion of ``docs/smile-defaults.md``: at most 5 % rejected sampling steps, every chain's final step size at
least 100 times the Gamma tuner's floor (1e-8), finite draws, and no frozen chain (every chain accepted a step
in the last tenth of the run and moved).  The mechanism tests check the Wilson-Hilferty thresholds against the
closed-form roots of the cube's base and feed the authors' rule synthetic energy errors.
"""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import smile_ref
from smile_ref import targets
from smile_ref.backend import get_backend, to_numpy
from smile_ref.errors import RunHealthWarning, SmileRefWarning
from smile_ref.gradients import AdditiveNoise, Exact, MiniBatch
from smile_ref.samplers import base as registry
from smile_ref.samplers.guardrails import default_max_energy_error
from smile_ref.samplers.smile import DEFAULT_TUNER
from smile_ref.tuners.base import TuneInput, TuningParams
from smile_ref.tuners.energy_error import energy_error_tuner, gamma_wilson_hilferty_quantile

GAMMA_FLOOR = 1e-8  # lower step-size bound of the Gamma tuner (energy_error_tuner's step_size_bounds[0])
Z_RESET, Z_UP, Z_DOWN = 2.053748910631823, 1.5010859460054414, -1.8339146358159142  # Phi^-1(0.98, 0.9333, 0.0333)


def _logreg(n=2000, d=5, seed=0):
    rs = np.random.default_rng(seed)
    X = rs.standard_normal((n, d))
    w = rs.standard_normal(d)
    y = (rs.random(n) < 1 / (1 + np.exp(-X @ w))).astype(float)
    return targets.LogisticRegression(X, y)


def _assert_healthy(res, burn_in):
    rej = res.info["rejected"][burn_in:]
    eps = res.info["step_size"][-1]
    assert rej.mean() <= 0.05, f"rejected {rej.mean():.3f} of the sampling steps"
    assert np.all(eps >= 100 * GAMMA_FLOOR), f"final step sizes {eps}"
    assert np.all(np.isfinite(res.samples))
    tail = res.info["rejected"][-max(1, len(res.info["rejected"]) // 10):]
    assert not np.any(tail.all(axis=0)), "a chain rejected every step of the last tenth of the run"
    k = max(1, res.samples.shape[1] // 10)
    moved = np.abs(res.samples[:, -1] - res.samples[:, -k - 1]).max(axis=1)
    assert np.all(moved > 0), "a chain did not move over the last tenth of its draws"


CASES = {  # name: (sampler, target factory, gradient factory, step_size, n_chains, burn_in, n_steps)
    "icg10_exact_1e-2": ("smile", lambda: targets.ill_conditioned_gaussian(10), None, 1e-2, 2, 300, 100),
    "icg10_exact_1.0": ("smile", lambda: targets.ill_conditioned_gaussian(10), None, 1.0, 2, 300, 100),
    "icg10_exact_1e-2_psmile": ("psmile", lambda: targets.ill_conditioned_gaussian(10), None, 1e-2, 2, 300, 100),
    "gauss1000_exact_0.5": ("smile", lambda: targets.Gaussian.isotropic(1000), None, 0.5, 2, 200, 100),
    "icg10_additive_1e-2": ("smile", lambda: targets.ill_conditioned_gaussian(10),
                            lambda t: AdditiveNoise(t, 1.0), 1e-2, 2, 300, 100),
    "logreg_minibatch_1e-4": ("smile", _logreg, lambda t: MiniBatch(t, 32), 1e-4, 2, 300, 100),
    "logreg_minibatch_1e-1": ("smile", _logreg, lambda t: MiniBatch(t, 32), 1e-1, 2, 300, 100),
    "logreg_minibatch_1e-1_psmile": ("psmile", _logreg, lambda t: MiniBatch(t, 32), 1e-1, 2, 300, 100),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_default_run_is_healthy(name):
    """``run_chains(sampler, target, step_size=...)`` with default options and a warm-up (seed 0)."""
    sampler, make_target, make_grad, eps, n, burn, steps = CASES[name]
    t = make_target()
    g = make_grad(t) if make_grad else None
    res = smile_ref.run_chains(sampler, t, gradient=g, n_chains=n, n_steps=steps, burn_in=burn, step_size=eps,
                               seed=0, progress=False, info="all")  # _assert_healthy reads per-step traces
    _assert_healthy(res, burn)


def test_authors_gamma_tuner_spirals_on_the_reproducer():
    """The reproducer of ``docs/smile-defaults.md``: ICG d=10, exact gradient, step_size=1e-2.  The authors'
    Gamma tuner (``tuner="energy_error"``, explicit) rejects every step after the freeze and ends at the floor;
    the default on the same run is healthy (``test_default_run_is_healthy[icg10_exact_1e-2]``)."""
    t = targets.ill_conditioned_gaussian(10)
    kw = dict(n_chains=2, n_steps=300, burn_in=500, step_size=1e-2, seed=0, progress=False, info="all")
    with pytest.warns(RunHealthWarning, match="floor"):  # and the run-health check says so
        gamma = smile_ref.run_chains("smile", t, tuner="energy_error", **kw)
    assert gamma.info["rejected"][10:].all()
    np.testing.assert_array_equal(gamma.info["step_size"][-1], GAMMA_FLOOR)


def test_wilson_hilferty_thresholds_turn_negative_below_closed_form_shapes():
    """The base ``1 - 1/(9k) + z/(3 sqrt k)`` of the Wilson-Hilferty cube vanishes at ``1/sqrt(k) = r`` with
    ``r^2 - 3 z r - 9 = 0``: the reset (z = 2.054), shrink (1.501) and grow (-1.834) thresholds become
    negative below k = 0.0184, 0.0278 and 0.574.  Below k_R every |dE| is rejected and shrinks eps."""
    xp = np
    for z, k_expected in ((Z_RESET, 0.0184), (Z_UP, 0.0278), (Z_DOWN, 0.574)):
        r = (3 * z + math.sqrt(9 * z * z + 36)) / 2
        k0 = 1 / r**2
        assert k0 == pytest.approx(k_expected, abs=6e-4)
        # a moment fit with mean 1 and shape k: s^2 + 1e-6 = 1 / k
        for k, sign in ((k0 * 1.01, 1), (k0 * 0.99, -1)):
            s = np.sqrt(np.array([1.0 / k - 1e-6]))
            q = gamma_wilson_hilferty_quantile(xp, np.ones(1), s, z)
            assert np.sign(q[0]) == sign


def _feed(tuner, a_rows, eps0=0.1):
    n = a_rows.shape[1]
    params = TuningParams(np.full(n, eps0), np.full(n, math.inf), None)
    state = tuner.init(params)
    resets, eps, k = [], [], []
    for t, row in enumerate(a_rows):
        resets.append(tuner.reset_rule.mask(state, row, np))
        params, state = tuner.update(state, params, TuneInput(row, None, None, t, len(a_rows), 10))
        eps.append(params.step_size)
        k.append(state.mu**2 / (state.s**2 + 1e-6))
    return np.array(resets), np.array(eps), np.array(k)


@pytest.mark.parametrize("winsorize", [True, False])
def test_gamma_tuner_level_drop_is_absorbing(winsorize):
    """A drop of the |dE| level by 1e3 at step 300 (a warm-up transient ending, or eps shrinking with a
    same-batch dE; both levels far above the 1e-6 regulariser): the variance EMA forgets like (1-beta)^(t/2),
    the mean like (1-beta)^t, so the fitted shape k falls like (1-beta)^t and crosses k_R = 0.0184 about 350
    steps after the drop; then every step is rejected and shrinks eps, which reaches the floor ~1100 steps after
    the drop.  Winsorised (smile_ref's Gamma default): k stays pinned at k_R (R ~ 0), so the rejections never
    stop.  Raw (the authors' update): k recovers after ~1500 steps, too late for eps."""
    rng = np.random.default_rng(3)
    a = np.concatenate([rng.exponential(1e3, (300, 8)), rng.exponential(1.0, (1700, 8))])
    resets, eps, k = _feed(energy_error_tuner(winsorize_rejected=winsorize), a)
    assert np.all(k[299] > 0.5)
    assert resets[700:1300].mean() > 0.99
    assert np.all(eps[-1] <= 1.1 * GAMMA_FLOOR)
    if winsorize:
        assert resets[-500:].all() and np.all(np.abs(k[-1] / 0.0184 - 1) < 0.01)
    else:
        assert np.all(k[-1] > 0.5) and resets[-300:].mean() < 0.05
    # the same law without the drop: a few per cent of resets, eps far from the floor after 1700 steps (the
    # exponential law's mean-field drift of log eps is -9.6e-4 per step, docs/derivations/smile-tuner.md)
    resets0, eps0, _ = _feed(energy_error_tuner(winsorize_rejected=winsorize), a[300:])
    assert resets0[10:].mean() < 0.1 and np.all(eps0[-1] > 1e-3)


def test_gamma_tuner_absolute_regulariser_rejects_small_energy_errors():
    """|dE| ~ 1e-5 (a well-integrated exact-gradient chain): ``k = mu^2 / (s^2 + 1e-6) < 1e-3``, so every step
    after the freeze is rejected; the same law times 1e5 is not (the rule is scale-free only for |dE| >> 1e-3)."""
    rng = np.random.default_rng(4)
    a = rng.exponential(1e-5, (400, 4))
    resets, _, k = _feed(energy_error_tuner(), a)
    assert resets[10:].all() and np.all(k[-1] < 1e-3)
    resets, _, _ = _feed(energy_error_tuner(), a * 1e5)
    assert resets[10:].mean() < 0.1


def test_default_options():
    """The default tuner is the Var[dE]/d tuner with the "mclmc" guardrail; an exact gradient turns on the
    partial refresh with L = sqrt(d); stochastic gradients and the authors' tuner keep refresh off."""
    assert DEFAULT_TUNER == "mclmc"
    b = get_backend("numpy")
    t = targets.ill_conditioned_gaussian(16)
    make = registry.get("smile")
    s = make(t, Exact(t), b, step_size=0.1, n_warmup=10)
    assert s.tuner.name == "mclmc" and s.max_energy_error == default_max_energy_error(16) == 400.0
    assert s.refresh and s.L0 == 4.0
    s = make(t, AdditiveNoise(t, 1.0), b, step_size=0.1, n_warmup=10)
    assert not s.refresh and math.isinf(s.L0)
    for opts in ({"tuner": "energy_error"}, {"tuner": None}, {"refresh": False}):
        s = make(t, Exact(t), b, step_size=0.1, n_warmup=10, **opts)
        assert not s.refresh
    assert make(t, Exact(t), b, step_size=0.1, n_warmup=10, tuner="energy_error").max_energy_error == math.inf
    with pytest.raises(TypeError, match="refresh"):
        make(t, Exact(t), b, step_size=0.1, n_warmup=10, refresh="no")
    with pytest.raises(ValueError, match="needs L"):
        make(t, Exact(t), b, step_size=0.1, n_warmup=10, refresh=True)


def test_cross_batch_energy_error_needs_the_gamma_tuner():
    """The cross-batch dE carries batch noise that does not shrink with eps: the Var[dE]/d tuner collapses on it
    (logistic regression, b = 32: below 1e-12 L within 13 warm-up steps), so the combination is refused up front;
    the authors' combination and an exact gradient are accepted."""
    b = get_backend("numpy")
    t = _logreg()
    make = registry.get("smile")
    with pytest.raises(ValueError, match="cross_batch"):
        make(t, MiniBatch(t, 32), b, step_size=0.1, n_warmup=10, energy_error="cross_batch")
    make(t, MiniBatch(t, 32), b, step_size=0.1, n_warmup=10, energy_error="cross_batch", tuner="energy_error")
    make(t, Exact(t), b, step_size=0.1, n_warmup=10, energy_error="cross_batch")


def test_no_warmup_warns_that_the_step_size_is_not_tuned():
    t = targets.ill_conditioned_gaussian(4)
    with pytest.warns(SmileRefWarning, match="burn_in"):
        smile_ref.run_chains("smile", t, n_chains=1, n_steps=3, step_size=0.1, seed=0, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", SmileRefWarning)
        smile_ref.run_chains("smile", t, n_chains=1, n_steps=3, burn_in=3, step_size=0.1, seed=0, progress=False)
        smile_ref.run_chains("smile", t, n_chains=1, n_steps=3, step_size=0.1, seed=0, progress=False, tuner=None)


def test_default_runs_on_array_api_strict():
    """The default path (auto refresh, Var[dE]/d tuner, guardrail) on a non-NumPy namespace agrees with NumPy."""
    t = targets.ill_conditioned_gaussian(5)
    kw = dict(n_chains=2, n_steps=20, burn_in=30, step_size=0.1, seed=1, progress=False)
    a = smile_ref.run_chains("psmile", t, **kw)
    b = smile_ref.run_chains("psmile", t, backend="array_api_strict", **kw)
    np.testing.assert_allclose(a.samples, b.samples, rtol=1e-10, atol=1e-10)
    assert to_numpy(b.state.params.step_size).shape == (2,)


SLOW_GRID = [(s, name, eps) for s in ("smile", "psmile")
             for name in ("icg10_exact", "icg10_additive", "diag1000_exact", "logreg_minibatch", "mlp_airfoil")
             for eps in (1e-4, 1e-2, 1.0)]


def _slow_problem(name):
    if name.startswith("icg10"):
        t = targets.ill_conditioned_gaussian(10)
        return t, (AdditiveNoise(t, 1.0) if "additive" in name else None)
    if name == "diag1000_exact":
        return targets.diagonal_gaussian_condition(1000, 1e2), None
    if name == "logreg_minibatch":
        t = _logreg()
        return t, MiniBatch(t, 32)
    from smile_ref.data import load_uci

    sp = load_uci("airfoil", seed=0)
    t = targets.MLP(sp.X_train, sp.y_train)
    return t, MiniBatch(t, 32)


@pytest.mark.slow
@pytest.mark.parametrize("sampler,name,eps", SLOW_GRID)
def test_default_run_is_healthy_wide_grid(sampler, name, eps):
    """The grid of ``docs/smile-defaults.md`` (4 chains, 2000 warm-up + 2000 sampling steps, seed 1)."""
    t, g = _slow_problem(name)
    x0 = t.init_params(np.random.default_rng(1), 4) if isinstance(t, targets.MLP) else None  # He normal
    res = smile_ref.run_chains(sampler, t, gradient=g, n_chains=4, n_steps=2000, burn_in=2000, step_size=eps,
                               seed=1, progress=False, initial_position=x0, info="all")
    _assert_healthy(res, 2000)
