"""Small helpers shared by the VI methods: batch statistics, the invalid-update policy, the algorithm protocol.

A VI algorithm is an object with

* ``init(q0) -> state``;
* ``sample(state, random, M) -> (theta, aux)``: the ``M`` positions whose scores are needed;
* ``update(state, theta, aux, logp, s, t) -> (state, objective, n_guarded)``: one iteration
  given ``logp_hat(theta)`` and ``s_hat(theta)`` (mini-batch estimates);
* ``family(state) -> q``: the current family member.
"""
from __future__ import annotations

from ..backend import array_namespace

__all__ = ["ON_INVALID", "check_on_invalid", "invalid", "batch_stats", "outer_mean"]

ON_INVALID = ("skip", "raise")


def check_on_invalid(on_invalid: str) -> str:
    if on_invalid not in ON_INVALID:
        raise ValueError(f"on_invalid must be one of {ON_INVALID}, got {on_invalid!r}")
    return on_invalid


def invalid(on_invalid: str, message: str) -> int:
    """Apply the policy to an invalid update: raise ``FloatingPointError`` or return 1 (one skip)."""
    if on_invalid == "raise":
        raise FloatingPointError(message + " (pass on_invalid='skip' to keep the previous iterate instead)")
    return 1


def batch_stats(theta, s):
    """Means ``theta_bar, s_bar`` and biased (divisor M) centred ``theta_c, s_c``."""
    tbar = array_namespace(theta).mean(theta, axis=0)
    sbar = array_namespace(s).mean(s, axis=0)
    return tbar, sbar, theta - tbar[None, :], s - sbar[None, :]


def outer_mean(a, b):
    """``(1/M) sum_m a_m b_m^T`` for ``a, b`` of shape ``(M, d)``."""
    return a.mT @ b / float(a.shape[0])
