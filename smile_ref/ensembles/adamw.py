"""AdamW for a batch of independent parameter vectors (one row per deep-ensemble member).

An optax-style gradient transformation ``GradientTransformation(init, update)``; the training
loop applies ``params <- params + updates`` (:func:`apply_updates`).  Rows are independent
problems (ensemble members): every operation is row-wise, and a per-row boolean ``mask`` freezes
rows (early-stopped members) without touching their state.

Update (Kingma & Ba 2015, Alg. 1; decoupled weight decay of Loshchilov & Hutter 2019, Alg. 2),
for each row with gradient ``g`` of the loss to *minimise* and step counter ``t`` (after the
increment, ``t = 1`` at the first step)::

    mu_t  = b1 mu_{t-1} + (1 - b1) g
    nu_t  = b2 nu_{t-1} + (1 - b2) g^2
    mhat  = mu_t / (1 - b1^t),   vhat = nu_t / (1 - b2^t)
    update = -lr (mhat / (sqrt(vhat) + eps) + wd * params)

Conventions (why the numbers agree with the libraries the authors used):

* ``eps`` is added *outside* the square root, as in optax (``eps_root = 0``) and
  ``torch.optim.AdamW`` (``denom = sqrt(v_t) / sqrt(1 - b2^t) + eps``).
* The weight decay is multiplied by the learning rate, as in ``optax.adamw`` and
  ``torch.optim.AdamW`` (``p <- p (1 - lr wd)`` before the Adam step, which is the formula above
  since the decay uses the parameters before the step).  Loshchilov & Hutter write
  ``theta <- theta - eta_t (alpha mhat / (sqrt(vhat) + eps) + lambda theta)`` with a schedule
  multiplier ``eta_t`` and ``lambda`` *not* multiplied by the step size ``alpha``; with
  ``eta_t = 1`` their ``lambda`` equals our ``lr * wd``.
* The step counter is per row (shape ``(M,)``), unlike optax's scalar ``count``: a frozen row
  neither moves nor advances its bias correction.  (optax's own ``mask`` argument of ``adamw``
  selects which *leaves* are decayed; ours selects which *rows* are updated at all.)

Only a constant learning rate is supported (the authors' deep-ensemble configuration).
``tests/test_cross_libraries.py`` runs it next to ``optax.adamw`` on the same mini-batches: after 100
float64 steps the parameters agree to 1e-15 (all rows stepping, and masked rows against one
optax state per row that skips their frozen steps).
"""
from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple

import numpy as np

from ..backend import array_namespace, device_of
from ..backend.validate import check_positive_float

__all__ = ["AdamWState", "GradientTransformation", "adamw", "apply_updates"]


class AdamWState(NamedTuple):
    """``count`` (M,) int64 steps taken per row; ``mu``, ``nu`` (M, dim) first/second moments."""

    count: Any
    mu: Any
    nu: Any


class GradientTransformation(NamedTuple):
    """``init(params) -> state``; ``update(grads, state, params=None, mask=None) -> (updates, state)``."""

    init: Callable
    update: Callable


def apply_updates(params, updates):
    """``params + updates`` (optax.apply_updates for one array)."""
    return params + updates


def _check_rows(a, name: str, like=None):
    if not hasattr(a, "shape") or a.ndim != 2:
        raise ValueError(f"{name} must be an array of shape (M, dim), got {getattr(a, 'shape', type(a).__name__)}")
    if like is not None and tuple(a.shape) != tuple(like.shape):
        raise ValueError(f"{name} must have shape {tuple(like.shape)}, got {tuple(a.shape)}")
    return a


def adamw(learning_rate: float = 0.01, weight_decay: float = 0.005, b1: float = 0.9, b2: float = 0.999,
          eps: float = 1e-8) -> GradientTransformation:
    """AdamW with decoupled, learning-rate-scaled weight decay (``optax.adamw`` semantics).

    Parameters
    ----------
    learning_rate : float > 0
        Constant step size ``lr``.
    weight_decay : float >= 0
        ``wd``; the decay per step is ``lr * wd * params``.
    b1, b2 : float in [0, 1)
        Exponential decay rates of the first and second moments.
    eps : float > 0
        Added to ``sqrt(vhat)``.

    Returns
    -------
    GradientTransformation
        ``init(params)`` with ``params`` (M, dim) returns ``AdamWState(count=zeros (M,) int64,
        mu=zeros, nu=zeros)`` in the namespace/dtype/device of ``params``.
        ``update(grads, state, params=None, mask=None)`` returns ``(updates, new_state)``;
        ``params`` is required when ``weight_decay > 0``; ``mask`` (M,) bool (array of the
        params' namespace or host NumPy) marks the rows to update, other rows get a zero update
        and keep ``count``, ``mu`` and ``nu`` unchanged.
    """
    lr = check_positive_float(learning_rate, "learning_rate")
    wd = float(weight_decay)
    if not (math.isfinite(wd) and wd >= 0.0):
        raise ValueError(f"weight_decay must be a finite float >= 0, got {weight_decay!r}")
    b1, b2 = float(b1), float(b2)
    for name, b in (("b1", b1), ("b2", b2)):
        if not 0.0 <= b < 1.0:
            raise ValueError(f"{name} must lie in [0, 1), got {b!r}")
    eps = check_positive_float(eps, "eps")

    def init(params):
        _check_rows(params, "params")
        xp = array_namespace(params)
        dev = device_of(params)
        return AdamWState(xp.zeros((params.shape[0],), dtype=xp.int64, device=dev),
                          xp.zeros(params.shape, dtype=params.dtype, device=dev),
                          xp.zeros(params.shape, dtype=params.dtype, device=dev))

    def update(grads, state, params=None, mask=None):
        _check_rows(grads, "grads")
        xp = array_namespace(grads)
        dev = device_of(grads)
        _check_rows(state.mu, "state.mu", grads)
        if params is not None:
            _check_rows(params, "params", grads)
        elif wd > 0.0:
            raise ValueError("update needs params when weight_decay > 0 (decoupled weight decay)")
        m = grads.shape[0]
        count = state.count
        if mask is not None:
            if isinstance(mask, (np.ndarray, list, tuple)):
                mask = np.asarray(mask)
                if mask.dtype != np.bool_:
                    raise TypeError(f"mask must be boolean, got dtype {mask.dtype}")
                mask = xp.asarray(np.ascontiguousarray(mask), device=dev)
            elif mask.dtype != xp.bool:
                raise TypeError(f"mask must be boolean, got dtype {mask.dtype}")
            if tuple(mask.shape) != (m,):
                raise ValueError(f"mask must have shape ({m},), got {tuple(mask.shape)}")
            count = xp.where(mask, count + 1, count)
        else:
            count = count + 1
        mu = b1 * state.mu + (1.0 - b1) * grads
        nu = b2 * state.nu + (1.0 - b2) * (grads * grads)
        t = xp.astype(count, grads.dtype)
        t = xp.where(t > 0.5, t, xp.ones_like(t))  # rows never stepped (masked): avoid 0/0
        c1 = (1.0 - b1 ** t)[:, None]
        c2 = (1.0 - b2 ** t)[:, None]
        step = (mu / c1) / (xp.sqrt(nu / c2) + eps)
        if wd > 0.0:
            step = step + wd * params
        updates = -lr * step
        if mask is not None:
            keep = mask[:, None]
            updates = xp.where(keep, updates, xp.zeros_like(updates))
            mu = xp.where(keep, mu, state.mu)
            nu = xp.where(keep, nu, state.nu)
        return updates, AdamWState(count, mu, nu)

    return GradientTransformation(init, update)
