"""Tests of the MCLMC warm-up tuner (smile_ref.tuners.mclmc) and its per-chain ESS.

The tuner only sees :class:`TuneInput` objects, so every test drives it with
inputs built here: energy errors from the synthetic law
``dE ~ N(0, c^2 eps^6 d)`` (``Var[dE]/d = c^2 eps^6``, whose target step size
is ``eps* = (V*/c^2)^{1/6}``), positions from known distributions, and
rejection patterns that mimic step-size-caused and model-caused NaNs
(blackjax issues #969 and #973).  Derivations: docs/derivations/mclmc-tuning.md.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from smile_ref.backend import get_backend, to_numpy
from smile_ref.theory.batch_means import ar1_tau
from smile_ref.theory.batch_means import rho as theory_rho
from smile_ref.theory import mclmc_tuning as th
from smile_ref.tuners import MCLMCTunerState, TuneInput, TuningParams, chain, identity, mclmc_tuner
from tests.conftest import assert_backend, tol_for

C, V_STAR = 2.0, 5e-4
EPS_STAR = (V_STAR / C**2) ** (1.0 / 6.0)
NP64 = get_backend("numpy")


def drive(tuner, b, n, d, N, eps0, rng, *, reject=None, positions=None, dE_law=None, L0=None, stop=None, state=None,
          params=None, start=0):
    """Run ``tuner`` for warm-up steps ``start .. stop-1``; returns (params, state, eps used per step)."""
    xp = b.xp
    if params is None:
        params = TuningParams(b.full((n,), eps0), b.full((n,), math.sqrt(d) if L0 is None else L0))
        state = tuner.init(params)
    used = []
    for t in range(start, N if stop is None else stop):
        eps = to_numpy(params.step_size).astype(np.float64)
        dE = C * eps**3 * math.sqrt(d) * rng.standard_normal(n) if dE_law is None else dE_law(t, eps)
        rej = np.zeros(n, bool) if reject is None else reject(eps, t, rng)
        dE = np.where(rej, 0.0, dE)
        x = rng.standard_normal((n, d)) if positions is None else positions(t)
        inp = TuneInput(b.asarray(dE), b.asarray(x), b.asarray(rej, dtype=xp.bool), t, N, d)
        params, state = tuner.update(state, params, inp)
        used.append(eps)
    return params, state, np.array(used)


def test_theory_identities():
    """SymPy: EMA Kish size = N_eff; rejection fixed point 0.8165 at p = 0.2; collapse at f^6;
    cap balance at 1/3 -- with the constants the tuner uses."""
    import sympy as sp

    from smile_ref.tuners.mclmc import CAP_RELAX, REJECT_SHRINK, XI_REJECTED

    assert sp.simplify(th.ema_kish_size() - th.N) == 0
    fp = th.rejection_fixed_point().subs({th.p: sp.Rational(1, 5), th.f: sp.Rational(4, 5)})
    assert abs(float(fp) - 0.8165100773) < 1e-9
    assert th.collapse_threshold() == th.f**6
    cap_p = th.cap_balance_probability().subs({th.f: REJECT_SHRINK, th.g: CAP_RELAX})
    assert abs(float(cap_p) - 1 / 3) < 1e-12
    assert XI_REJECTED == REJECT_SHRINK**-6
    a, rel_var = th.weighted_fixed_point()
    assert abs(a - 0.97243) < 1e-4 and abs(rel_var - 1.915) < 1e-3


def test_step_size_converges_to_energy_variance_target():
    """(1) eps -> eps_eq = eps* a^{1/6} (a = 0.972 from the trust weight; eps_eq = 0.9954 eps*).

    ``eps^-6 = X/W`` is an EMA of ``w_k (c^2/V*) Z_k^2`` with Kish effective size exactly
    N_eff = 150, so by the delta method sd(log eps) = sqrt(rel_var / N_eff) / 6 = 0.0188
    (rel_var = 1.91 by quadrature) and, to second order, E[log eps] = log eps_eq +
    rel_var / (12 N_eff) = log eps_eq + 0.0011 (Jensen: log eps = -log(X/W)/6).  Measured
    offset from log eps_eq: +0.0011 (EMA recursion alone, 20000 chains) and +0.0004 +-
    0.0003 (this tuner, 4096 chains); sd 0.0193 (the first-order sd ignores the weights'
    dependence on the fluctuating eps: 3 % more).  The transient from eps0 = 3 eps*
    decays like r^1800 = e^-24.  Checks: the mean of z over 64 independent chains within
    4/8 (p = 1e-4 with the measured sd) and every chain within |z| < 5 (Bonferroni over
    64: p < 1e-4).  Failure probability < 2e-4.
    """
    a, _ = th.weighted_fixed_point()
    assert abs(a ** (1 / 6) - 1) < 0.01  # the weight bias is small
    sd, offset = th.log_sd_and_offset(150)
    log_eps_eq = math.log(EPS_STAR * a ** (1 / 6)) + offset
    n = 64
    params, state, _ = drive(mclmc_tuner(), NP64, n, 10, 2000, 3 * EPS_STAR, np.random.default_rng(11))
    z = (np.log(to_numpy(params.step_size)) - log_eps_eq) / sd
    assert abs(z.mean()) * math.sqrt(n) < 4.0, z.mean()
    assert np.all(np.abs(z) < 5.0), z
    assert np.all(to_numpy(state.n_rejected) == 0)


def test_L_from_variances():
    """(2) L = sqrt(sum_i Var[x_i]) from eps-weighted streaming moments.

    x ~ N(0, diag(s^2)) i.i.d.; with Kish size m = (sum w)^2 / sum w^2 of the weights
    (the step sizes used), E[L^2_hat] = (1 - 1/m) sum s^2 and Var[L^2_hat] = 2 sum s^4 / m,
    so SE(L_hat) = sqrt(2 sum s^4 / m) / (2 L).  z-test at 4.5 sigma per chain, Bonferroni
    over 8 chains: failure probability < 6e-5.
    """
    s = np.array([0.5, 1.0, 2.0, 3.0, 4.0])
    n, d, N = 8, 5, 2000
    rng = np.random.default_rng(12)
    tuner = mclmc_tuner(frac_tune1=0.1, frac_tune2=0.8, frac_tune3=0.0)
    params, _, used = drive(tuner, NP64, n, d, N, EPS_STAR, rng, positions=lambda t: s * rng.standard_normal((n, d)),
                            stop=200 + 1600)
    w = used[200:1800]
    m = w.sum(0) ** 2 / (w**2).sum(0)
    L_true = math.sqrt((s**2).sum())
    expected = np.sqrt((1 - 1 / m) * (s**2).sum())
    se = np.sqrt(2 * (s**4).sum() / m) / (2 * L_true)
    z = (to_numpy(params.L) - expected) / se
    assert np.all(np.abs(z) < 4.5), z


def test_diagonal_preconditioning_sets_sqrt_diag_and_retunes():
    """sqrt_diag = sqrt(Var[x]) (4.5-sigma per coordinate, Bonferroni over 4x3: p < 1e-4) and L = sqrt(d)."""
    s = np.array([0.5, 2.0, 5.0])
    n, d, N = 4, 3, 3000
    rng = np.random.default_rng(13)
    tuner = mclmc_tuner(frac_tune1=0.1, frac_tune2=0.6, frac_tune3=0.3, diagonal_preconditioning=True)
    params, state, used = drive(tuner, NP64, n, d, N, EPS_STAR, rng, positions=lambda t: s * rng.standard_normal((n, d)),
                                stop=2100)
    sd_hat = to_numpy(params.sqrt_diag)
    m = used[300:2100].sum(0) ** 2 / (used[300:2100] ** 2).sum(0)
    # SE of sqrt(var_hat): s * sqrt(1/(2m))
    z = (sd_hat - s * np.sqrt(1 - 1 / m)[:, None]) / (s * np.sqrt(1 / (2 * m))[:, None])
    assert np.all(np.abs(z) < 4.5), z
    np.testing.assert_allclose(to_numpy(params.L), math.sqrt(d))
    # the step-size average restarts: W holds only the re-tune steps (600 // 3 = 200 of them)
    assert np.all(to_numpy(state.W) < 1.0 / (1 - 149 / 151))


@pytest.mark.parametrize("rho", [0.5])
def test_L_from_ess_on_ar1(rho):
    """(3) Phase 3: L = Lfactor * eps * mean_i(T / ESS_i) -> Lfactor * eps * (1+rho)/(1-rho).

    AR(1) coordinates have tau = (1+rho)/(1-rho) = 3.  For a windowed estimator of
    tau over lags <= M, Var[tau_hat] ~ 2 (2M+1) tau^2 / T (Sokal 1997); taking M = 20
    (an over-estimate of Geyer's truncation point here) gives sd 0.61 per coordinate,
    0.097 for the mean over d = 40 coordinates.  Tolerance 4.5 sd per chain, Bonferroni
    over 4 chains: failure probability < 3e-5.  Measured over 20 chains: mean 3.066,
    sd 0.047 (the sd bound is conservative; the +2 % bias of the truncated estimator
    is well inside).
    """
    n, d, N = 4, 40, 2200
    rng = np.random.default_rng(14)
    state_x = {"x": rng.standard_normal((n, d))}

    def ar1(t):
        state_x["x"] = rho * state_x["x"] + math.sqrt(1 - rho**2) * rng.standard_normal((n, d))
        return state_x["x"]

    tuner = mclmc_tuner(frac_tune1=0.05, frac_tune2=0.05, frac_tune3=0.9, Lfactor=0.4)
    params, state, used = drive(tuner, NP64, n, d, N, EPS_STAR, rng, positions=ar1)
    T = N - 220
    assert to_numpy(state.buffer).shape == (n, 0, 1)  # the window's positions leave the state once L is set
    eps_mean = used[220:].mean(0)
    tau = float(ar1_tau().subs(theory_rho, rho))  # (1 + rho)/(1 - rho), SymPy (theory/batch_means.py)
    sd = tau * math.sqrt(2 * 41 / T) / math.sqrt(d)
    tau_hat = to_numpy(params.L) / (0.4 * eps_mean)
    assert np.all(np.abs(tau_hat - tau) < 4.5 * sd), (tau_hat, sd)


def test_step_caused_rejections_settle_below_eps_bad():
    """(4a, blackjax #969) Rejection iff eps > eps_bad = eps*/2 (dE reported as 0).

    A tuner blind to rejections reads dE = 0 as "step far too small" and grows eps.
    Here eps must settle below eps_bad: the handed-over value is < eps_bad, and after
    the first half no step uses more than g * eps_bad = 1.118 eps_bad (soft-cap
    relaxation); it must not collapse either (> eps_bad / 2).  Deterministic rule.
    """
    bad = 0.5 * EPS_STAR
    n = 16
    params, state, used = drive(mclmc_tuner(), NP64, n, 10, 2000, 3 * EPS_STAR, np.random.default_rng(15),
                                reject=lambda e, t, r: e > bad)
    final = to_numpy(params.step_size)
    assert np.all(final < bad) and np.all(final > 0.5 * bad), final / bad
    assert used[1000:].max() <= 1.2 * bad
    assert np.all(to_numpy(state.n_rejected) > 0)


def test_model_caused_rejections_do_not_collapse():
    """(4b, blackjax #973) Rejection with probability p = 0.2 independent of eps.

    Fixed point of the average: eps = eps_eq ((1 - p f^-6)/(1 - p))^{1/6} = 0.817 eps_eq
    (f = 0.8); the two hand-overs (end of tuning, end of warm-up) each take f times the
    latest rejected proposal, so the final eps is 0.64 * 0.817 = 0.52 eps_eq.  Measured
    over 192 chains: median 0.513 eps*, min 0.457, sd of log 0.040; eps*/3 lies
    log(0.52 * 3) / 0.040 = 11 sd below the prediction (failure probability < 1e-10 by
    a normal tail, 16 chains), eps* lies 16 sd above.
    """
    n = 16
    params, state, _ = drive(mclmc_tuner(), NP64, n, 10, 2000, EPS_STAR, np.random.default_rng(16),
                             reject=lambda e, t, r: r.random(len(e)) < 0.2)
    final = to_numpy(params.step_size)
    assert np.all(final > EPS_STAR / 3) and np.all(final < EPS_STAR), final / EPS_STAR
    fp = float(th.rejection_fixed_point().subs({th.p: 0.2, th.f: 0.8}))
    pred = 0.8**2 * fp * EPS_STAR * th.weighted_fixed_point()[0] ** (1 / 6)
    assert abs(math.log(np.median(final) / pred)) < 0.1  # 10 measured sd of the median
    rate = to_numpy(state.n_rejected) / 2000
    assert np.all(np.abs(rate - 0.2) < 5 * math.sqrt(0.16 / 2000))


def test_every_step_rejected_raises():
    """(4c) NaNs at every step size: the soft cap shrinks by 0.8 per step -> RuntimeError at the floor."""
    with pytest.raises(RuntimeError, match="step size collapsed.*the model, not the step size"):
        drive(mclmc_tuner(), NP64, 3, 10, 2000, EPS_STAR, np.random.default_rng(17),
              reject=lambda e, t, r: np.ones(len(e), bool))


def test_chain_with_identity_is_transparent():
    """(5) chain(identity(), mclmc) and chain(mclmc, identity()) reproduce mclmc alone exactly."""
    outs = []
    for tuner in (mclmc_tuner(), chain(identity(), mclmc_tuner()), chain(mclmc_tuner(), identity())):
        p, _, used = drive(tuner, NP64, 3, 4, 200, EPS_STAR, np.random.default_rng(18),
                           reject=lambda e, t, r: r.random(len(e)) < 0.1)
        outs.append((to_numpy(p.step_size), to_numpy(p.L), used))
    for o in outs[1:]:
        for a, b in zip(outs[0], o):
            np.testing.assert_array_equal(a, b)
    assert chain(identity(), mclmc_tuner()).name == "identity+mclmc"


def test_backend_matrix(backend):
    """(6) Every phase (incl. diagonal preconditioning and ESS) on every backend; same numbers as NumPy-f64.

    N = 150 with the preconditioned default split 0.3/0.3/0.4 gives phases of 45 and 45 steps, a re-tune of 15
    and an ESS window of 60 - 15 = 45 >= MIN_ESS_DRAWS draws, so phase 3 sets L."""
    n, d, N = 3, 4, 150
    rng = np.random.default_rng(19)
    dEs = 0.05 * rng.standard_normal((N, n))
    xs = rng.standard_normal((N, n, d)) * np.array([1.0, 2.0, 0.5, 3.0])
    rej = np.zeros((N, n), bool)
    rej[5, 1] = rej[40, 2] = True
    res = {}
    for b in (NP64, backend):
        tuner = mclmc_tuner(diagonal_preconditioning=True)
        params = TuningParams(b.full((n,), 0.3), b.full((n,), 2.0))
        state = tuner.init(params)
        for t in range(N):
            inp = TuneInput(b.asarray(dEs[t]), b.asarray(xs[t]), b.asarray(rej[t], dtype=b.xp.bool), t, N, d)
            params, state = tuner.update(state, params, inp)
        res[b is NP64] = params, state
    params, state = res[False]
    assert_backend(params.step_size, backend, (n,))
    assert_backend(params.L, backend, (n,))
    assert_backend(params.sqrt_diag, backend, (n, d))
    for name in MCLMCTunerState._fields:
        if name != "n_rejected":
            assert_backend(getattr(state, name), backend)
    assert to_numpy(state.buffer).shape == (n, 0, 1)  # used by phase 3, then dropped
    assert not np.any(to_numpy(params.L) == 2.0)  # phase 3 replaced the initial L
    ref, _ = res[True]
    tol = tol_for(backend, 1e-9, 1e-3)
    for a, b in zip((ref.step_size, ref.L, ref.sqrt_diag), (params.step_size, params.L, params.sqrt_diag)):
        np.testing.assert_allclose(to_numpy(b), to_numpy(a), rtol=tol)
    np.testing.assert_array_equal(to_numpy(state.n_rejected), [0, 1, 1])


def test_energy_var_schedule_linear_decay():
    """V*(t) decays linearly over phases 1+2; with N_eff -> 1 the EMA is memoryless, so
    eps_{t+1} = eps_t (dE_t^2 / (d V*(t)) + 1e-8)^{-1/6} exposes V*(t) at every step."""
    n, d, N = 2, 3, 100
    rng = np.random.default_rng(20)
    z = rng.standard_normal((N, n))
    tuner = mclmc_tuner(num_effective_samples=1 + 1e-12, energy_var_schedule="mile")
    _, _, used = drive(tuner, NP64, n, d, N, 0.1, rng, dE_law=lambda t, e: z[t] * e**3, stop=90)
    V = 0.5 + (0.1 - 0.5) * np.arange(89) / 89
    pred = used[:-1] * ((z[:89] * used[:-1] ** 3) ** 2 / (d * V[:, None]) + 1e-8) ** (-1 / 6)
    np.testing.assert_allclose(used[1:], pred, rtol=1e-9)
    # a constant schedule is the constant target
    a = drive(mclmc_tuner(energy_var_schedule=(1e-3, 1e-3)), NP64, n, d, N, 0.1, rng, dE_law=lambda t, e: z[t] * e**3)[2]
    b = drive(mclmc_tuner(desired_energy_var=1e-3), NP64, n, d, N, 0.1, rng, dE_law=lambda t, e: z[t] * e**3)[2]
    np.testing.assert_array_equal(a, b)


def test_step_size_max_caps():
    p, _, used = drive(mclmc_tuner(step_size_max=0.5 * EPS_STAR), NP64, 4, 10, 300, EPS_STAR, np.random.default_rng(21))
    assert used[1:].max() <= 0.5 * EPS_STAR and np.all(to_numpy(p.step_size) <= 0.5 * EPS_STAR)


def test_state_checkpoint_round_trip():
    """The state is arrays only: flatten/unflatten into a fresh template mid phase 3 continues identically."""
    from smile_ref.run.checkpoint import flatten_state, unflatten_state

    n, d, N = 2, 3, 200
    rng = np.random.default_rng(22)
    dEs, xs = 0.02 * rng.standard_normal((N, n)), rng.standard_normal((N, n, d))
    tuner = mclmc_tuner()
    law = dict(dE_law=lambda t, e: dEs[t], positions=lambda t: xs[t])
    p_full, _, _ = drive(tuner, NP64, n, d, N, 0.2, rng, **law)
    p_mid, s_mid, _ = drive(tuner, NP64, n, d, N, 0.2, rng, stop=190, **law)
    template = tuner.init(TuningParams(NP64.full((n,), 0.2), NP64.full((n,), math.sqrt(d))))
    s_back = unflatten_state(template, flatten_state(s_mid))
    p_end, _, _ = drive(tuner, NP64, n, d, N, 0.2, rng, start=190, params=p_mid, state=s_back, **law)
    np.testing.assert_array_equal(to_numpy(p_end.L), to_numpy(p_full.L))
    np.testing.assert_array_equal(to_numpy(p_end.step_size), to_numpy(p_full.step_size))


def test_bad_arguments():
    with pytest.raises(ValueError, match="must be <= 1"):
        mclmc_tuner(frac_tune1=0.8, frac_tune2=0.2, frac_tune3=0.1)
    with pytest.raises(ValueError, match="frac_tune2 must lie in"):
        mclmc_tuner(frac_tune2=-0.1)
    with pytest.raises(ValueError, match="energy_var_schedule"):
        mclmc_tuner(energy_var_schedule="cosine")
    with pytest.raises(ValueError, match="energy_var_schedule"):
        mclmc_tuner(energy_var_schedule=(0.5,))
    with pytest.raises(ValueError, match="num_effective_samples must be > 1"):
        mclmc_tuner(num_effective_samples=1)
    with pytest.raises(ValueError, match="desired_energy_var"):
        mclmc_tuner(desired_energy_var=0.0)
    tuner = mclmc_tuner()
    params = TuningParams(NP64.full((2,), 0.1), NP64.full((2,), 1.0))
    state = tuner.init(params)
    good = dict(energy_error=np.zeros(2), position=np.zeros((2, 3)), rejected=np.zeros(2, bool), step=0,
                n_warmup=10, dim=3)
    with pytest.raises(ValueError, match=r"TuneInput.position must have shape \(2, 3\)"):
        tuner.update(state, params, TuneInput(**{**good, "position": np.zeros((2, 4))}))
    with pytest.raises(ValueError, match=r"TuneInput.energy_error must have shape \(2,\)"):
        tuner.update(state, params, TuneInput(**{**good, "energy_error": np.zeros(3)}))
    with pytest.raises(TypeError, match="TuneInput.step must be a Python int"):
        tuner.update(state, params, TuneInput(**{**good, "step": 1.0}))
    with pytest.raises(ValueError, match=r"params.step_size and params.L must have shape \(n,\)"):
        tuner.init(TuningParams(NP64.full((2, 1), 0.1), NP64.full((2,), 1.0)))
