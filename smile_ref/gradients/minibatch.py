"""Unbiased mini-batch gradient estimator with per-chain batches.

For a :class:`~smile_ref.targets.DataTarget` with ``N`` examples,

    log pi_hat(x) = log prior(x) + (N/b) sum_{i in B} l_i(x),
    g_hat(x)      = grad log prior(x) + (N/b) sum_{i in B} grad l_i(x),

with an independent batch ``B`` of ``b`` indices for every chain (indices of
shape ``(n_chains, b)``).  This is the mini-batch log posterior of Sommer et al.
(2026, arXiv 2602.06500, Sec. 2) except for the scale: their code uses
``floor(N/b)``, which is biased when ``b`` does not divide ``N``; we use
``N/b`` so that ``E[g_hat] = grad log pi`` exactly.

Batch schedules
---------------
``replace=False`` (default; the paper's "per-chain shuffled epochs"): each chain
holds a random permutation of ``range(N)`` and walks through it in consecutive
blocks of ``b``.  When fewer than ``b`` indices remain, the remainder
(``N mod b`` indices) is **dropped** and a fresh permutation is drawn.  Each
batch is then a set of ``b`` distinct indices, and -- since the positions
``[k b, (k+1) b)`` of a uniformly random permutation hold a uniformly random
``b``-subset -- every batch is marginally a uniform ``b``-subset: each example is
included with probability ``b/N`` and the estimator is unbiased.  (Batches of
one epoch are disjoint, hence dependent; the marginal covariance of one batch
is still that of :meth:`MiniBatch.noise_covariance`.)

``replace=True``: ``b`` i.i.d. uniform indices per chain and draw.

``schedule="authors"`` (with ``replace=False``): the SMILE authors' loader
(``src/dataset/base.py``): each epoch every chain permutes only the *first*
``floor(N/b) b`` examples and walks through the permutation in blocks of ``b``;
the last ``N mod b`` examples are never used.  ``scale="floor"``: the authors'
scale ``floor(N/b)`` instead of ``N/b``.  Together they reproduce the authors'
mini-batch log posterior and schedule (``docs/conventions.md``); both bias the
estimator when ``b`` does not divide ``N``.

State and transfers
-------------------
``init`` returns a host-only, serialisable dict (NumPy arrays and ints):
``{"perm": int64 (n, N), "pos": int, "epoch": int, "n_draws": int}`` without
replacement, ``{"n_chains": int, "n_draws": int}`` with replacement.  ``draw``
never mutates its input state and returns the indices as an ``int64`` array of
the backend of ``x``: one host-to-device copy of ``n * b`` integers per draw.
"""
from __future__ import annotations

import numpy as np

from ..backend import array_namespace, backend_of, device_of
from ..backend.validate import check_choice, check_positions, check_positive_int
from .base import GradientEstimator
from .covariance import noise_covariance

__all__ = ["MiniBatch"]


class MiniBatch(GradientEstimator):
    """Mini-batch estimator ``log prior + (N/b) sum_{i in B} l_i`` with per-chain batches.

    Parameters
    ----------
    target : DataTarget
        Must provide ``n_data``, ``logdensity_and_grad_batch(x, idx)`` and
        ``per_example_grads(x, idx)``.
    batch_size : int
        ``b``; ``1 <= b <= N`` without replacement, ``b >= 1`` with replacement.
    replace : bool
        ``False``: per-chain epoch shuffles (remainder dropped, see module
        docstring); ``True``: i.i.d. indices.
    scale : {"unbiased", "floor"}
        ``"unbiased"`` (default): ``N/b``; ``"floor"``: ``floor(N/b)`` (authors' code).
    schedule : {"default", "authors"}
        Epoch permutations of all ``N`` examples (default) or of the first
        ``floor(N/b) b`` only (authors' loader); only with ``replace=False``.

    Attributes
    ----------
    cost : float
        ``b / N`` full-data gradients per evaluation.
    """

    stochastic = True

    def __init__(self, target, batch_size: int, replace: bool = False, scale: str = "unbiased",
                 schedule: str = "default"):
        for attr in ("n_data", "logdensity_and_grad_batch", "per_example_grads"):
            if not hasattr(target, attr):
                raise TypeError(
                    f"target must be a DataTarget (with n_data, logdensity_and_grad_batch, per_example_grads); "
                    f"{type(target).__name__} has no {attr!r}"
                )
        if not isinstance(replace, (bool, np.bool_)):
            raise TypeError(f"replace must be a bool, got {replace!r}")
        self.target = target
        self.n_data = int(target.n_data)
        self.batch_size = check_positive_int(batch_size, "batch_size")
        self.replace = bool(replace)
        if not self.replace and self.batch_size > self.n_data:
            raise ValueError(
                f"batch_size must be <= n_data={self.n_data} when sampling without replacement, got {self.batch_size}"
            )
        self.cost = self.batch_size / self.n_data
        self.scale = check_choice(scale, "scale", ("unbiased", "floor"))
        self.schedule = check_choice(schedule, "schedule", ("default", "authors"))
        if self.schedule == "authors" and self.replace:
            raise ValueError("schedule='authors' is an epoch schedule: it needs replace=False")
        # examples an epoch permutes: all N, or the first floor(N/b) b (authors)
        self.n_used = self.n_data if self.schedule == "default" else (self.n_data // self.batch_size) * self.batch_size
        if self.scale == "floor":
            for attr in ("_prior", "gather", "_loglik_sums"):
                if not hasattr(target, attr):
                    raise TypeError(f"scale='floor' needs a smile_ref DataTarget (with _prior, gather, _loglik_sums); "
                                    f"{type(target).__name__} has no {attr!r}")

    # ------------------------------------------------------------------ state
    def init(self, n_chains: int, rng) -> dict:
        n = check_positive_int(n_chains, "n_chains")
        if self.replace:
            return {"n_chains": n, "n_draws": 0}
        perm = np.ascontiguousarray(rng.permutations_host(self.n_used, n), dtype=np.int64)
        return {"perm": perm, "pos": 0, "epoch": 0, "n_draws": 0}

    def draw_host(self, state: dict, rng, n_chains: int) -> tuple[np.ndarray, dict]:
        """Host part of :meth:`draw`: indices ``(n_chains, b)`` as int64 NumPy and the new state."""
        b, N = self.batch_size, self.n_data
        if self.replace:
            if int(state["n_chains"]) != n_chains:
                raise ValueError(f"state was initialised for {state['n_chains']} chains, got x with {n_chains}")
            idx = rng.integers_host(N, (n_chains, b))
            return idx, {"n_chains": n_chains, "n_draws": int(state["n_draws"]) + 1}
        perm, pos, epoch = state["perm"], int(state["pos"]), int(state["epoch"])
        N = self.n_used
        if perm.shape != (n_chains, N):
            raise ValueError(f"state['perm'] has shape {perm.shape}, expected ({n_chains}, {N}) for x with {n_chains} chains")
        if pos + b > N:  # fewer than b left: drop the remainder, reshuffle
            perm = np.ascontiguousarray(rng.permutations_host(N, n_chains), dtype=np.int64)
            pos, epoch = 0, epoch + 1
        idx = np.ascontiguousarray(perm[:, pos : pos + b])
        new = {"perm": perm, "pos": pos + b, "epoch": epoch, "n_draws": int(state["n_draws"]) + 1}
        return idx, new

    def draw(self, state: dict, rng, x) -> tuple:
        """Next batch ``idx`` (int64, ``(n, b)``, backend and device of ``x``) and the new state."""
        if x is None or getattr(x, "shape", None) is None:
            raise TypeError("x must be the (n, d) position array (it fixes n, the backend and the device)")
        be = backend_of(x)
        idx, new = self.draw_host(state, rng, int(x.shape[0]))
        return be.xp.asarray(idx, dtype=be.xp.int64, device=be.device), new

    # --------------------------------------------------------------- evaluate
    def evaluate(self, x, batch):
        """``(log prior + (N/b) sum_B l_i, its gradient)`` for batch indices ``batch`` ``(n, b)``."""
        shape = getattr(batch, "shape", None)
        if shape is None or len(shape) != 2 or int(shape[0]) != int(x.shape[0]):
            raise ValueError(f"batch must be an index array of shape (n, b) with n={x.shape[0]}, got {shape}")
        if self.scale == "floor":
            return self._floor_scaled(x, batch)
        return self.target.logdensity_and_grad_batch(x, batch)

    def _floor_scaled(self, x, idx):
        """``log prior + floor(N/b) sum_B l_i`` and its gradient (the authors' ``n_batches`` scale)."""
        check_positions(x, self.target.dim)
        xp = array_namespace(x)
        Xb, yb = self.target.gather(xp, x, idx)
        k = float(self.n_data // int(idx.shape[1]))
        lp, gp = self.target._prior(xp, x)
        ll, gl = self.target._loglik_sums(xp, x, Xb, yb)
        return lp + ll * k, gp + gl * k

    def logdensity_evaluator(self, xp):
        """``(x, idx) -> log prior + scale sum_B l_i`` without the gradient where the target allows it
        (:meth:`smile_ref.targets.DataTarget.unchecked_logdensity_batch`; same values as :meth:`evaluate`)."""
        t = self.target
        if self.scale != "floor":
            make = getattr(t, "unchecked_logdensity_batch", None)
            if make is not None:
                return make(xp)
            return lambda x, idx: t.logdensity_and_grad_batch(x, idx)[0]
        if not all(hasattr(t, a) for a in ("_prior_lp", "_loglik_lp")):
            return lambda x, idx: self._floor_scaled(x, idx)[0]

        def lp(x, idx):
            Xb, yb = t.gather(xp, x, idx)
            k = float(self.n_data // int(idx.shape[1]))
            return t._prior_lp(xp, x) + t._loglik_lp(xp, x, Xb, yb) * k

        return lp

    # ------------------------------------------------------------- covariance
    def noise_covariance(self, x, kind: str = "dense"):
        """Exact covariance of ``g_hat(x)`` per chain from all ``N`` per-example gradients.

        ``Cov[g_hat] = (N^2/b) (N-b)/(N-1) Sigma_pop`` without replacement and
        ``(N^2/b) Sigma_pop`` with replacement, ``Sigma_pop`` the population
        covariance (divisor ``N``) of ``grad l_i(x)``.  The prior adds no noise.
        With ``scale="floor"`` the result is multiplied by ``(floor(N/b) b/N)^2``;
        ``schedule="authors"`` is not accounted for (it samples from the first
        ``floor(N/b) b`` examples only).

        Returns ``(n, d, d)`` (``kind="dense"``) or ``(n, d)`` (``kind="diag"``)
        in the namespace/dtype/device of ``x``.  Memory ``O(n N d)``.
        """
        xp = array_namespace(x)
        n = int(x.shape[0])
        all_idx = xp.arange(self.n_data, dtype=xp.int64, device=device_of(x))
        all_idx = xp.broadcast_to(all_idx[None, :], (n, self.n_data))
        g = self.target.per_example_grads(x, all_idx)
        cov = noise_covariance(g, kind=kind, batch_size=self.batch_size, n_data=self.n_data, replace=self.replace)
        if self.scale == "floor":  # the estimator is (floor(N/b) b / N) times the unbiased one
            cov = cov * ((self.n_data // self.batch_size) * self.batch_size / self.n_data) ** 2
        return cov

    def describe(self) -> dict:
        out = {
            "name": "MiniBatch",
            "cost": float(self.cost),
            "batch_size": self.batch_size,
            "n_data": self.n_data,
            "replace": self.replace,
        }
        if self.scale != "unbiased":
            out["scale"] = self.scale
        if self.schedule != "default":
            out["schedule"] = self.schedule
        return out
