"""Metric objects of the isokinetic integrator (identity, diagonal, dense ``S``).

* identity and diagonal metrics run the arithmetic of ``sqrt_diag=None`` / ``sqrt_diag=array``: bit for bit;
* the dense metric integrates ``x += tau S u``, B on ``S g`` in ``x`` directly; the coordinate-transform
  form (SMILE's dense pSMILE step: step ``z = S^{-1} x`` with score ``S g``, map back) agrees to rounding.
  Tolerance: both forms are the same map in exact arithmetic; they differ by the rounding of the
  transforms, ``O(cond(S) eps |x|)`` per step, with ``cond(S) <= 4`` here: ``2e-14`` (about 100 float64
  ulp) relative to the scale of the state, over one step and over 10 steps of a well-conditioned
  Gaussian (measured: at most 4e-16 after one step, 2e-15 after 10).

Deterministic (fixed seeds); no statistical assertion, so no failure probability.
"""

import numpy as np
import pytest

import array_api_compat.numpy as xp
from smile_ref.integrators import (MCLACHLAN, DenseMetric, DiagonalMetric, IdentityMetric, IntegratorState,
                                   as_metric, esh_velocity_update, isokinetic_step, position_update)

N, D = 4, 6


def _spd(r, n, d, lo=0.5, hi=2.0):
    Q = np.linalg.qr(r.standard_normal((n, d, d)))[0]
    w = r.uniform(lo, hi, (n, 1, d))
    S = (Q * w) @ np.swapaxes(Q, -1, -2)
    return 0.5 * (S + np.swapaxes(S, -1, -2))


def _gauss(P):
    def lg(x):
        g = -(x @ P)
        return 0.5 * np.sum(x * g, axis=1), g
    return lg


def _state(r, lg, n=N, d=D):
    x = r.standard_normal((n, d))
    u = r.standard_normal((n, d))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    return IntegratorState(x, u, *lg(x))


def _same(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def test_identity_and_diagonal_metrics_are_bit_identical_to_sqrt_diag():
    r = np.random.default_rng(0)
    lg = _gauss(_spd(r, 1, D)[0])
    s0 = _state(r, lg)
    sd = r.uniform(0.5, 2.0, (N, D))
    for metric, sqrt_diag in ((IdentityMetric(), None), (DiagonalMetric(sd), sd)):
        a, ka = isokinetic_step(s0, 0.3, lg, MCLACHLAN, sqrt_diag)
        b, kb = isokinetic_step(s0, 0.3, lg, MCLACHLAN, metric=metric)
        assert all(_same(p, q) for p, q in zip((*a, ka), (*b, kb)))
        assert all(_same(p, q) for p, q in zip(esh_velocity_update(s0.momentum, s0.logdensity_grad, 0.2, sqrt_diag),
                                              esh_velocity_update(s0.momentum, s0.logdensity_grad, 0.2, metric=metric)))
        assert _same(position_update(s0.position, s0.momentum, 0.2, sqrt_diag),
                     position_update(s0.position, s0.momentum, 0.2, metric=metric))
    # one diagonal row for all chains equals the broadcast (n, d) array
    row = sd[0]
    a, _ = isokinetic_step(s0, 0.3, lg, MCLACHLAN, np.broadcast_to(row, (N, D)).copy())
    b, _ = isokinetic_step(s0, 0.3, lg, MCLACHLAN, metric=DiagonalMetric(row))
    assert all(_same(p, q) for p, q in zip(a, b))


def _transform_step(state, eps, lg, S, S_inv, n_steps):
    """The coordinate-transform form: steps in z = S^{-1} x with score S g, mapped back to x each step."""
    def mv(v, M):
        return (v[:, None, :] @ M)[:, 0, :]

    def f_z(z):
        lp, g = lg(mv(z, S))
        return lp, mv(g, S)

    dks = []
    for _ in range(n_steps):
        zs = IntegratorState(mv(state.position, S_inv), state.momentum, state.logdensity, mv(state.logdensity_grad, S))
        new, dK = isokinetic_step(zs, eps, f_z, MCLACHLAN)
        state = IntegratorState(mv(new.position, S), new.momentum, new.logdensity, mv(new.logdensity_grad, S_inv))
        dks.append(dK)
    return state, dks


@pytest.mark.parametrize("shared", [False, True])
def test_dense_metric_equals_coordinate_transform(shared):
    r = np.random.default_rng(1)
    lg = _gauss(_spd(r, 1, D, 0.3, 3.0)[0])
    S = _spd(r, 1 if shared else N, D)
    if shared:
        S = S[0]
    S_inv = np.linalg.inv(S)
    S_inv = 0.5 * (S_inv + np.swapaxes(S_inv, -1, -2))
    s0 = _state(r, lg)
    ref, ref_dk = _transform_step(s0, 0.4, lg, S, S_inv, 10)
    st, dks = s0, []
    for _ in range(10):
        st, dk = isokinetic_step(st, 0.4, lg, MCLACHLAN, metric=DenseMetric(S))
        dks.append(dk)
    for a, b in zip(st, ref):
        scale = max(1.0, float(np.max(np.abs(b))))
        assert np.max(np.abs(a - b)) <= 2e-14 * scale
    assert np.max(np.abs(np.array(dks) - np.array(ref_dk))) <= 2e-14 * max(1.0, float(np.max(np.abs(ref_dk))))
    assert np.max(np.abs(st.position - s0.position)) > 0.1  # the chains moved


def test_dense_diagonal_matrix_matches_diagonal_metric():
    r = np.random.default_rng(4)
    lg = _gauss(np.diag(np.linspace(0.5, 2.0, D)))
    s0 = _state(r, lg)
    sd = r.uniform(0.5, 2.0, (N, D))
    S = np.zeros((N, D, D))
    S[:, np.arange(D), np.arange(D)] = sd
    a, ka = isokinetic_step(s0, 0.3, lg, MCLACHLAN, sd)
    b, kb = isokinetic_step(s0, 0.3, lg, MCLACHLAN, metric=DenseMetric(S))
    for p, q in zip((*a, ka), (*b, kb)):
        np.testing.assert_allclose(q, p, rtol=1e-14, atol=1e-14)


def test_metric_arguments_are_validated():
    sd = np.ones((N, D))
    with pytest.raises(ValueError, match="either metric or sqrt_diag"):
        as_metric(IdentityMetric(), sd)
    with pytest.raises(TypeError, match="metric must be"):
        as_metric("dense")
    with pytest.raises(ValueError, match="S must be a square"):
        DenseMetric(np.ones((D, D + 1)))
    with pytest.raises(ValueError, match="sqrt_diag must be an array"):
        DiagonalMetric(1.0)
    r = np.random.default_rng(5)
    s0 = _state(r, _gauss(np.eye(D)))
    with pytest.raises(ValueError, match="dense metric's S"):
        isokinetic_step(s0, 0.3, _gauss(np.eye(D)), MCLACHLAN, metric=DenseMetric(np.eye(D + 1)))
    with pytest.raises(ValueError, match="dense metric's S"):
        esh_velocity_update(s0.momentum, s0.logdensity_grad, 0.1, metric=DenseMetric(np.ones((N + 1, D, D))))


def test_dense_metric_on_array_api_strict_equals_numpy():
    xps = pytest.importorskip("array_api_strict")
    r = np.random.default_rng(6)
    P = _spd(r, 1, D)[0]
    S = _spd(r, N, D)
    s0 = _state(r, _gauss(P))

    def lg_s(x):
        g = -(x @ xps.asarray(P))
        return 0.5 * xps.sum(x * g, axis=1), g

    a, ka = isokinetic_step(s0, 0.3, _gauss(P), MCLACHLAN, metric=DenseMetric(S))
    s0s = IntegratorState(*(xps.asarray(v) for v in s0))
    b, kb = isokinetic_step(s0s, 0.3, lg_s, MCLACHLAN, metric=DenseMetric(xps.asarray(S)))
    for p, q in zip((*a, ka), (*b, kb)):
        assert _same(p, np.asarray(q))
