"""Tests of smile_ref.integrators (closed-form ESH flow, palindromic schemes, refresh) and theory/esh.py."""
from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.integrate
import scipy.stats
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from smile_ref.backend import to_numpy
from smile_ref.integrators import (
    INTEGRATORS,
    IntegratorState,
    esh_velocity_update,
    full_refresh,
    get_integrator,
    isokinetic_step,
    partial_refresh,
    position_update,
    reference_step,
)
from smile_ref.theory import esh as T

from .conftest import assert_backend, tol_for

SCHEMES = ["leapfrog", "mclachlan", "yoshida", "omelyan", "omelyan_4grad"]


# ----------------------------------------------------------------------------- local targets
def _gauss(scales):
    def f(x):
        return -0.5 * np.sum(x**2 / scales**2, axis=1), -x / scales**2

    return f


def _funnel(x):
    """Neal's funnel: v ~ N(0, 3^2), y_i | v ~ N(0, e^v)."""
    v, y = x[:, 0], x[:, 1:]
    k = y.shape[1]
    r2 = np.sum(y**2, axis=1) * np.exp(-v)
    lp = -0.5 * v**2 / 9.0 - 0.5 * r2 - 0.5 * k * v
    gv = -v / 9.0 + 0.5 * r2 - 0.5 * k
    return lp, np.concatenate([gv[:, None], -y * np.exp(-v)[:, None]], axis=1)


def _unit(rng, n, d):
    z = rng.normal(size=(n, d))
    return z / np.linalg.norm(z, axis=1, keepdims=True)


def _stationary_starts(rng, n, d):
    """(Gaussian target, x0) and (funnel target, x0) with x0 ~ target (funnel neck |v| <= 1.5)."""
    s = np.linspace(1.0, 2.0, d)
    v = np.clip(rng.normal(size=n), -1.5, 1.5)
    xf = np.concatenate([v[:, None], rng.normal(size=(n, d - 1)) * np.exp(v / 2)[:, None]], axis=1)
    return {"gauss": (_gauss(s), rng.normal(size=(n, d)) * s), "funnel": (_funnel, xf)}


# ----------------------------------------------------------------------------- theory (SymPy)
def test_theory_residuals_vanish():
    """Every SymPy residual of theory/esh.py simplifies to exactly 0."""
    res = T.all_residuals()
    assert set(res) == {"ode_alpha", "ode_beta", "norm", "zeta_alpha", "zeta_beta", "zeta_norm", "work", "kinetic_zeta"}
    for name, r in res.items():
        assert r == 0, f"{name}: {r}"


def test_theory_detects_a_wrong_formula():
    """The residual machinery is not vacuous: swapping sinh/cosh in the numerator leaves a nonzero residual."""
    den = sp.cosh(T.delta) + T.c * sp.sinh(T.delta)
    alpha = (sp.cosh(T.delta) + T.c * (sp.sinh(T.delta) - 1)) / den
    beta = 1 / den
    m = alpha + T.c * beta
    r = sp.simplify((sp.diff(alpha, T.t) - T.G / T.D * (1 - m * alpha)).rewrite(sp.exp))
    assert r != 0


def test_theory_numeric_reference_matches_implementation(rng):
    """float64 implementation vs 40-digit mpmath evaluation of the hyperbolic form (rel. 1e-12)."""
    n, d = 12, 6
    u, g = _unit(rng, n, d), rng.normal(size=(n, d)) * np.logspace(-2, 2, n)[:, None]
    tau = np.logspace(-3, 1, n)
    ref_u, ref_k = T.esh_reference(u, g, tau)
    out_u, out_k = esh_velocity_update(u, g, tau)
    np.testing.assert_allclose(out_u, ref_u, rtol=0, atol=1e-13)
    np.testing.assert_allclose(out_k, ref_k, rtol=1e-12, atol=1e-15)
    a, b, k = T.velocity_numeric(0.3, 0.7)
    assert abs(a**2 + 2 * 0.3 * a * b + b**2 - 1) < 1e-14 and abs(k - math.log(math.cosh(0.7) + 0.3 * math.sinh(0.7))) < 1e-15


# ----------------------------------------------------------------------------- closed form vs ODE
def _ivp(u, g, tau):
    d = u.shape[0]

    def rhs(_, y):
        v = y[:d]
        vg = v @ g
        return np.concatenate([(g - vg * v) / (d - 1), [vg]])

    sol = scipy.integrate.solve_ivp(rhs, (0.0, tau), np.concatenate([u, [0.0]]), method="DOP853", rtol=1e-13, atol=1e-14)
    assert sol.success
    return sol.y[:d, -1], sol.y[d, -1]


@settings(max_examples=25)
@given(seed=st.integers(0, 2**32 - 1), d=st.integers(2, 9), tau=st.floats(1e-3, 3.0), scale=st.floats(0.05, 8.0),
       anti=st.floats(-1.0, 1.0))
def test_velocity_update_solves_the_ode(seed, d, tau, scale, anti):
    """Closed form vs solve_ivp(DOP853, rtol 1e-13) of du/dt = P(u)g/(d-1), dK/dt = u.g: agree to 1e-10.

    ``anti`` tilts ``u`` towards ``-e`` (c close to -1, the unstable fixed point) for some examples.
    """
    r = np.random.default_rng(seed)
    g = r.normal(size=d) * scale
    u = _unit(r, 1, d)[0] - anti * g / np.linalg.norm(g)
    u /= np.linalg.norm(u)
    u_ivp, k_ivp = _ivp(u, g, tau)
    u_new, k = esh_velocity_update(u[None], g[None], tau)
    np.testing.assert_allclose(u_new[0], u_ivp, rtol=0, atol=1e-10)
    assert abs(k[0] - k_ivp) <= 1e-10 * max(1.0, abs(k_ivp))


# ----------------------------------------------------------------------------- numerics: unit norm, edge cases
@settings(max_examples=50)
@given(seed=st.integers(0, 2**32 - 1), d=st.integers(2, 12), log_g=st.floats(-300, 300), log_tau=st.floats(-12, 6),
       f32=st.booleans())
def test_velocity_update_unit_norm_any_magnitude(seed, d, log_g, log_tau, f32):
    """|u'| = 1 to rounding for |g| in 1e-300..1e300 (float32: clipped to 1e-30..1e30), any tau,
    including rows with u antiparallel to g (exactly and up to rounding), u = 0 and g = 0."""
    dt = np.float32 if f32 else np.float64
    if f32:
        log_g = float(np.clip(log_g, -30, 30))
    r = np.random.default_rng(seed)
    g = r.normal(size=(5, d)) * 10.0**log_g
    u = _unit(r, 5, d)
    u[1] = -g[1] / np.linalg.norm(g[1] / 10.0**log_g) / 10.0**log_g  # antiparallel up to rounding
    g[2] = 0.0
    g[2, 0] = 10.0**log_g
    u[2] = 0.0
    u[2, 0] = -1.0  # antiparallel exactly: c = -1
    u[3] = 0.0  # zero velocity
    g[4] = 0.0  # zero gradient
    tau = 10.0**log_tau
    with np.errstate(over="ignore"):
        u_new, k = esh_velocity_update(u.astype(dt), g.astype(dt), tau)
    assert u_new.dtype == dt and k.dtype == dt
    assert np.all(np.isfinite(u_new))
    eps = np.finfo(dt).eps
    np.testing.assert_array_less(np.abs(np.linalg.norm(u_new.astype(np.float64), axis=1) - 1.0), 8 * eps)
    assert not np.any(np.isnan(k))
    with np.errstate(over="ignore"):
        delta = tau * np.linalg.norm(g.astype(np.float64), axis=1) / (d - 1)
    assert np.all(np.isfinite(k[delta < 0.1 * np.finfo(dt).max / d]))
    np.testing.assert_array_equal(u_new[2], u[2].astype(dt))  # exact fixed point stays
    np.testing.assert_array_equal(u_new[4], u[4].astype(dt))  # g = 0: unchanged
    assert k[4] == 0.0


@pytest.mark.parametrize("dt", [np.float64, np.float32])
def test_velocity_update_edge_cases(dt):
    d = 5
    g = np.zeros((4, d), dtype=dt)
    g[:, 0] = 2.0
    u = np.zeros((4, d), dtype=dt)
    u[0, 0] = -1.0  # c = -1 exactly, huge delta
    u[1, 0] = -1.0  # c = -1 exactly, moderate delta
    # u[2] = 0: zero velocity (SMILE's first step), u[3] = 0 with huge delta
    tau = np.array([1e4, 0.5, 0.5, 1e4], dtype=dt)
    u_new, k = esh_velocity_update(u, g, tau)
    delta = tau.astype(np.float64) * 2.0 / (d - 1)
    np.testing.assert_array_equal(u_new[:2], u[:2])
    np.testing.assert_allclose(k[:2], -(d - 1) * delta[:2], rtol=10 * np.finfo(dt).eps)
    e = np.zeros(d, dtype=dt)
    e[0] = 1.0
    np.testing.assert_array_equal(u_new[2:], np.stack([e, e]))
    logcosh = np.array([math.log(math.cosh(delta[2])), delta[3] - math.log(2.0)])
    np.testing.assert_allclose(k[2:], (d - 1) * logcosh, rtol=10 * np.finfo(dt).eps)
    # tau = 0 is the identity (dK = 0); subnormal gradient counts as zero
    u1 = _unit(np.random.default_rng(0), 2, d).astype(dt)
    u0, k0 = esh_velocity_update(u1, g[:2], 0.0)
    np.testing.assert_allclose(u0, u1, rtol=0, atol=2 * np.finfo(dt).eps)  # renormalised only
    assert np.all(k0 == 0)
    sub = np.full((2, d), np.finfo(dt).smallest_normal / 4, dtype=dt)
    u0, k0 = esh_velocity_update(u1, sub, 1.0)
    np.testing.assert_array_equal(u0, u1)
    assert np.all(k0 == 0)


def test_small_delta_kinetic_change_is_accurate():
    """dK ~ (d-1) c delta for tiny delta: no cancellation (rel. error 1e-12 vs mpmath at delta ~ 1e-12)."""
    r = np.random.default_rng(3)
    u, g = _unit(r, 6, 4), r.normal(size=(6, 4))
    tau = 1e-12
    _, ref = T.esh_reference(u, g, tau)
    _, k = esh_velocity_update(u, g, tau)
    np.testing.assert_allclose(k, ref, rtol=1e-12)


# ----------------------------------------------------------------------------- schemes
def test_coefficients_table():
    for name, sch in INTEGRATORS.items():
        c = sch.coefficients
        assert c == c[::-1], name
        assert abs(sum(c[0::2]) - 1) < 1e-14 and abs(sum(c[1::2]) - 1) < 1e-14, name
        assert sch.n_grad == len(c) // 2
    assert get_integrator("minimal_norm") is get_integrator("mclachlan")
    assert get_integrator("velocity_verlet").coefficients == (0.5, 1.0, 0.5)
    assert get_integrator("mclachlan").coefficients[0] == 0.1931833275037836
    assert [get_integrator(s).n_grad for s in SCHEMES] == [1, 2, 3, 5, 4]
    assert [get_integrator(s).order for s in SCHEMES] == [2, 2, 2, 4, 4]
    om = get_integrator("omelyan").coefficients  # BlackJAX omelyan_coefficients
    assert om[:4] == (0.08398315262876693, 0.2539785108410595, 0.6822365335719091, -0.03230286765269967)
    assert get_integrator("yoshida").coefficients[:2] == (0.11888010966548, 0.29619504261126)
    with pytest.raises(ValueError, match="integrator must be one of"):
        get_integrator("rk4")


@pytest.mark.parametrize("name", SCHEMES)
@pytest.mark.parametrize("target", ["gauss", "funnel"])
def test_energy_error_order(name, target):
    """Per-step energy error of an order-p scheme is a local error: mean |dE| ~ eps^(p+1).

    Measured: mean over 256 chains started at (near-)stationary x, uniform u, and over 3
    consecutive steps, of |dK - (log p(x') - log p(x))|, at 4 step sizes halving; the slope of
    log mean|dE| vs log eps must be p + 1 +- 0.3 (2nd order -> 3, 4th order -> 5).  "yoshida" is
    BlackJAX's 3-stage McLachlan scheme: 2nd order.  Deterministic (fixed seed).
    """
    d, n = 8, 256
    r = np.random.default_rng(11)
    f, x0 = _stationary_starts(r, n, d)[target]
    u0 = _unit(r, n, d)
    sch = get_integrator(name)
    epss = np.array([0.2, 0.1, 0.05, 0.025] if sch.order == 2 else [0.4, 0.2, 0.1, 0.05])
    if target == "funnel":
        epss = epss / 2
    errs = []
    for eps in epss:
        lp, g = f(x0)
        state, tot = IntegratorState(x0, u0, lp, g), []
        for _ in range(3):
            new, dK = isokinetic_step(state, float(eps), f, sch)
            tot.append(np.abs(dK - (new.logdensity - state.logdensity)))
            state = new
        errs.append(np.mean(tot))
    slope = np.polyfit(np.log(epss), np.log(errs), 1)[0]
    assert abs(slope - (sch.order + 1)) < 0.3, (slope, errs)


@pytest.mark.parametrize("name", SCHEMES)
@pytest.mark.parametrize("target", ["gauss", "funnel"])
@pytest.mark.parametrize("precond", [False, True])
def test_time_reversibility(name, target, precond):
    """Step, flip u, step, flip u back recovers (x, u) to 1e-10 (float64)."""
    n, d = 16, 6
    r = np.random.default_rng(5)
    f, x0 = _stationary_starts(r, n, d)[target]
    u0 = _unit(r, n, d)
    sq = np.exp(r.normal(size=(n, d)) * 0.3) if precond else None
    lp, g = f(x0)
    eps = np.full(n, 0.3 if target == "gauss" else 0.1)
    s1, k1 = isokinetic_step(IntegratorState(x0, u0, lp, g), eps, f, name, sq)
    s2, k2 = isokinetic_step(s1._replace(momentum=-s1.momentum), eps, f, name, sq)
    np.testing.assert_allclose(s2.position, x0, rtol=0, atol=1e-10)
    np.testing.assert_allclose(-s2.momentum, u0, rtol=0, atol=1e-10)
    np.testing.assert_allclose(k2, -k1, rtol=0, atol=1e-10)  # energy error is odd under reversal
    assert np.max(np.abs(s1.position - x0)) > 1e-2  # the step did move


def test_preconditioned_step_is_a_change_of_variables():
    """x = S y: a step with sqrt_diag=S in x equals an identity-metric step in y mapped by S."""
    n, d = 8, 5
    r = np.random.default_rng(8)
    S = np.exp(r.normal(size=(n, d)) * 0.5)
    s = np.linspace(0.5, 3.0, d)
    fx = _gauss(s)

    def fy(y):
        lp, gx = fx(S * y)
        return lp, S * gx

    y0, u0 = r.normal(size=(n, d)), _unit(r, n, d)
    for name in ("mclachlan", "omelyan"):
        xs, us, ks, lps, gs, es = reference_step(S * y0, u0, 0.2, fx, name, sqrt_diag=S)
        ys, uy, ky, lpy, gy, ey = reference_step(y0, u0, 0.2, fy, name)
        np.testing.assert_allclose(xs, S * ys, atol=1e-13)
        np.testing.assert_allclose(us, uy, atol=1e-13)
        np.testing.assert_allclose(ks, ky, atol=1e-12)
        np.testing.assert_allclose(es, ey, atol=1e-12)
        np.testing.assert_allclose(S * gs, gy, atol=1e-12)


def test_step_gradient_calls_and_zero_velocity_start():
    """n_grad calls per step; an all-zero u (SMILE's first step) becomes a unit velocity."""
    n, d = 4, 3
    f = _gauss(np.ones(d))
    calls = []

    def counted(x):
        calls.append(1)
        return f(x)

    x0 = np.random.default_rng(2).normal(size=(n, d))
    lp, g = f(x0)
    for name in SCHEMES:
        calls.clear()
        new, dK = isokinetic_step(IntegratorState(x0, np.zeros((n, d)), lp, g), 0.1, counted, name)
        assert len(calls) == get_integrator(name).n_grad
        np.testing.assert_allclose(np.linalg.norm(new.momentum, axis=1), 1.0, atol=1e-14)
        assert np.all(np.isfinite(dK))


def test_bad_input_messages():
    u, g = np.zeros((3, 4)), np.ones((3, 4))
    with pytest.raises(ValueError, match="same shape"):
        esh_velocity_update(u, np.ones((3, 5)), 0.1)
    with pytest.raises(ValueError, match="d >= 2"):
        esh_velocity_update(np.zeros((3, 1)), np.ones((3, 1)), 0.1)
    with pytest.raises(ValueError, match=r"tau must be a Python float or an array of shape \(3,\)"):
        esh_velocity_update(u, g, np.ones(4))
    with pytest.raises(ValueError, match=r"x must be an array of shape \(n, d\)"):
        position_update(np.zeros(4), np.zeros(4), 0.1)
    st0 = IntegratorState(u, u, np.zeros(3), g)
    with pytest.raises(ValueError, match="step_size must be finite and > 0"):
        isokinetic_step(st0, 0.0, _gauss(np.ones(4)), "mclachlan")
    with pytest.raises(ValueError, match="L must be > 0"):
        partial_refresh(u, 0.1, 0.0, g)
    with pytest.raises(ValueError, match="u and z must have the same shape"):
        partial_refresh(u, 0.1, 1.0, np.ones((2, 4)))
    with pytest.raises(ValueError, match=r"z must be an array of shape \(n, d\)"):
        full_refresh(np.ones(3))


# ----------------------------------------------------------------------------- refresh
def test_partial_refresh_formula_and_noop(rng):
    n, d = 6, 7
    u, z = _unit(rng, n, d), rng.normal(size=(n, d))
    tau, L = 0.3, 1.7
    nu = math.sqrt((math.exp(2 * tau / L) - 1) / d)
    expect = (u + nu * z) / np.linalg.norm(u + nu * z, axis=1, keepdims=True)
    np.testing.assert_allclose(partial_refresh(u, tau, L, z), expect, atol=1e-15)
    Ls = np.array([L, math.inf, L, math.inf, 0.5, math.inf])
    out = partial_refresh(u, np.full(n, tau), Ls, z)
    np.testing.assert_array_equal(out[Ls == math.inf], u[Ls == math.inf])  # exact no-op
    np.testing.assert_allclose(out[0], expect[0], atol=1e-15)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=4e-16)
    assert partial_refresh(u, tau, math.inf, z) is u
    np.testing.assert_allclose(np.linalg.norm(full_refresh(z), axis=1), 1.0, atol=4e-16)
    np.testing.assert_array_equal(full_refresh(np.zeros((2, 3))), np.zeros((2, 3)))


def _expected_overlap(d, a):
    """E[u'.u] by quadrature: u'.u = (1 + nu z1)/sqrt((1 + nu z1)^2 + nu^2 R), z1 ~ N(0,1), R ~ chi2_{d-1}."""
    nu = math.sqrt(a / d)
    zs, ws = np.polynomial.hermite_e.hermegauss(60)
    ws = ws / ws.sum()

    def inner(R):
        w = 1 + nu * zs
        return np.sum(ws * w / np.sqrt(w**2 + nu**2 * R)) * scipy.stats.chi2.pdf(R, d - 1)

    lo, hi = scipy.stats.chi2.ppf([1e-14, 1 - 1e-14], d - 1)
    return scipy.integrate.quad(inner, lo, hi, epsabs=1e-12, limit=200)[0]


def test_partial_refresh_overlap_decays_like_exp_minus_tau_over_L():
    """Statistical: E[u'.u] for d = 400, tau/L = 0.4.

    Prediction: exact quadrature of E[u'.u] (independent of the code), which must itself be within
    2/d of exp(-tau/L) (the large-d law the nu formula is built on).  Test: two-sided z-test of the
    mean over 4000 chains with the sample standard error, at 5 sigma: failure probability < 6e-7.
    """
    d, n, tau, L = 400, 4000, 0.2, 0.5
    r = np.random.default_rng(20261123)
    u, z = _unit(r, n, d), r.normal(size=(n, d))
    ov = np.sum(partial_refresh(u, tau, L, z) * u, axis=1)
    pred = _expected_overlap(d, math.expm1(2 * tau / L))
    assert abs(pred - math.exp(-tau / L)) < 2.0 / d
    se = ov.std(ddof=1) / math.sqrt(n)
    assert abs(ov.mean() - pred) < 5 * se, (ov.mean(), pred, se)


# ----------------------------------------------------------------------------- backend matrix
def test_backend_matrix(backend):
    """Outputs keep namespace/dtype/device; values match the NumPy float64 run (tol_for)."""
    n, d = 5, 4
    r = np.random.default_rng(4)
    x, u, z = r.normal(size=(n, d)), _unit(r, n, d), r.normal(size=(n, d))
    s, sq, tau = np.linspace(1, 2, d), np.exp(0.2 * r.normal(size=(n, d))), np.linspace(0.1, 0.5, n)
    B = backend.asarray
    iv = B(1.0 / s**2)

    def f_b(xb):
        return -0.5 * backend.xp.sum(xb * xb * iv, axis=1), -xb * iv

    tol = tol_for(backend)
    un, k = esh_velocity_update(B(u), B(-x / s**2), B(tau), sqrt_diag=B(sq))
    un_r, k_r = esh_velocity_update(u, -x / s**2, tau, sqrt_diag=sq)
    assert_backend(un, backend, (n, d))
    assert_backend(k, backend, (n,))
    np.testing.assert_allclose(to_numpy(un), un_r, rtol=tol, atol=tol)
    np.testing.assert_allclose(to_numpy(k), k_r, rtol=tol, atol=tol)
    xn = position_update(B(x), B(u), 0.3, B(sq))
    assert_backend(xn, backend, (n, d))
    out = reference_step(B(x), B(u), B(tau), f_b, "mclachlan", sqrt_diag=B(sq))
    ref = reference_step(x, u, tau, _gauss(s), "mclachlan", sqrt_diag=sq)
    for a, b, shape in zip(out, ref, [(n, d), (n, d), (n,), (n,), (n, d), (n,)]):
        assert_backend(a, backend, shape)
        np.testing.assert_allclose(to_numpy(a), b, rtol=tol, atol=10 * tol)
    for L in (1.5, B(np.array([1.5, math.inf, 2.0, 1.0, math.inf]))):
        p = partial_refresh(B(u), B(tau), L, B(z))
        assert_backend(p, backend, (n, d))
        Lh = L if isinstance(L, float) else to_numpy(L)
        np.testing.assert_allclose(to_numpy(p), partial_refresh(u, tau, Lh, z), rtol=tol, atol=tol)
    fr = full_refresh(B(z))
    assert_backend(fr, backend, (n, d))
    np.testing.assert_allclose(to_numpy(fr), full_refresh(z), rtol=tol, atol=tol)


# ----------------------------------------------------------------------------- BlackJAX cross-check
def test_matches_blackjax():
    """One step of every BlackJAX isokinetic scheme (deterministic and O-B-A-...-B-O with the recorded
    normal draws), Gaussian and funnel, with/without sqrt_diag, agrees with smile_ref to 1e-13.

    Golden file: tests/data/blackjax_isokinetic.npz, made by tests/data/make_blackjax_isokinetic.py
    (BlackJAX 1.7.1, float64).
    """
    import pathlib

    D = np.load(pathlib.Path(__file__).parent / "data" / "blackjax_isokinetic.npz")
    x0, u0, sq, eps, L = D["x0"], D["u0"], D["sqrt_diag"], float(D["step_size"]), float(D["L"])
    n, d = x0.shape
    targets = {"gauss": _gauss(np.linspace(1, 2, d)), "funnel": _funnel}
    names = {"velocity_verlet": "leapfrog", "mclachlan": "mclachlan", "yoshida": "yoshida", "omelyan": "omelyan"}
    for bj, ours in names.items():
        for tname, f in targets.items():
            for pre in (0, 1):
                key = f"{bj}_{tname}_{pre}_"
                S = np.broadcast_to(sq, (n, d)) if pre else None
                x, u, k, lp, _, _ = reference_step(x0, u0, eps, f, ours, sqrt_diag=S)
                for a, b in ((x, "x"), (u, "u"), (k, "k"), (lp, "lp")):
                    np.testing.assert_allclose(a, D[key + b], rtol=0, atol=1e-13, err_msg=key + b)
                lp0, g0 = f(x0)
                um = partial_refresh(u0, eps / 2, L, D["z1"])
                new, km = isokinetic_step(IntegratorState(x0, um, lp0, g0), eps, f, ours, S)
                um = partial_refresh(new.momentum, eps / 2, L, D["z2"])
                for a, b in ((new.position, "mx"), (um, "mu"), (km, "mk")):
                    np.testing.assert_allclose(a, D[key + b], rtol=0, atol=1e-13, err_msg=key + b)
