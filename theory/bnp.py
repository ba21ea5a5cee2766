"""Batch-normalisation preconditioning (BNP) and BNP-SGLD with frozen statistics (SymPy + NumPy/SciPy).

Lange, Helfrich & Ye (JMLR 23(72), 2022), Eq. 12-15, Theorem 3-4, Proposition 7, Algorithm 2; the
SGLD combination of Lange, Deng, Ye & Lin (2023) as inferred in ``docs/derivations/bnp-preconditioning.md``.

Dense layer ``a = w^T h + b``, parameters ``w_hat = [b; w]`` (bias first), inputs ``h_hat = [1; h]``.
With per-feature mean ``mu`` and scale ``s`` (``s = sigma_H`` in the theorems, ``tilde sigma`` in the
algorithm), ``P = U D``, ``U = [[1, -mu^T], [0, I]]``, ``D = diag(1, 1/s)``:

* ``P^T h_hat = [1; (h - mu)/s]``: the standardised input, so ``w_hat^T h_hat = z^T (P^T h_hat)`` for
  ``w_hat = P z`` (:func:`standardised_inputs_identity`);
* Proposition 7 / Eq. 15: a gradient step of size ``alpha`` on ``z`` (a network on standardised
  inputs) maps to ``w_hat' = w_hat - alpha P P^T grad_{w_hat} L``; BNP's step uses ``alpha/q^2``;
* ``P P^T = [[1 + mu^T S^{-1} mu, -mu^T S^{-1}], [-S^{-1} mu, S^{-1}]]``, ``S = diag(s^2)``
  (:func:`derive_ppt` checks it with SymPy).

BNP-SGLD with frozen statistics on a Gaussian target ``N(m, A^{-1})`` with full-batch gradient
``g = -A(theta - m) + xi`` (``Cov xi = C``) is the linear recursion
``theta' = (I - h M A) theta + h M A m + h M xi + sqrt(2h) (1/q) P xi'`` with ``M = (1/q^2) P P^T``, so
``E theta_inf = m`` and ``S = (I - hMA) S (I - hMA)^T + 2 h M + h^2 M C M``
(:func:`stationary_cov`, SciPy's discrete Lyapunov solver); stable iff the spectral radius of
``I - hMA`` is ``< 1``.  As ``h -> 0``, ``S -> A^{-1}``.  Page: ``docs/derivations/bnp-preconditioning.md``.
"""
from __future__ import annotations

import numpy as np
import scipy.linalg
import sympy as sp

__all__ = ["P_matrix", "derive_ppt", "standardised_inputs_identity", "sigma_tilde2", "layer_preconditioner",
           "stationary_cov", "kappa", "preconditioned_condition", "theorem4_quantities"]


def P_matrix(mu, s) -> np.ndarray:
    """``P = U D`` (``(n+1, n+1)``, bias first) from host vectors ``mu`` and ``s`` (scales, not variances)."""
    mu = np.asarray(mu, dtype=float)
    s = np.asarray(s, dtype=float)
    n = mu.size
    U = np.eye(n + 1)
    U[0, 1:] = -mu
    return U @ np.diag(np.concatenate([[1.0], 1.0 / s]))


def derive_ppt(n: int = 3) -> sp.Matrix:
    """``P P^T`` minus its closed form (SymPy, simplified: the zero matrix)."""
    mu = sp.Matrix(sp.symbols(f"mu1:{n + 1}", real=True))
    s = sp.symbols(f"s1:{n + 1}", positive=True)
    U = sp.eye(n + 1)
    for j in range(n):
        U[0, j + 1] = -mu[j]
    D = sp.diag(1, *[1 / sj for sj in s])
    P = U * D
    Sinv = sp.diag(*[1 / sj**2 for sj in s])
    closed = sp.zeros(n + 1, n + 1)
    closed[0, 0] = 1 + (mu.T * Sinv * mu)[0, 0]
    closed[0, 1:] = -(mu.T * Sinv)
    closed[1:, 0] = -(Sinv * mu)
    closed[1:, 1:] = Sinv
    return (P * P.T - closed).applyfunc(sp.simplify)


def standardised_inputs_identity(n: int = 3) -> sp.Matrix:
    """``P^T [1; h] - [1; (h - mu)/s]`` (SymPy; the zero vector): ``P`` maps to standardised inputs."""
    mu = sp.symbols(f"mu1:{n + 1}", real=True)
    hs = sp.symbols(f"h1:{n + 1}", real=True)
    s = sp.symbols(f"s1:{n + 1}", positive=True)
    P = sp.Matrix(P_matrix_sym(mu, s))
    hh = sp.Matrix([1, *hs])
    std = sp.Matrix([1, *[(hj - mj) / sj for hj, mj, sj in zip(hs, mu, s)]])
    return (P.T * hh - std).applyfunc(sp.simplify)


def P_matrix_sym(mu, s) -> sp.Matrix:
    n = len(mu)
    U = sp.eye(n + 1)
    for j in range(n):
        U[0, j + 1] = -mu[j]
    return U * sp.diag(1, *[1 / sj for sj in s])


def sigma_tilde2(sigma2, eps1: float = 1e-2, eps2: float = 1e-4) -> np.ndarray:
    """Algorithm 2 step 3: ``sigma^2 + eps1 max_j sigma_j^2 + eps2``."""
    sigma2 = np.asarray(sigma2, dtype=float)
    return sigma2 + eps1 * sigma2.max() + eps2


def layer_preconditioner(d: int, weight_idx, bias_idx, mu, sigma2, q2: float, eps1=1e-2, eps2=1e-4) -> np.ndarray:
    """``(d, d)`` matrix ``M``: ``(1/q^2) P P^T`` on the ``[bias; weights]`` coordinates of one neuron, identity elsewhere.

    Built explicitly from :func:`P_matrix` (independently of the sampler's Algorithm 2 steps 4-5).
    ``bias_idx=None``: ``P = diag(1/tilde sigma)`` on the weights.
    """
    st = np.sqrt(sigma_tilde2(sigma2, eps1, eps2))
    w = np.asarray(weight_idx, dtype=int).ravel()
    M = np.eye(d)
    if bias_idx is None:
        M[np.ix_(w, w)] = np.diag(1.0 / st**2) / q2
        return M
    P = P_matrix(mu, st)
    idx = np.concatenate([[int(bias_idx)], w])
    M[np.ix_(idx, idx)] = P @ P.T / q2
    return M


def stationary_cov(A, M, h: float, C=None) -> np.ndarray:
    """Solve ``S = (I - hMA) S (I - hMA)^T + 2hM + h^2 M C M`` (frozen BNP-SGLD on ``N(m, A^{-1})``)."""
    A = np.asarray(A, dtype=float)
    M = np.asarray(M, dtype=float)
    d = A.shape[0]
    T = np.eye(d) - h * M @ A
    if np.max(np.abs(np.linalg.eigvals(T))) >= 1.0:
        raise ValueError("I - h M A has spectral radius >= 1: no stationary law (reduce h)")
    Q = 2.0 * h * M
    if C is not None:
        Q = Q + h * h * M @ np.asarray(C, dtype=float) @ M.T
    S = scipy.linalg.solve_discrete_lyapunov(T, Q)
    return 0.5 * (S + S.T)


def kappa(A) -> float:
    """2-norm condition number ``sigma_max / sigma_min`` of a (possibly rectangular) matrix."""
    sv = np.linalg.svd(np.asarray(A, dtype=float), compute_uv=False)
    return float(sv[0] / sv[-1])


def preconditioned_condition(F, M) -> tuple[float, float]:
    """``(kappa(F), kappa(M^{1/2} F M^{1/2}))`` for SPD ``F``, ``M`` (the latter via ``L^T F L``, ``M = L L^T``)."""
    F = np.asarray(F, dtype=float)
    L = np.linalg.cholesky(np.asarray(M, dtype=float))
    ev = np.linalg.eigvalsh(L.T @ F @ L)
    ev0 = np.linalg.eigvalsh(F)
    return float(ev0[-1] / ev0[0]), float(ev[-1] / ev[0])


def theorem4_quantities(H, D0=None) -> dict:
    """BNP Theorem 4 for a batch ``H`` (``(N, n)``): ``kappa(H_hat)``, ``kappa(H_hat U)``, ``kappa(G_hat)``,
    ``kappa(H_hat U D0)`` (``D0`` a positive ``(n+1,)`` diagonal, default ones), with the batch mean and
    population standard deviation (divisor ``N``) of ``H``.  Claims: ``kappa(H_hat U) <= kappa(H_hat)`` and
    ``kappa(G_hat) <= sqrt(n+1) kappa(H_hat U D0)``."""
    H = np.asarray(H, dtype=float)
    N, n = H.shape
    mu, sd = H.mean(axis=0), H.std(axis=0)
    Hh = np.column_stack([np.ones(N), H])
    U = np.eye(n + 1)
    U[0, 1:] = -mu
    G = Hh @ P_matrix(mu, sd)
    D0 = np.ones(n + 1) if D0 is None else np.asarray(D0, dtype=float)
    return {"H": kappa(Hh), "HU": kappa(Hh @ U), "G": kappa(G), "HUD0": kappa(Hh @ U @ np.diag(D0)), "n": n}
