"""Lean form of the ESH velocity update (``esh_form="lean"``): the B flow in five full-array passes.

The same B flow as :mod:`.isokinetic` (Steeg & Galstyan 2021, "Hamiltonian dynamics with
non-Newtonian momentum"; Robnik et al. 2023, MCHMC, arXiv 2212.08549): for the preconditioned
gradient ``h = S g`` held fixed over time ``tau`` and a unit velocity ``u``,

    |h| = sqrt(h . h),  e = h / |h|,  delta = tau |h| / (d - 1),  c = u . e,
    zeta = exp(-delta),  omega = 1 - zeta = -expm1(-delta),
    u(tau) = [u + e (sinh delta + c (cosh delta - 1))] / (cosh delta + c sinh delta)
           = (a e + b u) / N,      a = omega (1 + zeta + c omega),   b = 2 zeta,
    N      = 2 zeta (cosh delta + c sinh delta) = 1 + c + (1 - c) zeta^2 = 2 (1 - q),
    q      = (1 - c) omega (1 + zeta) / 2,
    dK     = (d - 1) log(cosh delta + c sinh delta) = (d - 1) (delta + log1p(-q)).

``N`` is the norm of ``a e + b u`` in closed form: for ``|u| = |e| = 1``,
``|a e + b u|^2 = a^2 + b^2 + 2 a b c = N^2`` (an identity in ``c`` and ``zeta``, checked with SymPy
in ``tests/test_esh_lean.py``).  Hence, with ``e`` never formed,

    u' = h (a / (N |h|)) + u (b / (N |u|)),

three full-array passes (two products and a sum), besides the row sums ``h . h`` and ``u . h``.
In code ``em = expm1(-delta) = -omega`` and ``2 q = (c - 1) em (1 + zeta)``, so that
``a / (N |h|) = em (1 + zeta - c em) / ((2 q - 2) |h|)`` and ``b / N = -2 zeta / (2 q - 2)``.  The
robust form (:mod:`.esh_robust`, :mod:`.esh_eager`) instead forms ``e`` by way of ``max|h|`` (5 passes),
builds the unnormalised update (3) and normalises it twice (4): 13 passes per B against 5 here.

``|u|``: the formula keeps ``|u'| = 1`` only as well as the input satisfies ``|u| = 1``, and a chain of
such updates would let rounding errors of ``|u|`` accumulate.  The first B of every integrator step
therefore measures ``|u| = sqrt(u . u)`` (one more pass) and divides by it (``c = u . h / (|h| |u|)`` and
the ``b / (N |u|)`` above: the direction of ``u`` is kept, its length reset), and the later B's of the
step, whose input is a lean output, take ``|u| = 1``.  So ``||u| - 1|`` after any step is bounded by
the rounding of one step (a few ulp plus the rounding of the ``h . h``, ``u . h`` and ``u . u`` row
sums, about ``sqrt(d)`` ulp for BLAS dot products), independent of the number of steps.

Rows this form does not take (detected by two host reads of ``(n, 1)`` row quantities on the eager
namespaces, ``min`` of ``h . h`` and ``u . u`` and ``max`` of ``max(2 q, -7/4 c)``, with the
floating-point warnings of the discarded rows suppressed; then :func:`lean_update` returns ``None``
and the caller runs the robust form for the whole call, so these rows get exactly the robust form's
treatment):

* ``h . h`` not in ``[smallest_normal / eps, inf)``: a zero, subnormal, tiny, huge or non-finite
  gradient (the robust form's ``max|h|`` pre-scaling exists for these);
* ``u . u`` (where measured) not in the same range: a zero velocity (SMILE's first step) or a
  degenerate one;
* ``c <= -1``: ``u`` antiparallel to ``e``, a fixed point the robust form keeps explicitly;
* ``q > 7/8``, i.e. ``N < 1/4`` (``c`` near ``-1`` with large ``delta``): the closed-form ``N``
  stays accurate (a sum of two non-negative terms) but the rounding of ``c`` and of the
  components of ``a e + b u`` (``a, b <= 2``) is amplified by ``2 / N`` in ``|u'|``.

On the rows taken ``N >= 1/4``, so ``u'`` is the robust result to a few ulp plus ``4 x`` the rounding of
``c`` (``|dN/dc| = 1 - zeta^2 <= 1``); measured (``tests/test_esh_lean.py``): at most 10.5 eps per
component of ``u'``, 7.7 eps ``(d - 1) delta`` in ``dK`` and 11 eps in ``|u'|`` (robust: 2 eps).  ``dK`` uses the robust form's own choice per row (:func:`.esh_eager.log_kinetic_columns`: the
``log1p`` formula for ``q < 1/2``, the ``logaddexp`` one otherwise, the same code).

``c`` is clipped to ``<= 1`` against rounding, as in the robust form.  On namespaces without cheap host
reads (CuPy, traced ones) the lean form is not used: there the robust form runs (on CuPy its fused
kernels, :mod:`.cupy_fused`).
"""
from __future__ import annotations

import numpy as np

from ..backend import host_checks_cheap
from ..backend.namespace import eager_max, eager_min
from .esh_eager import Direction, log_kinetic_columns, log_kinetic_row
from .metric import scaled as _scaled

__all__ = ["ESH_FORM_NAMES", "is_lean", "lean_update", "lean_b"]

ESH_FORM_NAMES = ("robust", "lean")
_Q_MAX = 0.875  # rows with q > 7/8, i.e. N < 1/4, go to the robust form
_THRESH: dict = {}


def is_lean(esh_form) -> bool:
    """``True`` for ``"lean"``, ``False`` for ``"robust"``; ``ValueError`` naming ``esh_form`` otherwise."""
    if esh_form == "robust" and type(esh_form) is str:
        return False
    if esh_form == "lean" and type(esh_form) is str:
        return True
    raise ValueError(f"esh_form must be one of {ESH_FORM_NAMES}, got {esh_form!r}")


def _threshold(xp, dtype) -> float:
    """``smallest_normal / eps``: below it a row sum of squares may have lost precision to subnormals."""
    key = (id(xp), dtype)
    t = _THRESH.get(key)
    if t is None:
        fi = xp.finfo(dtype)
        t = _THRESH[key] = float(fi.smallest_normal) / float(fi.eps)
    return t


def lean_update(xp, u, h, tau, d, unit=False, cached=None):
    """Lean ESH update ``(u', dK, |h|)`` on checked inputs, or ``None`` when a row needs the robust form.

    Parameters
    ----------
    xp : namespace of ``u`` (NumPy or ``array_api_strict``: host reads decide the fallback)
    u : (n, d) velocities; ``unit`` says that ``|u| = 1`` to rounding (a lean output), else
        ``u . u`` is measured.
    h : (n, d) preconditioned gradient ``S g`` (``None`` when ``cached`` is given).
    tau : Python float or ``(n, 1)`` column of ``u``'s dtype.
    d : int, the dimension.
    cached : ``(v, |v|, |h|)`` with ``v`` along ``h``: ``(h, |h|, |h|)`` from a lean
        :class:`~.esh_eager.Direction` or ``(e, 1.0, |h|)`` from a robust one; skips ``h . h``.

    Returns
    -------
    ``(u', dK, |h|)``: ``u'`` (n, d), ``dK`` (n,), ``|h|`` an ``(n, 1)`` column (a NumPy scalar for
    one chain of a NumPy array, whose row quantities are scalars), or ``None``.
    """
    row = u.shape[0] == 1 and isinstance(u, np.ndarray)
    if row:
        def dot(a, b):
            return np.vecdot(a, b)[0]

        lo = hi = float
        if isinstance(tau, np.ndarray):
            tau = tau[0, 0]
    else:
        def dot(a, b):
            return xp.vecdot(a, b)[:, None]

        def lo(x):
            return float(eager_min(xp, x))

        def hi(x):
            return float(eager_max(xp, x))
    thresh = _threshold(xp, u.dtype)
    # Rows with a zero, tiny, huge or non-finite h . h or u . u, c <= -1 or q > 7/8 are detected by two
    # reductions after the row quantities are formed; their overflows and NaNs are discarded (the whole
    # call goes to the robust form), hence no warnings for them.
    with np.errstate(all="ignore"):
        if cached is None:
            ss = dot(h, h)
            v = h
            gn = vn = xp.sqrt(ss)
            low = ss
        else:
            v, vn, gn = cached
            if row != isinstance(gn, np.generic):
                return None
            low = None
        den = vn
        if not unit:
            uu = dot(u, u)
            un = xp.sqrt(uu)
            den = vn * un
            low = uu if low is None else xp.minimum(low, uu)
        if low is not None and not lo(low) >= thresh:  # zero, subnormal, tiny or NaN (NaN -> False)
            return None
        c = xp.minimum(dot(u, v) / den, 1.0)  # clipped against rounding
        neg_delta = gn * (tau * (-1.0 / (d - 1)))  # -delta
        zeta = xp.exp(neg_delta)
        em = xp.expm1(neg_delta)  # zeta - 1 = -omega, accurate for small delta
        opz = 1.0 + zeta
        q2 = (c - 1.0) * (em * opz)  # 2 q = (1 - c)(1 - zeta^2)
        # one read for c > -1, 2 q <= 7/4 and finite |h|, delta, |u| (0 * inf = NaN fails the test)
        poison = 0.0 * neg_delta if unit else 0.0 * (neg_delta - un)
        worst = hi(xp.maximum(q2, c * (-2.0 * _Q_MAX)) + poison)
        if not worst < 2.0 * _Q_MAX:
            return None
        neg_n = q2 - 2.0  # -N
        # a = omega (1 + zeta + c omega) = -em (opz - c em):  a / (N |v|) = em (opz - c em) / (-N |v|)
        alpha = (em * (opz - c * em)) / (neg_n * vn)
        beta = (-2.0 * zeta) / (neg_n if unit else neg_n * un)  # b / (N |u|)
    u_new = v * alpha
    u_new += u * beta
    if worst < 1.0:  # q < 1/2 on every row
        k = xp.log1p(q2 * -0.5) - neg_delta
    elif row:
        k = log_kinetic_row(c, 1.0 - c, -neg_delta, 0.5 * q2)
    else:
        k = log_kinetic_columns(xp, c, 1.0 - c, -neg_delta, neg_delta, 0.5 * q2)
    return u_new, ((d - 1) * k).reshape(1) if row else (d - 1) * k[:, 0], gn


def lean_b(xp, u, g, scale, tau, d, direction=None, unit=False, want=False):
    """One lean B sub-step on ``S g``: ``(u', dK, Direction or None)``, or ``None`` for the robust form.

    ``scale``: ``None``, the ``sqrt_diag`` array or a dense :class:`~.metric.Metric`.  ``direction``
    (from the previous step's last B, lean or robust) replaces ``S g`` and ``h . h`` when it was made
    from these very ``g`` and ``scale`` objects.  With ``want`` the returned direction carries
    ``h = S g`` and ``|h|`` for the next step.  ``None`` is returned on namespaces without cheap host
    reads and whenever :func:`lean_update` declines.
    """
    if not host_checks_cheap(xp):
        return None
    h = None
    if direction is not None and direction.matches(g, scale):
        h = direction.scaled
        cached = (h, direction.norm, direction.norm) if direction.unit is None else \
            (direction.unit, 1.0, direction.norm)
        out = lean_update(xp, u, None, tau, d, unit, cached)
    else:
        h = _scaled(xp, g, scale)
        out = lean_update(xp, u, h, tau, d, unit)
    if out is None:
        return None
    return out[0], out[1], (Direction(None, out[2], g, scale, h) if want and h is not None else None)
