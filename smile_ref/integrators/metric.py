"""Metrics (preconditioners) of the isokinetic dynamics: ``S`` in ``dx/dt = S u``, ``du/dt = P(u) S g / (d - 1)``.

For a symmetric positive-definite ``S`` the isokinetic dynamics with metric ``S`` are the plain
dynamics of ``z = S^{-1} x`` (score ``grad_z log p(S z) = S g``) mapped back to ``x``:
the A flow is ``x <- x + tau S u`` and the B flow is the ESH update on ``S g``
(:mod:`.isokinetic`).  ``S`` is held fixed within a step.  Three metrics, each with
``scale(xp, v) = S v`` row by row for ``v`` of shape (n, d):

* :class:`IdentityMetric`: ``S = I``;
* :class:`DiagonalMetric`: ``S = diag(sqrt_diag)``, ``sqrt_diag`` of shape (n, d) or (d,);
* :class:`DenseMetric`: a symmetric ``S`` of shape (d, d) or (n, d, d) (one per chain).

The identity and diagonal metrics run exactly the arithmetic of ``sqrt_diag=None`` and
``sqrt_diag=array`` (bit for bit).  The dense metric integrates in ``x`` directly; the same step
run in ``z = S^{-1} x`` (transform, step, transform back) agrees with it to rounding, since
``S (S^{-1} x + tau u) = x + tau S u`` and ``S^{-1} (S g) = g`` hold exactly in exact arithmetic
(``tests/test_metric.py``).  In floating point the two differ by a few ulp of ``x`` per step,
amplified by the condition number of ``S`` in the transform.
"""
from __future__ import annotations

from typing import Any

__all__ = ["Metric", "IdentityMetric", "DiagonalMetric", "DenseMetric", "as_metric", "scale_of", "scaled", "check_scale"]


class Metric:
    """Base class: ``scale(xp, v) = S v`` per row and the A flow ``position(xp, x, u, tau) = x + tau S u``.

    ``sqrt_diag`` is ``None`` for the identity, the diagonal of ``S`` for a diagonal metric, and
    ``dense`` is the matrix for a dense one (else ``None``); the integrator dispatches on them.
    """

    sqrt_diag: Any = None
    dense: Any = None

    def scale(self, xp, v):  # pragma: no cover - abstract
        raise NotImplementedError

    def position(self, xp, x, u, tau):
        """``x + tau S u`` (``tau`` a float or an (n, 1) column)."""
        v = self.scale(xp, u)
        v = v * tau
        v += x
        return v


class IdentityMetric(Metric):
    """``S = I``: the unpreconditioned dynamics (same arithmetic as ``sqrt_diag=None``)."""

    def scale(self, xp, v):
        return v

    def position(self, xp, x, u, tau):
        v = u * tau
        v += x
        return v

    def __repr__(self) -> str:
        return "IdentityMetric()"


class DiagonalMetric(Metric):
    """``S = diag(sqrt_diag)`` (same arithmetic as passing ``sqrt_diag`` to the integrator).

    Parameters
    ----------
    sqrt_diag : array (n, d) or (d,)
        Positive diagonal of ``S`` (a per-chain row or one row for all chains).
    """

    def __init__(self, sqrt_diag):
        shape = getattr(sqrt_diag, "shape", None)
        if shape is None or len(shape) not in (1, 2):
            raise ValueError(f"sqrt_diag must be an array of shape (n, d) or (d,), got "
                             f"{shape if shape is not None else type(sqrt_diag).__name__}")
        self.sqrt_diag = sqrt_diag

    def scale(self, xp, v):
        return self.sqrt_diag * v

    def position(self, xp, x, u, tau):
        v = self.sqrt_diag * u
        v *= tau
        v += x
        return v

    def __repr__(self) -> str:
        return f"DiagonalMetric(shape={tuple(self.sqrt_diag.shape)})"


class DenseMetric(Metric):
    """A symmetric ``S``: ``scale(v)`` is ``S v`` per row, i.e. the row ``v^T S`` (``S = S^T``).

    Parameters
    ----------
    S : array (d, d) or (n, d, d)
        Symmetric matrix (one for all chains, or one per chain).  Symmetry is the caller's
        contract (the row form ``v^T S`` equals ``(S v)^T`` only then); it is not checked per step.
    """

    def __init__(self, S):
        shape = getattr(S, "shape", None)
        if shape is None or len(shape) not in (2, 3) or shape[-1] != shape[-2]:
            raise ValueError(f"S must be a square array of shape (d, d) or (n, d, d), got "
                             f"{shape if shape is not None else type(S).__name__}")
        self.dense = S

    def scale(self, xp, v):
        return (v[:, None, :] @ self.dense)[:, 0, :]

    def __repr__(self) -> str:
        return f"DenseMetric(shape={tuple(self.dense.shape)})"


def as_metric(metric=None, sqrt_diag=None) -> Metric:
    """The :class:`Metric` of an integrator call: ``metric`` if given, else from ``sqrt_diag`` (None: identity).

    Examples
    --------
    >>> import numpy as np
    >>> as_metric(), as_metric(sqrt_diag=np.ones((2, 3)))
    (IdentityMetric(), DiagonalMetric(shape=(2, 3)))
    """
    if metric is not None:
        if sqrt_diag is not None:
            raise ValueError("pass either metric or sqrt_diag, not both")
        if not isinstance(metric, Metric):
            raise TypeError(f"metric must be a smile_ref.integrators.Metric (IdentityMetric, DiagonalMetric or "
                            f"DenseMetric), got {type(metric).__name__}")
        return metric
    return IdentityMetric() if sqrt_diag is None else DiagonalMetric(sqrt_diag)


# --- what the integrator carries as S: None, a sqrt_diag array, or a dense Metric ------------------------
def scaled(xp, g, scale):
    """``S g``: ``g`` (no metric), ``sqrt_diag * g``, or a dense metric's row product."""
    if scale is None:
        return g
    if isinstance(scale, Metric):
        return scale.scale(xp, g)
    return scale * g


def scale_of(sqrt_diag, metric):
    """What the step functions carry as ``S``: ``None``, a ``sqrt_diag`` array, or a dense :class:`Metric`."""
    if metric is None:
        return sqrt_diag
    m = as_metric(metric, sqrt_diag)
    return m if m.dense is not None else m.sqrt_diag


def check_scale(u, scale):
    """``ValueError`` unless ``scale`` fits velocities ``u`` (n, d): ``None``, (n, d) or (d,) ``sqrt_diag``,
    or a dense metric with ``S`` of shape (d, d) or (n, d, d)."""
    if scale is None:
        return
    if isinstance(scale, Metric):
        S = scale.dense
        d = u.shape[1]
        if tuple(S.shape[-2:]) != (d, d) or (S.ndim == 3 and S.shape[0] != u.shape[0]):
            raise ValueError(f"the dense metric's S must have shape ({d}, {d}) or ({u.shape[0]}, {d}, {d}), "
                             f"got {tuple(S.shape)}")
        return
    if getattr(scale, "ndim", None) == 1 and tuple(scale.shape) == (u.shape[1],):
        return  # one diagonal for all chains (DiagonalMetric)
    if tuple(getattr(scale, "shape", ())) != tuple(u.shape):
        raise ValueError(f"u and sqrt_diag must have the same shape (n, d), got {tuple(u.shape)} and "
                         f"{getattr(scale, 'shape', None)}")
