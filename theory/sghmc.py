"""Exact stationary law of SGHMC (SGD-with-momentum form) on a Gaussian; energy growth without friction.

Chen, Fox & Guestrin (ICML 2014), Eq. (15), as implemented by ``"sghmc"``:
``v' = (1 - alpha) v + eta g_hat + w``, ``theta' = theta + v'`` with
``w ~ N(0, 2 (alpha - beta_hat) eta)``.  On the 1-D target ``N(0, 1/a)`` with
``g_hat = -a theta + xi``, ``Var xi = V`` (independent of the state), the pair
``z = (theta, v)`` is a linear AR(1) process

.. math::

    z' = M z + (1, 1)^T e,\\quad
    M = \\begin{pmatrix} 1 - \\eta a & 1 - \\alpha \\\\ -\\eta a & 1 - \\alpha \\end{pmatrix},\\quad
    \\operatorname{Var} e = q = \\eta^2 V + 2(\\alpha - \\hat\\beta)\\eta,

so its stationary covariance solves ``S = M S M^T + q 11^T`` (three linear
equations; :func:`derive_stationary`).  Result (``docs/derivations/sghmc-stationary-variance.md``):

* ``a Var theta = (2 - alpha)(eta V + 2 alpha - 2 beta_hat) / (alpha (4 - 2 alpha - a eta))``;
* with the matched correction ``beta_hat = eta V / 2``:
  ``Var theta = (1/a) / (1 - a eta / (2 (2 - alpha)))`` (-> ``1/a`` as ``eta -> 0``);
* Chen et al.'s continuous scaling ``alpha = eps c``, ``eta = eps^2``,
  ``V = 2 b / eps`` (fixed friction ``C = c`` and noise ``B = eps V / 2 = b``),
  ``eps -> 0``, ``beta_hat = 0``: ``a Var theta -> 1 + b / c`` (temperature
  ``1 + B/C``; :func:`continuous_limit`).

Energy growth without friction (``alpha = beta_hat = 0``, "naive" SGHMC): ``M``
has determinant 1 and a conserved quadratic form ``K`` (``M^T K M = K``,
normalised ``K_vv = 1/eta``), the modified energy of symplectic Euler.  Then
``E[z^T K z]`` grows by exactly ``tr(K q 11^T) = eta V`` per step
(:func:`energy_growth_rate`; ``K = [[a, -a/2], [-a/2, 1/eta]]``).  The
covariance ``S_k`` grows like ``k c K^{-1}`` (``K^{-1}`` spans the
``M``-invariant symmetric matrices), so ``H = a theta^2 + v^2/eta`` grows on
average at ``eta V / (1 - a eta / 4)``: ``eta V`` to leading order (``H`` is
twice ``U + r^2/2`` in Chen et al.'s units ``v = eps r``, ``eta = eps^2``:
``eps^2 V/2`` per step for ``U + r^2/2``, the leading-order value, which
omits the ``1/(1 - a eta/4)`` factor of the discrete map).  :func:`moment_recursion` propagates ``S_k`` exactly for any
``alpha`` (the test compares simulated ``E[H_k]`` with it).
"""
from __future__ import annotations

import numpy as np
import scipy.linalg
import sympy as sp

__all__ = [
    "a", "eta", "alpha", "beta_hat", "V",
    "transition", "derive_stationary", "var_theta_expr", "check_seed_formula", "continuous_limit",
    "energy_growth_rate", "var_theta", "stationary_cov_1d", "stationary_cov", "moment_recursion",
]

a, eta, alpha, V = sp.symbols("a eta alpha V", positive=True)
beta_hat = sp.Symbol("beta_hat", nonnegative=True)


def transition():
    """``(M, q)``: the 1-D transition matrix on ``(theta, v)`` and the scalar noise variance."""
    M = sp.Matrix([[1 - eta * a, 1 - alpha], [-eta * a, 1 - alpha]])
    q = eta**2 * V + 2 * (alpha - beta_hat) * eta
    return M, q


def derive_stationary() -> sp.Matrix:
    """Solve ``S = M S M^T + q 11^T`` for the symmetric ``2 x 2`` stationary covariance ``S``."""
    M, q = transition()
    s11, s12, s22 = sp.symbols("s11 s12 s22")
    S = sp.Matrix([[s11, s12], [s12, s22]])
    R = S - M * S * M.T - q * sp.ones(2, 2)
    sol = sp.solve([R[0, 0], R[0, 1], R[1, 1]], [s11, s12, s22], dict=True)[0]
    return S.subs(sol).applyfunc(sp.factor)


def var_theta_expr() -> sp.Expr:
    """``Var theta`` (stationary) as a SymPy expression."""
    return derive_stationary()[0, 0]


def check_seed_formula() -> dict:
    """Differences (0) to the printed closed form above and to the corrected one."""
    vt = var_theta_expr()
    seed = (2 - alpha) * (eta * V + 2 * alpha - 2 * beta_hat) / (alpha * (4 - 2 * alpha - a * eta)) / a
    corr = (1 / a) / (1 - a * eta / (2 * (2 - alpha)))
    return {
        "tc16": sp.simplify(vt - seed),
        "corrected": sp.simplify(vt.subs(beta_hat, eta * V / 2) - corr),
        "corrected_eta0": sp.limit(corr, eta, 0) - 1 / a,
    }


def continuous_limit() -> sp.Expr:
    """``lim_{eps -> 0} a Var theta`` with ``alpha = eps c``, ``eta = eps^2``, ``V = 2 b/eps``, ``beta_hat = 0``."""
    eps, c, b = sp.symbols("epsilon c b", positive=True)
    e = (a * var_theta_expr()).subs(beta_hat, 0).subs({alpha: eps * c, eta: eps**2, V: 2 * b / eps})
    return sp.simplify(sp.limit(sp.simplify(e), eps, 0))


def energy_growth_rate() -> dict:
    """Conserved form ``K`` of the friction-free map and the exact growth ``tr(K Q)`` of ``E[z^T K z]`` per step."""
    M, q = transition()
    M0 = M.subs(alpha, 0)
    k1, k2 = sp.symbols("k1 k2")
    K = sp.Matrix([[k1, k2], [k2, 1 / eta]])
    R = (M0.T * K * M0 - K).applyfunc(sp.simplify)
    sol = sp.solve([R[0, 0], R[0, 1], R[1, 1]], [k1, k2], dict=True)[0]
    K = K.subs(sol)
    Q = q.subs({alpha: 0, beta_hat: 0}) * sp.ones(2, 2)
    rate = sp.simplify((K * Q).trace())
    # S_k / k -> c K^{-1} (the M-invariant symmetric matrices are spanned by K^{-1}); tr(K S_k) grows by
    # tr(KQ) exactly, so 2c = tr(KQ), and E[H_k]/k -> tr(diag(a, 1/eta) K^{-1}) tr(KQ)/2.
    Hm = sp.diag(a, 1 / eta)
    rate_H = sp.simplify((Hm * K.inv()).trace() * rate / 2)
    return {"K": K, "rate": rate, "rate_H": rate_H,
            "invariance": (M0.T * K * M0 - K).applyfunc(sp.simplify),
            "K_inv_invariant": (M0 * K.inv() * M0.T - K.inv()).applyfunc(sp.simplify)}


var_theta = sp.lambdify((a, eta, alpha, beta_hat, V), var_theta_expr(), "numpy")
_S = derive_stationary()
stationary_cov_1d = sp.lambdify((a, eta, alpha, beta_hat, V), _S, "numpy")


def stationary_cov(P, eta_: float, alpha_: float, beta_hat_: float, C=None) -> np.ndarray:
    """``2d x 2d`` stationary covariance of ``(theta, v)`` for ``N(mu, P^{-1})``, gradient-noise covariance ``C``.

    ``z' = M z + e``, ``M = [[I - eta P, (1-alpha) I], [-eta P, (1-alpha) I]]``,
    ``Cov e = [[E, E], [E, E]]`` with ``E = eta^2 C + 2 (alpha - beta_hat) eta I``
    (SciPy ``solve_discrete_lyapunov``).
    """
    P = np.atleast_2d(np.asarray(P, dtype=float))
    d = P.shape[0]
    C = np.zeros((d, d)) if C is None else np.atleast_2d(np.asarray(C, dtype=float))
    I = np.eye(d)
    M = np.block([[I - eta_ * P, (1 - alpha_) * I], [-eta_ * P, (1 - alpha_) * I]])
    if np.max(np.abs(np.linalg.eigvals(M))) >= 1:
        raise ValueError("the SGHMC recursion is unstable for these (P, eta, alpha): spectral radius >= 1")
    E = eta_**2 * C + 2 * (alpha_ - beta_hat_) * eta_ * I
    S = scipy.linalg.solve_discrete_lyapunov(M, np.block([[E, E], [E, E]]))
    return 0.5 * (S + S.T)


def moment_recursion(a_: float, eta_: float, alpha_: float, beta_hat_: float, V_: float, S0, n_steps: int):
    """Exact ``E[H_k] = a S_k[0,0] + S_k[1,1]/eta`` for ``k = 1..n_steps`` from ``S_{k+1} = M S_k M^T + q 11^T``."""
    M = np.array([[1 - eta_ * a_, 1 - alpha_], [-eta_ * a_, 1 - alpha_]])
    Q = (eta_**2 * V_ + 2 * (alpha_ - beta_hat_) * eta_) * np.ones((2, 2))
    S = np.asarray(S0, dtype=float)
    out = np.empty(n_steps)
    for k in range(n_steps):
        S = M @ S @ M.T + Q
        out[k] = a_ * S[0, 0] + S[1, 1] / eta_
    return out
