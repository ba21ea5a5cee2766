"""Eager fast paths of the ESH velocity update (NumPy and ``array_api_strict``), bit-identical to the general form.

The B flow of :mod:`.isokinetic` for a fixed preconditioned gradient ``h = S g`` over time ``tau``:

    m = max_i |h_i|,  e = (h / m) / |h / m|,  |h| = m |h / m|,  delta = tau |h| / (d - 1),
    c = clip(u . e, -1, 1),  zeta = exp(-delta),  omega = -expm1(-delta) = 1 - zeta,
    u' = normalise(normalise(e omega (1 + zeta + c omega) + 2 zeta u)),
    dK = (d - 1) (delta + log1p(-q)),   q = (1 - c) omega (1 + zeta) / 2   (q < 1/2),

with the ``q >= 1/2`` branch ``dK = (d - 1) (delta - log 2 + logaddexp(log(1 + c), log(1 - c) - 2 delta))``.
These are the operations of :func:`.isokinetic._esh_general` in the same order, without its
fallback ``where``s: the functions here first establish (host reads, cheap on eager namespaces)
that no row needs a fallback (``max|h| >= smallest_normal``, ``|raw| > 0``, ``c > -1``) and return
``None`` otherwise, so that the caller runs the general form.  Every result is bit-identical to the
general form's (``tests/test_esh_fast_path.py``).

Two forms:

* :func:`esh_fast_columns`: per-row quantities as ``(n, 1)`` columns (any ``n``);
* :func:`esh_fast_row`: one chain (``n = 1``) of a plain NumPy array: the per-row quantities are
  NumPy scalars of the array's dtype (IEEE ``+ - * /`` in that dtype, and the same ufunc loops for
  ``sqrt``, ``exp``, ``expm1``, ``log1p``, ``log``, ``logaddexp`` as on arrays), which removes the
  per-call cost of about 25 ``(1, 1)`` array operations per update.

Direction reuse: the first B of a step uses the gradient stored by the previous step's last B, so
``e`` and ``|h|`` of that gradient can be carried over (:class:`Direction`).  A :class:`Direction`
remembers the objects it was computed from (gradient and diagonal preconditioner, or metric) and is
used only when the same objects come back (identity, not value: the caller must not modify the
gradient in place); otherwise it is recomputed.
"""
from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np

from ..backend.namespace import eager_all, eager_max, eager_min

__all__ = ["Direction", "esh_fast_columns", "esh_fast_row"]

_TINY: dict = {}
# NumPy's clip ufunc (``minimum(maximum(x, lo), hi)``, NaN propagating) in one call; ``np.clip`` wraps it in
# three Python functions.  Not public API, hence the fallback.
_clip = getattr(getattr(np, "_core", None) and np._core.umath, "clip", None)
if not isinstance(_clip, np.ufunc):  # pragma: no cover - NumPy without the ufunc
    _clip = None
_LOG2 = math.log(2.0)


def tiny(xp, dtype) -> float:
    """``finfo(dtype).smallest_normal`` as a Python float (cached per namespace and dtype)."""
    key = (id(xp), dtype)
    t = _TINY.get(key)
    if t is None:
        t = _TINY[key] = float(xp.finfo(dtype).smallest_normal)
    return t


class Direction(NamedTuple):
    """``e = h/|h|`` and ``|h|`` of a preconditioned gradient ``h = S g``, for reuse by the next B.

    unit : (n, d) array ``e`` (not to be modified: it is shared with the caller), or ``None`` when the
        lean form (:mod:`.esh_lean`) made it: that form carries ``scaled`` instead
    norm : ``(n, 1)`` column, or a NumPy scalar for one chain (:func:`esh_fast_row`)
    grad : the gradient object ``g`` it was computed from
    scale : the preconditioner object (``None``, the ``sqrt_diag`` array or a metric)
    scaled : ``h = S g`` itself (lean form only; ``None`` otherwise)
    """

    unit: Any
    norm: Any
    grad: Any
    scale: Any
    scaled: Any = None

    def matches(self, grad, scale) -> bool:
        """True when ``grad`` and ``scale`` are the very objects this direction was computed from."""
        return self.grad is grad and self.scale is scale


def esh_fast_columns(xp, u, h, tau, d, cached=None):
    """ESH update ``(u', dK, e, |h|)`` with ``(n, 1)`` columns, or ``None`` when a row needs a fallback.

    ``h`` is the preconditioned gradient, ``tau`` a float or ``(n, 1)`` column; ``cached`` an
    ``(e, |h|)`` pair of ``h`` (from :class:`Direction`) that replaces the first five passes.
    """
    if cached is None:
        n, dd = h.shape
        if isinstance(h, np.ndarray) and dd <= 32 and n > dd:
            # short rows: NumPy reduces along a short last axis one row at a time; reducing the transposed,
            # contiguous |h| along its first axis is elementwise over n (same maxima: max is exact)
            m = np.maximum.reduce(np.abs(h.T, order="C"), axis=0)[:, None]
        else:
            m = eager_max(xp, xp.abs(h), axis=-1, keepdims=True)
        if not float(eager_min(xp, m)) >= tiny(xp, h.dtype):  # NaN min -> False
            return None
        e = h / m  # fresh array: normalised in place below
        ns = xp.sqrt(xp.vecdot(e, e))[:, None]
        e /= ns
        gn = m * ns
    else:
        e, gn = cached
    delta = tau * (gn / (d - 1))  # (n, 1)
    if _clip is not None and isinstance(u, np.ndarray):
        c = _clip(np.vecdot(u, e)[:, None], -1.0, 1.0)
    else:
        c = xp.minimum(xp.maximum(xp.vecdot(u, e)[:, None], -1.0), 1.0)
    neg_delta = -delta
    zeta = xp.exp(neg_delta)
    om = -xp.expm1(neg_delta)  # 1 - zeta, accurate for small delta
    opz = 1.0 + zeta
    raw = e * (om * (opz + c * om))
    raw += (2.0 * zeta) * u
    rn = xp.sqrt(xp.vecdot(raw, raw))[:, None]
    if not (float(eager_min(xp, rn)) > 0.0 and float(eager_min(xp, c)) > -1.0):
        return None
    raw /= rn
    raw /= xp.sqrt(xp.vecdot(raw, raw))[:, None]
    one_minus_c = 1.0 - c
    q = one_minus_c * (om * opz) * 0.5
    return raw, (d - 1) * log_kinetic_columns(xp, c, one_minus_c, delta, neg_delta, q)[:, 0], e, gn


def log_kinetic_columns(xp, c, one_minus_c, delta, neg_delta, q):
    """``dK / (d - 1) = log(cosh delta + c sinh delta)`` per row from ``(n, 1)`` columns.

    ``delta + log1p(-q)`` where ``q < 1/2`` (one ``max`` read decides that every row is there),
    else ``delta - log 2 + logaddexp(log(1 + c), log(1 - c) - 2 delta)`` (``-delta`` for ``c = -1``).
    """
    if float(eager_max(xp, q)) < 0.5:  # every row on the log1p branch (NaN -> the mixed form below)
        return delta + xp.log1p(-q)
    small_q = q < 0.5
    k_small = delta + xp.log1p(-xp.where(small_q, q, 0.0))
    one_plus_c = 1.0 + c
    lse = xp.logaddexp(safe_log(xp, one_plus_c), safe_log(xp, one_minus_c) - 2.0 * delta)
    anti = one_plus_c > 0
    k_large = xp.where(anti, delta - _LOG2 + xp.where(anti, lse, 0.0), neg_delta)
    return xp.where(small_q, k_small, k_large)


def esh_fast_row(u, h, tau, d, cached=None):
    """:func:`esh_fast_columns` for one chain of a plain NumPy array (``u``, ``h`` of shape (1, d)).

    ``tau``: a Python float or a ``(1, 1)`` array of ``h``'s dtype.  Returns ``(u', dK, e, |h|)``
    with ``dK`` of shape (1,) and ``|h|`` a NumPy scalar, or ``None`` when the row needs a fallback.
    """
    if cached is None:
        m = np.maximum.reduce(np.abs(h), axis=None)
        if not m >= tiny(np, h.dtype):  # NaN -> False
            return None
        e = h / m
        ns = np.sqrt(np.vecdot(e, e)[0])
        e /= ns
        gn = m * ns
    else:
        e, gn = cached
        if not isinstance(gn, np.generic):
            return None
    if isinstance(tau, np.ndarray):
        tau = tau[0, 0]
    delta = tau * (gn / (d - 1))
    c = np.vecdot(u, e)[0]
    if not c > -1.0:  # antiparallel (fixed point kept by the general form) or NaN
        return None
    if c > 1.0:
        c = c.dtype.type(1.0)
    neg_delta = -delta
    zeta = np.exp(neg_delta)
    om = -np.expm1(neg_delta)
    opz = 1.0 + zeta
    raw = e * (om * (opz + c * om))
    raw += (2.0 * zeta) * u
    rn = np.sqrt(np.vecdot(raw, raw)[0])
    if not rn > 0.0:
        return None
    raw /= rn
    raw /= np.sqrt(np.vecdot(raw, raw)[0])
    one_minus_c = 1.0 - c
    q = one_minus_c * (om * opz) * 0.5
    return raw, ((d - 1) * log_kinetic_row(c, one_minus_c, delta, q)).reshape(1), e, gn


def log_kinetic_row(c, one_minus_c, delta, q):
    """:func:`log_kinetic_columns` for NumPy scalars with ``c > -1``."""
    if q < 0.5:
        return delta + np.log1p(-q)
    # c > -1, so 1 + c > 0; q >= 1/2 needs 1 - c > 0: both logarithms finite
    return delta - _LOG2 + np.logaddexp(np.log(1.0 + c), np.log(one_minus_c) - 2.0 * delta)


def safe_log(xp, x):
    """``log(x)`` for ``x >= 0`` with ``log(0) = -inf`` and no warning."""
    pos = x > 0
    return xp.where(pos, xp.log(xp.where(pos, x, 1.0)), -math.inf)
