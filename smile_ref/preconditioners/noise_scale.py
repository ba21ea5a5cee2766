"""pSMILE's gradient-noise preconditioner (Sommer et al. 2026; authors' ``NOISYSMILE``).

An ``init``/``update`` pair (optax-style) over a per-parameter estimate of the
gradient-noise standard deviation from exponential moving averages of the raw
stochastic gradient ``g``:

.. math::

    m_t = \\rho m_{t-1} + (1-\\rho) g_t, \\qquad
    v_t = \\rho v_{t-1} + (1-\\rho) (g_t - m_t)^2 \\quad (\\text{updated mean}),

with ``rho = 0.99``, then ``sigma = sqrt(max(v, 1e-7))`` clipped to
``[1e-2, 1e4]`` and divided by its root mean square over parameters,
``sigma_tilde_i = sigma_i / sqrt(mean_j sigma_j^2)``.  The sampler moves
positions by ``tau u / sigma_tilde`` and feeds ``g / sigma_tilde`` to the
velocity update, i.e. it runs MCLMC in ``z = S^{-1} x`` with
``S = diag(1 / sigma_tilde)`` (``sqrt_diag = 1 / sigma_tilde``): in ``z`` the
noise covariance ``S Sigma S`` is isotropic when ``Sigma`` is diagonal, which is
why the preconditioner removes the continuous-time bias of anisotropic noise
(``docs/derivations/anisotropic-noise-bias.md``).

This is the *centred temporal* variance along the trajectory: it mixes true
mini-batch noise with the change of the full gradient as ``x`` moves; noise
dominates when ``N^2 / b`` is large.
"""
from __future__ import annotations

from typing import Any, NamedTuple

from ..backend import array_namespace, device_of
from ..backend.validate import check_float_in, check_positive_float

__all__ = ["NoiseScaleState", "NoiseScalePreconditioner", "noise_scale_preconditioner",
           "DenseNoiseScaleState", "DenseNoiseScalePreconditioner", "dense_noise_scale_preconditioner"]


class NoiseScaleState(NamedTuple):
    mean: Any  # (n, d) EMA of g
    var: Any  # (n, d) EMA of the centred square


class NoiseScalePreconditioner(NamedTuple):
    init: Any
    update: Any
    sqrt_diag: Any  # state -> (n, d) diagonal of M^{-1/2} = 1 / sigma_tilde
    name: str = "noise_scale"


def noise_scale_preconditioner(decay: float = 0.99, var_floor: float = 1e-7,
                               clip: tuple[float, float] = (1e-2, 1e4), init_mean: float = 0.0,
                               init_std: float = 1.0, carry_mean: bool = True,
                               floor_stored_var: bool = False) -> NoiseScalePreconditioner:
    """Build pSMILE's diagonal gradient-noise preconditioner (defaults as in the authors' code).

    ``init_mean`` is 0 as in the authors' analytical code (their BNN code starts at 1);
    ``init_std`` 1 means the first steps are unpreconditioned.

    ``carry_mean=False`` reproduces the authors' BNN kernel (``NOISYSMILE``), which
    re-initialises the running mean to ``init_mean`` before every update, so that
    ``m_t = rho m_0 + (1 - rho) g_t`` and ``v`` becomes an EMA of
    ``(g_t - rho m_0 - (1 - rho) g_t)^2 = rho^2 (g_t - m_0)^2``: a raw second moment of
    ``g`` about ``m_0`` (1 in their code), not a variance (``docs/errata.md``).
    ``floor_stored_var=True`` applies ``var_floor`` to the stored EMA (the authors
    store ``sqrt(max(v, 1e-7))``) instead of only when ``sigma`` is formed.
    """
    if not isinstance(carry_mean, bool):
        raise TypeError(f"carry_mean must be a bool, got {carry_mean!r}")
    if not isinstance(floor_stored_var, bool):
        raise TypeError(f"floor_stored_var must be a bool, got {floor_stored_var!r}")
    rho = check_float_in(decay, "decay", 0.0, 1.0, False, True)
    floor = check_positive_float(var_floor, "var_floor")
    lo, hi = (check_positive_float(c, "clip") for c in clip)
    if lo >= hi:
        raise ValueError(f"clip must be (low, high) with low < high, got {clip}")
    m0, s0 = float(init_mean), check_positive_float(init_std, "init_std")

    def init(grad) -> NoiseScaleState:
        xp = array_namespace(grad)
        return NoiseScaleState(xp.full_like(grad, m0), xp.full_like(grad, s0 * s0))

    def update(state: NoiseScaleState, grad) -> NoiseScaleState:
        prev = state.mean if carry_mean else m0
        mean = rho * prev + (1.0 - rho) * grad
        r = grad - mean
        var = rho * state.var + (1.0 - rho) * r * r
        if floor_stored_var:
            var = array_namespace(var).maximum(var, floor)
        return NoiseScaleState(mean, var)

    def sqrt_diag(state: NoiseScaleState):
        xp = array_namespace(state.var)
        sigma = xp.clip(xp.sqrt(xp.maximum(state.var, floor)), lo, hi)
        rms = xp.sqrt(xp.mean(sigma * sigma, axis=-1, keepdims=True))
        return rms / sigma

    return NoiseScalePreconditioner(init, update, sqrt_diag)


class DenseNoiseScaleState(NamedTuple):
    mean: Any  # (n, d) EMA of g
    cov: Any  # (n, d, d) EMA of the centred outer product


class DenseNoiseScalePreconditioner(NamedTuple):
    init: Any
    update: Any
    matrices: Any  # state -> (S, S^{-1}), each (n, d, d), S symmetric
    name: str = "dense_noise_scale"


def dense_noise_scale_preconditioner(decay: float = 0.99, var_floor: float = 1e-7,
                                     clip: tuple[float, float] = (1e-2, 1e4), init_std: float = 1.0
                                     ) -> DenseNoiseScalePreconditioner:
    """Dense variant for correlated gradient noise (an smile_ref extension; not in the authors' code).

    EMA of the centred outer product ``C <- rho C + (1 - rho)(g - m)(g - m)^T`` (updated mean ``m``), then
    ``S = c C^{-1/2}`` with the eigenvalues of ``C`` floored at ``var_floor`` and their square roots clipped
    to ``clip`` (as the diagonal version clips ``sigma``), and ``c = sqrt(mean eigenvalue)`` so that
    ``S`` reduces to the diagonal version's ``rms(sigma)/sigma`` when ``C`` is diagonal.  In
    ``z = S^{-1} x`` the noise covariance ``S C S = c^2 I`` is isotropic for *any* constant noise
    covariance, which removes the continuous-time bias that diagonal preconditioning leaves for correlated
    noise.  Cost: one batched ``eigh`` of ``(n, d, d)`` per step and ``O(d^2)`` per gradient evaluation:
    meant for moderate ``d``.
    """
    rho = check_float_in(decay, "decay", 0.0, 1.0, False, True)
    floor = check_positive_float(var_floor, "var_floor")
    lo, hi = (check_positive_float(c, "clip") for c in clip)
    if lo >= hi:
        raise ValueError(f"clip must be (low, high) with low < high, got {clip}")
    s0 = check_positive_float(init_std, "init_std")

    def init(grad) -> DenseNoiseScaleState:
        xp = array_namespace(grad)
        n, d = grad.shape
        eye = xp.eye(d, dtype=grad.dtype, device=device_of(grad))
        return DenseNoiseScaleState(xp.zeros_like(grad), xp.broadcast_to(eye * (s0 * s0), (n, d, d)))

    def update(state: DenseNoiseScaleState, grad) -> DenseNoiseScaleState:
        mean = rho * state.mean + (1.0 - rho) * grad
        r = grad - mean
        return DenseNoiseScaleState(mean, rho * state.cov + (1.0 - rho) * (r[:, :, None] * r[:, None, :]))

    def matrices(state: DenseNoiseScaleState):
        xp = array_namespace(state.cov)
        w, V = xp.linalg.eigh(0.5 * (state.cov + state.cov.mT))
        sig = xp.clip(xp.sqrt(xp.maximum(w, floor)), lo, hi)  # (n, d)
        c = xp.sqrt(xp.mean(sig * sig, axis=-1, keepdims=True))
        S = (V * (c / sig)[:, None, :]) @ V.mT
        S_inv = (V * (sig / c)[:, None, :]) @ V.mT
        return S, S_inv

    return DenseNoiseScalePreconditioner(init, update, matrices)
