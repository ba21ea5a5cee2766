"""Branch-free ESH velocity update (the ``"robust"`` form): every fallback as a per-row ``where``.

The B flow of :mod:`.isokinetic` for a fixed preconditioned gradient ``h = S g`` over time ``tau``
(Steeg & Galstyan 2021; Robnik et al. 2023): with ``m = max_i |h_i|``,

    e = (h / m) / |h / m|,  |h| = m |h / m|,  delta = tau |h| / (d - 1),  c = clip(u . e, -1, 1),
    zeta = exp(-delta),  omega = -expm1(-delta),
    u' = normalise(normalise(e omega (1 + zeta + c omega) + 2 zeta u)),
    dK = (d - 1) (delta + log1p(-q)),   q = (1 - c) omega (1 + zeta) / 2   (q < 1/2),

and ``dK = (d - 1) (delta - log 2 + logaddexp(log(1 + c), log(1 - c) - 2 delta))`` for ``q >= 1/2``.
:func:`esh_general` runs on any Array-API namespace without host reads; the eager fast path
(:mod:`.esh_eager`) and the lean form (:mod:`.esh_lean`) fall back to it for rows that need it.
"""
from __future__ import annotations

import math

from .esh_eager import safe_log as _safe_log, tiny as _tiny

__all__ = ["esh_general"]


def _norm_col(xp, a):
    """Row norms of ``a`` (n, d) as an (n, 1) column: ``sqrt(a . a)`` (one fused reduction, no temporary)."""
    return xp.sqrt(xp.vecdot(a, a))[:, None]


def esh_general(xp, u, g, tau, d):
    """:func:`~.isokinetic.esh_velocity_update` on checked inputs: ``g`` already ``S g``, ``tau`` float or (n, 1) column.

    Same operations as the formulas of the module docstring; full-size temporaries are
    reused in place and every ``where`` with a per-row condition is applied once.
    """
    # |g|, e = g/|g| without overflow/underflow: scale by max_i |g_i| first.  Rows with
    # max|g| < smallest_normal (zero, subnormal or NaN gradient) are "not ok": their
    # intermediate values are discarded by the final where(ok, ...).
    m = xp.max(xp.abs(g), axis=-1, keepdims=True)
    ok = m >= _tiny(xp, g.dtype)
    m_safe = xp.where(ok, m, 1.0)
    e = g / m_safe  # fresh array: normalised in place below
    ns_safe = xp.where(ok, _norm_col(xp, e), 1.0)
    e /= ns_safe
    gnorm = xp.where(ok, m_safe * ns_safe, 0.0)
    delta = tau * (gnorm / (d - 1))  # (n, 1)
    c = xp.minimum(xp.maximum(xp.vecdot(u, e)[:, None], -1.0), 1.0)  # clip to [-1, 1] against rounding
    neg_delta = -delta
    zeta = xp.exp(neg_delta)
    om = -xp.expm1(neg_delta)  # 1 - zeta, accurate for small delta
    raw = e * (om * (1.0 + zeta + c * om))
    raw += (2.0 * zeta) * u
    rn = _norm_col(xp, raw)
    good = rn > 0
    raw /= xp.where(good, rn, 1.0)
    # second pass: when raw is subnormal (c = -1 with zeta^2 near underflow, float32) its norm is
    # inaccurate; renormalising the O(1) result restores |u'| = 1 to rounding
    raw /= xp.where(good, _norm_col(xp, raw), 1.0)
    # fallbacks where raw = 0 (c = -1 with zeta^2 underflow, or u = 0 with delta = 0):
    # u if u != 0 else e; and u unchanged where not ok
    u_nonzero = xp.vecdot(u, u)[:, None] > 0
    bad = ~good
    u_new = xp.where(ok & bad & ~u_nonzero, e, raw)
    u_new = xp.where((~ok) | (bad & u_nonzero), u, u_new)
    # u exactly antiparallel to g (c = -1) is a fixed point of the flow; the formula's cancellation
    # (-2 zeta^2 e from two O(zeta) terms) can lose it in float32, so keep u there explicitly
    u_new = xp.where(ok & (c <= -1.0) & u_nonzero, u, u_new)

    # kinetic change / (d - 1) = log(cosh delta + c sinh delta)
    one_plus_c, one_minus_c = 1.0 + c, 1.0 - c
    q = one_minus_c * (om * (1.0 + zeta)) * 0.5  # (1 - c)(1 - zeta^2)/2 in [0, 1]
    small_q = q < 0.5
    k_small = delta + xp.log1p(-xp.where(small_q, q, 0.0))
    lse = xp.logaddexp(_safe_log(xp, one_plus_c), _safe_log(xp, one_minus_c) - 2.0 * delta)
    anti = one_plus_c > 0
    k_large = xp.where(anti, delta - math.log(2.0) + xp.where(anti, lse, 0.0), neg_delta)
    k = xp.where(small_q, k_small, k_large)
    k = xp.where(ok, k, 0.0)
    return u_new, (d - 1) * k[:, 0]
