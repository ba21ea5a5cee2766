"""Optimal constant-SGD tuning and the online gradient-noise covariance of Mandt, Hoffman & Blei (2017).

Mandt, Hoffman & Blei, "Stochastic Gradient Descent as Approximate Bayesian Inference", JMLR
18(134), 2017.  Their loss is the mean per-example loss ``L = (1/N) sum_n l_n`` with
``l_n = -log p(x_n | theta) - (1/N) log p(theta)``; the mini-batch gradient is
``grad L_S = (1/S) sum_{n in batch} grad l_n``; ``C = B B^T`` is the covariance of a single
``grad l_n`` (the prior term cancels in it).  The posterior is ``exp(-N L)``.  In smile_ref's
convention ``pi ∝ exp(-U)``, ``U = N L`` and ``g_hat ≈ -grad U`` so ``grad L_S = -g_hat / N``.

* :func:`optimal_learning_rate` — Thm 1, Eq. 15: ``eps* = 2 S D / (N tr C)``;
* :func:`optimal_preconditioner` — Thm 2, Eq. 17: ``H* = (2 S / N) C^{-1}`` for the update
  ``theta' = theta - H grad L_S`` (Cor. 4: the OU stationary covariance is then exactly the
  posterior ``(N A)^{-1}``); with smile_ref's ``learning_rate`` ``eps`` the matrix to pass is
  ``H* / eps``, which ``learning_rate=`` does here;
* :func:`optimal_diagonal_preconditioner` — Cor. 3, ``H_kk = 2 S / (N C_kk)``: KL-optimal only when
  ``C`` is diagonal (then it *is* ``H*``); a heuristic otherwise (docs/errata.md);
* :func:`optimal_learning_rate_sqrt` — Thm 7 (App. F): with ``G = diag(C)^{1/2}`` and step
  ``eps G^{-1}``, ``eps* = 2 D S / (N tr(C G^{-1}))``;
* Eq. 21 online noise estimate ``C_t = (1 - kappa_t) C_{t-1} + kappa_t (g_1 - g_S)(g_1 - g_S)^T``:
  :func:`eq21_sample`, :func:`batch_covariance_sample`, :func:`ema_update`.

Bias of Eq. 21 (derived in ``theory/constant_sgd.py::eq21_bias_factor``).  With ``g_1`` one
example of the batch and ``g_S`` the batch mean, ``E[(g_1 - g_S)(g_1 - g_S)^T] = ((S - 1)/S) C``
for i.i.d. examples (sampling with replacement): ``Var g_1 = C``, ``Cov(g_1, g_S) = C/S``,
``Var g_S = C/S``, so ``C - 2C/S + C/S = (1 - 1/S) C``.  Without replacement from ``N`` examples
(``Cov(g_i, g_j) = -C_pop/(N-1)``) it is ``((S-1)/S) C_{N-1}`` with ``C_{N-1} = N/(N-1) C_pop``.
:func:`eq21_sample` multiplies by ``S/(S-1)``, so its expectation is ``C`` (resp. ``C_{N-1}``);
the mini-batch-mean noise is then ``C/S`` (resp. ``C_{N-1} (N - S)/(N S)``).
"""
from __future__ import annotations

import math

import numpy as np

from ..backend import array_namespace
from ..backend.validate import check_float_in, check_host_matrix, check_positive_float, check_positive_int, check_spd

__all__ = [
    "optimal_learning_rate",
    "optimal_preconditioner",
    "optimal_diagonal_preconditioner",
    "optimal_learning_rate_sqrt",
    "eq21_sample",
    "batch_covariance_sample",
    "ema_update",
]


def _check_SN(S, N):
    S = check_positive_int(S, "S")
    N = check_positive_int(N, "N")
    if S > N:
        raise ValueError(f"S (batch size) must be <= N (data size), got S={S}, N={N}")
    return S, N


def _noise_matrix(BBt, name="BBt"):
    arr = check_host_matrix(BBt, name)
    if arr.shape[0] != arr.shape[1]:
        raise ValueError(f"{name} must be square (d, d), got {arr.shape}")
    return arr


def optimal_learning_rate(S: int, N: int, D: int, BBt) -> float:
    """Mandt et al. Thm 1 (Eq. 15): ``eps* = 2 S D / (N tr(B B^T))``.

    Minimises ``KL(q || posterior)`` over a scalar learning rate in the OU approximation (their
    Eq. 13), for the update ``theta' = theta - eps grad L_S``.

    Parameters
    ----------
    S, N, D : int
        Batch size, data size, dimension.
    BBt : array (D, D) or (D,)
        Per-example gradient-noise covariance ``C`` (or its diagonal; only the trace is used).
    """
    S, N = _check_SN(S, N)
    D = check_positive_int(D, "D")
    arr = np.asarray(BBt, dtype=np.float64)
    if arr.ndim == 1:
        if arr.shape[0] != D:
            raise ValueError(f"BBt must have shape ({D}, {D}) or ({D},), got {arr.shape}")
        tr = float(arr.sum())
    else:
        arr = check_host_matrix(arr, "BBt", (D, D))
        tr = float(np.trace(arr))
    if not (math.isfinite(tr) and tr > 0):
        raise ValueError(f"BBt must have a positive finite trace, got {tr}")
    return 2.0 * S * D / (N * tr)


def optimal_preconditioner(S: int, N: int, BBt, learning_rate: float = 1.0) -> np.ndarray:
    """Mandt et al. Thm 2 (Eq. 17): ``H* = (2 S / N) (B B^T)^{-1}`` (divided by ``learning_rate``).

    For ``theta' = theta - eps H grad L_S`` the OU covariance solves
    ``eps H A Sigma + Sigma A H eps = (eps^2/S) H C H``; with ``eps H = (2S/N) C^{-1}`` this is
    ``A Sigma + Sigma A = (2/N) I``, whose solution is ``Sigma = (N A)^{-1}`` for every SPD ``A``
    (Cor. 4): the posterior.  Returns the host ``(d, d)`` matrix ``(2S/(eps N)) C^{-1}``.
    """
    S, N = _check_SN(S, N)
    eps = check_positive_float(learning_rate, "learning_rate")
    C = check_spd(_noise_matrix(BBt), "BBt")
    Hs = (2.0 * S / (eps * N)) * np.linalg.inv(C)
    return 0.5 * (Hs + Hs.T)


def optimal_diagonal_preconditioner(S: int, N: int, BBt, learning_rate: float = 1.0) -> np.ndarray:
    """Mandt et al. Cor. 3: ``H_kk = 2 S / (N BBt_kk)`` (divided by ``learning_rate``).

    Exact (KL-optimal among diagonal ``H``, and then equal to Thm 2's ``H*``) only when ``BBt``
    is diagonal.  For correlated noise the corollary's proof assumes ``Sigma H^{-1}`` does not
    depend on ``H``, which is false; see docs/errata.md and
    ``smile_ref.theory.constant_sgd.optimal_diagonal_preconditioner_numeric`` for the true optimum.
    ``BBt`` may be ``(d, d)`` or its diagonal ``(d,)``.
    """
    S, N = _check_SN(S, N)
    eps = check_positive_float(learning_rate, "learning_rate")
    arr = np.asarray(BBt, dtype=np.float64)
    diag = arr if arr.ndim == 1 else np.diag(_noise_matrix(arr))
    if not np.all(np.isfinite(diag)) or np.any(diag <= 0):
        raise ValueError("BBt must have a strictly positive, finite diagonal")
    return 2.0 * S / (eps * N * diag)


def optimal_learning_rate_sqrt(S: int, N: int, BBt) -> float:
    """Mandt et al. Thm 7 (App. F): ``eps* = 2 D S / (N tr(C G^{-1}))``, ``G = diag(C)^{1/2}``.

    For the AdaGrad-like step ``theta' = theta - eps G^{-1} grad L_S``; since ``tr(C G^{-1}) =
    sum_k C_kk^{1/2}`` this is ``2 D S / (N sum_k sqrt(C_kk))``.
    """
    S, N = _check_SN(S, N)
    C = _noise_matrix(BBt)
    diag = np.diag(C)
    if np.any(diag <= 0):
        raise ValueError("BBt must have a strictly positive diagonal")
    return 2.0 * C.shape[0] * S / (N * float(np.sum(np.sqrt(diag))))


def _check_per_example(g):
    if getattr(g, "ndim", None) != 3:
        raise ValueError(f"per_example_grads must have shape (n, S, d), got {getattr(g, 'shape', None)}")
    if g.shape[1] < 2:
        raise ValueError(f"per_example_grads needs a batch of S >= 2 examples, got S={g.shape[1]}")


def eq21_sample(per_example_grads):
    """Bias-corrected Eq. 21 term ``(S/(S-1)) (g_1 - g_S)(g_1 - g_S)^T`` per chain.

    ``per_example_grads`` ``(n, S, d)``: gradients of the per-example log-likelihoods (or of the
    losses ``l_n``: the sign and the shared prior term drop out).  Returns ``(n, d, d)`` whose
    expectation is ``C`` (i.i.d. examples) or ``C_{N-1}`` (without replacement).
    """
    _check_per_example(per_example_grads)
    xp = array_namespace(per_example_grads)
    S = per_example_grads.shape[1]
    diff = per_example_grads[:, 0, :] - xp.mean(per_example_grads, axis=1)
    return (S / (S - 1.0)) * (diff[:, :, None] * diff[:, None, :])


def batch_covariance_sample(per_example_grads):
    """Within-batch sample covariance (divisor ``S - 1``) per chain: ``(n, d, d)``.

    Unbiased for the same ``C`` as :func:`eq21_sample` but uses all ``S`` examples (variance about
    ``S`` times smaller).
    """
    _check_per_example(per_example_grads)
    xp = array_namespace(per_example_grads)
    S = per_example_grads.shape[1]
    c = per_example_grads - xp.mean(per_example_grads, axis=1, keepdims=True)
    return (c.mT @ c) / (S - 1.0)


def ema_update(C, sample, kappa: float):
    """Eq. 21 recursion ``C_t = (1 - kappa) C_{t-1} + kappa * sample``; ``kappa = 1/t`` gives the running mean."""
    kappa = check_float_in(kappa, "kappa", 0.0, 1.0, lo_open=True)
    if C.shape != sample.shape:
        raise ValueError(f"C and sample must have the same shape, got {tuple(C.shape)} and {tuple(sample.shape)}")
    return (1.0 - kappa) * C + kappa * sample
