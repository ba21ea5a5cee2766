"""Constant SGD as approximate Bayesian inference (Mandt, Hoffman & Blei, JMLR 18(134), 2017).

Linear-Gaussian model (their assumptions A1-A4): quadratic loss ``L(theta) = 1/2 theta^T A theta``
(per-example loss ``l_n`` with the prior spread as ``-(1/N) log p(theta)``), mini-batch gradient
``grad L_S = A theta + xi`` with ``xi ~ N(0, C/S)``, ``C = B B^T`` the per-example gradient
covariance, posterior ``N(0, (N A)^{-1})`` (their Eq. 14).  The update with constant learning rate
``eps`` and constant preconditioner ``H`` is ``theta' = theta - eps H grad L_S`` (their Eq. 5 with
``eps H`` for the Thm 2 matrix ``H``); with momentum ``m`` (``m = 1 - mu`` for their damping ``mu``,
Sec. 4.3, Eq. 23) ``v' = m v - eps H grad L_S``, ``theta' = theta + v'``.

Two kinds of predictions:

* **continuous (OU) limits**, one iteration = one unit of time, as in the paper:
  ``A Sigma + Sigma A = (eps/S) C`` (Eq. 13), the momentum SDE (Eq. 24) and its *exact*
  ``2D``-dimensional Lyapunov equation (Eq. 25 is exact only when ``[A, C] = 0``), SGLD with
  constant rate (Sec. 5.1, corrected), iterate averaging (Eq. 30-31), IASG windows (Eq. 33);
* **exact discrete** stationary covariances of the linear recursion (the simulation targets):
  ``Sigma = Phi Sigma Phi^T + Q`` solved by :func:`scipy.linalg.solve_discrete_lyapunov`.

SymPy functions (``*_1d``/``*_expr``) derive the scalar closed forms; numeric functions take NumPy
arrays.  Page: ``docs/derivations/constant-sgd.md``; tests: ``tests/test_constant_sgd.py``.
"""
from __future__ import annotations

import numpy as np
import scipy.linalg as sla
import scipy.optimize as sopt
import sympy as sp

__all__ = [
    # SymPy
    "eps", "A", "B2", "S", "N", "m", "mu", "D", "trC",
    "sgd_discrete_variance_1d", "sgd_ou_variance_1d", "optimal_learning_rate_expr",
    "momentum_discrete_variance_1d", "momentum_sde_variance_1d",
    "sgld_discrete_variance_1d", "sgld_continuous_variance_1d",
    "eq21_bias_factor", "iterate_average_variance_1d", "iterate_average_limit_1d",
    # numeric
    "sgd_ou_covariance", "sgd_discrete_covariance", "momentum_sde_covariance",
    "momentum_printed_covariance", "sgld_discrete_covariance", "sgld_continuous_covariance",
    "kl_to_posterior", "optimal_learning_rate_numeric", "optimal_diagonal_preconditioner_numeric",
    "iterate_average_covariance", "iterate_average_limit", "iasg_window_covariance_eq33",
]

eps, A, B2, S, N, T = sp.symbols("epsilon A B2 S N T", positive=True)
m = sp.Symbol("m", nonnegative=True)  # momentum coefficient (our convention)
mu = sp.Symbol("mu", positive=True)  # Mandt's damping, mu = 1 - m
D, trC = sp.symbols("D trC", positive=True)


# ---------------------------------------------------------------------------------------------
# SymPy (scalar) derivations
# ---------------------------------------------------------------------------------------------
def sgd_discrete_variance_1d() -> sp.Expr:
    """Exact stationary variance of ``theta' = (1 - eps A) theta - eps xi``, ``Var xi = B2/S``.

    Solves ``V = (1 - eps A)^2 V + eps^2 B2 / S``: ``V = eps B2 / (S A (2 - eps A))``.
    """
    V = sp.Symbol("V")
    return sp.simplify(sp.solve(sp.Eq(V, (1 - eps * A) ** 2 * V + eps**2 * B2 / S), V)[0])


def sgd_ou_variance_1d() -> sp.Expr:
    """OU variance of Mandt Eq. 13 in 1-D: ``2 A V = (eps/S) B2``."""
    V = sp.Symbol("V")
    return sp.solve(sp.Eq(2 * A * V, eps * B2 / S), V)[0]


def optimal_learning_rate_expr() -> sp.Expr:
    """Mandt Thm 1 (Eq. 15) re-derived: ``argmin_eps KL = 2 S D / (N tr C)``.

    With ``Sigma = (eps/S) Sigma_0`` (Eq. 13 is linear in ``eps``) and the trace of Eq. 13,
    ``tr(A Sigma) = eps tr(C) / (2 S)``, so up to constants
    ``KL(eps) = (N/2) eps trC / (2 S) - (D/2) log eps``.
    """
    kl = N / 2 * eps * trC / (2 * S) - D / 2 * sp.log(eps)
    sol = sp.solve(sp.diff(kl, eps), eps)
    assert len(sol) == 1
    return sp.simplify(sol[0])


def _discrete_lyapunov_2x2(Phi: sp.Matrix, Q: sp.Matrix) -> sp.Matrix:
    s11, s12, s22 = sp.symbols("s11 s12 s22")
    Sig = sp.Matrix([[s11, s12], [s12, s22]])
    R = Phi * Sig * Phi.T + Q - Sig
    sol = sp.solve([R[0, 0], R[0, 1], R[1, 1]], [s11, s12, s22], dict=True)[0]
    return Sig.subs(sol).applyfunc(sp.simplify)


def momentum_discrete_variance_1d() -> sp.Expr:
    """Exact ``Var theta`` of ``v' = (1 - mu) v - eps (A theta + xi)``, ``theta' = theta + v'``.

    State ``z = (theta, v)``: ``z' = Phi z + g xi`` with ``Phi = [[1 - eps A, 1 - mu],
    [-eps A, 1 - mu]]`` and ``g = (-eps, -eps)``.  Result (``docs/derivations/constant-sgd.md``):
    ``(eps B2 / (2 mu S A)) * 2 (2 - mu) / (4 - 2 mu - eps A)``.
    """
    Phi = sp.Matrix([[1 - eps * A, 1 - mu], [-eps * A, 1 - mu]])
    g = sp.Matrix([-eps, -eps])
    return sp.factor(_discrete_lyapunov_2x2(Phi, g * g.T * B2 / S)[0, 0])


def momentum_sde_variance_1d() -> sp.Expr:
    """``Var theta`` of Mandt's momentum SDE (Eq. 24): ``dv = -mu v - eps A theta + (eps/sqrt S) B dW``.

    In 1-D ``A`` and ``B2`` commute and the result equals Eq. 25, ``eps B2 / (2 mu S A)``.
    """
    s11, s12, s22 = sp.symbols("s11 s12 s22")
    Sig = sp.Matrix([[s11, s12], [s12, s22]])
    M = sp.Matrix([[0, 1], [-eps * A, -mu]])
    Dm = sp.Matrix([[0, 0], [0, eps**2 * B2 / S]])
    R = M * Sig + Sig * M.T + Dm
    sol = sp.solve([R[0, 0], R[0, 1], R[1, 1]], [s11, s12, s22], dict=True)[0]
    return sp.simplify(Sig.subs(sol)[0, 0])


def sgld_discrete_variance_1d() -> sp.Expr:
    """Exact variance of Mandt Sec. 5.1 SGLD, ``theta' = theta - (eps/2) N (A theta + xi) + sqrt(eps) z``.

    ``N A V = (1 + eps N^2 B2 / (4 S)) / (1 - eps N A / 4)`` (``docs/derivations/constant-sgd.md``); returned as ``V``.
    """
    V = sp.Symbol("V")
    phi = 1 - eps * N * A / 2
    q = eps + eps**2 * N**2 * B2 / (4 * S)
    return sp.simplify(sp.solve(sp.Eq(V, phi**2 * V + q), V)[0])


def sgld_continuous_variance_1d(printed: bool = False) -> sp.Expr:
    """1-D solution of ``(N/2)(A V + V A) = 1 + k B2`` with the corrected ``k = eps N^2/(4S)``
    (``printed=False``) or Mandt's printed ``k = eps N/(2S)`` (``printed=True``)."""
    V = sp.Symbol("V")
    k = eps * N / (2 * S) if printed else eps * N**2 / (4 * S)
    return sp.solve(sp.Eq(N * A * V, 1 + k * B2), V)[0]


def eq21_bias_factor(replace: bool = True) -> sp.Expr:
    """``E[(g_1 - g_S)^2] / c`` for Mandt's Eq. 21 estimator, derived from indicator moments.

    ``g_1`` is the first example of the batch, ``g_S`` the batch mean, ``c`` the per-example
    variance (with replacement: i.i.d., ``c`` = population variance, result ``(S-1)/S``; without
    replacement from ``N`` examples: ``c`` = population variance with divisor ``N``, result
    ``N (S-1) / (S (N-1))``, i.e. ``(S-1)/S`` times the divisor-``(N-1)`` variance).
    Uses ``Var g_1 = c``, ``Cov(g_1, g_k) = rho c`` (``rho = 0`` i.i.d., ``-1/(N-1)`` without
    replacement) and ``Var(g_1 - g_S) = Var g_1 - 2 Cov(g_1, g_S) + Var g_S``.
    """
    c = sp.Symbol("c", positive=True)
    rho = sp.Integer(0) if replace else -1 / (N - 1)
    var1 = c
    cov1S = (c + (S - 1) * rho * c) / S
    varS = (S * c + S * (S - 1) * rho * c) / S**2
    return sp.simplify((var1 - 2 * cov1S + varS) / c)


def iterate_average_variance_1d() -> sp.Expr:
    """``Var`` of the mean of ``T`` stationary AR(1) iterates ``phi = 1 - eps A``, ``gamma_0 = V``.

    ``gamma_0 [T (1 - phi^2) - 2 phi (1 - phi^T)] / (T^2 (1 - phi)^2)`` (``docs/derivations/constant-sgd.md``); its
    ``T -> oo`` limit times ``T`` is ``B2 / (S A^2)`` for every ``eps`` (Mandt Eq. 30).
    """
    phi = 1 - eps * A
    g0 = sgd_discrete_variance_1d()
    return g0 * (T * (1 - phi**2) - 2 * phi * (1 - phi**T)) / (T**2 * (1 - phi) ** 2)


def iterate_average_limit_1d() -> sp.Expr:
    """``lim_T T Var(theta_bar_T)`` in 1-D: the ``phi^T`` term of
    :func:`iterate_average_variance_1d` vanishes for a stable chain, leaving
    ``gamma_0 (1 + phi) / (1 - phi) = B2 / (S A^2)`` (independent of ``eps``; Mandt Eq. 30)."""
    phi = 1 - eps * A
    return sp.simplify(sgd_discrete_variance_1d() * (1 + phi) / (1 - phi))


# ---------------------------------------------------------------------------------------------
# numeric (NumPy / SciPy)
# ---------------------------------------------------------------------------------------------
def _precond(H, d):
    if H is None:
        return np.eye(d)
    H = np.asarray(H, dtype=np.float64)
    if H.ndim == 0:
        return float(H) * np.eye(d)
    if H.ndim == 1:
        return np.diag(H)
    return H


def _sym(X):
    return 0.5 * (X + X.T)


def sgd_ou_covariance(A, BBt, S, eps, H=None):
    """OU stationary covariance of ``theta' = theta - eps H grad L_S`` (Mandt Eq. 13 / Thm 2).

    Solves ``(eps H A) Sigma + Sigma (eps H A)^T = (eps^2 / S) H C H``.
    """
    A = np.asarray(A, float)
    Hm = _precond(H, A.shape[0])
    F = eps * Hm @ A
    return _sym(sla.solve_continuous_lyapunov(F, eps**2 * Hm @ np.asarray(BBt, float) @ Hm.T / S))


def _sgd_joint(A, BBt, S, eps, H, momentum):
    A = np.asarray(A, float)
    d = A.shape[0]
    Hm = _precond(H, d)
    K = eps * Hm @ A
    G = eps * Hm
    if momentum == 0.0:
        return np.eye(d) - K, G @ (np.asarray(BBt, float) / S) @ G.T
    I = np.eye(d)
    Phi = np.block([[I - K, momentum * I], [-K, momentum * I]])
    Gj = np.vstack([G, G])
    return Phi, Gj @ (np.asarray(BBt, float) / S) @ Gj.T


def sgd_discrete_covariance(A, BBt, S, eps, H=None, momentum=0.0, joint=False):
    """Exact stationary covariance of the discrete (momentum-)SGD recursion on the quadratic model.

    Without momentum ``Sigma = (I - eps H A) Sigma (I - eps H A)^T + eps^2 H (C/S) H^T``; with
    momentum ``m`` the state ``(theta, v)`` evolves by ``Phi = [[I - eps H A, m I], [-eps H A, m I]]``
    and noise ``(eps H xi, eps H xi)``.  Returns the ``theta`` block (``joint=True``: all).
    """
    Phi, Q = _sgd_joint(A, BBt, S, eps, H, float(momentum))
    if np.max(np.abs(np.linalg.eigvals(Phi))) >= 1.0:
        raise ValueError("the recursion is unstable (spectral radius of Phi >= 1)")
    Sig = _sym(sla.solve_discrete_lyapunov(Phi, Q))
    d = np.asarray(A).shape[0]
    return Sig if joint else Sig[:d, :d]


def momentum_sde_covariance(A, BBt, S, eps, damping):
    """``theta`` covariance of Mandt's momentum SDE (Eq. 24), exact for any ``A``, ``C``.

    ``d(theta, v) = M (theta, v) dt + (0, (eps/sqrt S) B) dW`` with ``M = [[0, I], [-eps A, -mu I]]``;
    solves ``M P + P M^T + diag(0, eps^2 C / S) = 0`` (``2D``-dimensional Lyapunov).
    """
    A = np.asarray(A, float)
    d = A.shape[0]
    M = np.block([[np.zeros((d, d)), np.eye(d)], [-eps * A, -damping * np.eye(d)]])
    Q = np.zeros((2 * d, 2 * d))
    Q[d:, d:] = eps**2 * np.asarray(BBt, float) / S
    return _sym(sla.solve_continuous_lyapunov(M, -Q))[:d, :d]


def momentum_printed_covariance(A, BBt, S, eps, damping):
    """Mandt Eq. 25 as printed: ``Sigma A + A Sigma = (eps / (mu S)) C`` (exact only if ``[A, C] = 0``)."""
    A = np.asarray(A, float)
    return _sym(sla.solve_continuous_lyapunov(A, eps / (damping * S) * np.asarray(BBt, float)))


def sgld_discrete_covariance(A, BBt, S, N, eps):
    """Exact covariance of Mandt Sec. 5.1 SGLD ``theta' = theta - (eps/2) N (A theta + xi) + sqrt(eps) z``."""
    A = np.asarray(A, float)
    d = A.shape[0]
    Phi = np.eye(d) - 0.5 * eps * N * A
    Q = eps * np.eye(d) + 0.25 * eps**2 * N**2 * np.asarray(BBt, float) / S
    return _sym(sla.solve_discrete_lyapunov(Phi, Q))


def sgld_continuous_covariance(A, BBt, S, N, eps, printed=False):
    """Solve ``(N/2)(A Sigma + Sigma A) = I + k C`` with ``k = eps N^2/(4S)`` (corrected, derived
    from the printed update) or Mandt's printed ``k = eps N / (2S)`` (``printed=True``)."""
    A = np.asarray(A, float)
    k = eps * N / (2 * S) if printed else eps * N**2 / (4 * S)
    rhs = np.eye(A.shape[0]) + k * np.asarray(BBt, float)
    return _sym(sla.solve_continuous_lyapunov(0.5 * N * A, rhs))


def kl_to_posterior(Sigma, A, N):
    """``KL(N(0, Sigma) || N(0, (N A)^{-1})) = 1/2 [tr(N A Sigma) - D - log det(N A Sigma)]``."""
    M = N * np.asarray(A, float) @ np.asarray(Sigma, float)
    sign, logdet = np.linalg.slogdet(M)
    if sign <= 0:
        return np.inf
    return 0.5 * (np.trace(M) - M.shape[0] - logdet)


def optimal_learning_rate_numeric(A, BBt, S, N):
    """Minimise ``KL(eps)`` of the OU covariance (Eq. 13) over ``eps`` numerically (independent of Thm 1)."""
    f = lambda u: kl_to_posterior(sgd_ou_covariance(A, BBt, S, float(np.exp(u))), A, N)  # noqa: E731
    res = sopt.minimize_scalar(f, bracket=(-20.0, 0.0), tol=1e-12)
    return float(np.exp(res.x))


def optimal_diagonal_preconditioner_numeric(A, BBt, S, N, h0=None):
    """KL-optimal *diagonal* ``H`` (step ``theta' = theta - H grad L_S``) of the OU model, numerically.

    Minimises ``KL(N(0, Sigma(H)) || posterior)`` with ``H A Sigma + Sigma A H = H C H / S``.  Mandt
    Cor. 3 claims ``H_kk = 2S/(N C_kk)``; that holds when ``C`` is diagonal (then it equals Thm 2's
    ``H*``) and fails in general (docs/errata.md).  Returns ``(h, kl)``.
    """
    BBt = np.asarray(BBt, float)
    if h0 is None:
        h0 = 2.0 * S / (N * np.diag(BBt))
    f = lambda u: kl_to_posterior(sgd_ou_covariance(A, BBt, S, 1.0, np.diag(np.exp(u))), A, N)  # noqa: E731
    res = sopt.minimize(f, np.log(h0), method="Nelder-Mead",
                        options={"xatol": 1e-10, "fatol": 1e-15, "maxiter": 20000})
    return np.exp(res.x), float(res.fun)


def iterate_average_covariance(A, BBt, S, eps, T, H=None, momentum=0.0):
    """Exact ``Cov`` of the mean of ``T`` consecutive iterates of the *stationary* recursion.

    ``Cov(sum) = T Sigma + K Sigma + Sigma K^T`` with ``K = sum_{k=1}^{T-1} (T - k) Phi^k
    = T Phi (I - Phi)^{-1} - Phi (I - Phi^T) (I - Phi)^{-2}`` (joint state with momentum);
    returns the ``theta`` block of ``Cov(sum) / T^2``.
    """
    Phi, Q = _sgd_joint(A, BBt, S, eps, H, float(momentum))
    Sig = sla.solve_discrete_lyapunov(Phi, Q)
    n = Phi.shape[0]
    I = np.eye(n)
    Minv = np.linalg.inv(I - Phi)
    K = T * Phi @ Minv - Phi @ (I - np.linalg.matrix_power(Phi, int(T))) @ Minv @ Minv
    C = (T * Sig + K @ Sig + Sig @ K.T) / T**2
    d = np.asarray(A).shape[0]
    return _sym(C[:d, :d])


def iterate_average_limit(A, BBt, S):
    """Mandt Eq. 30-31: ``lim_T T Cov(theta_bar_T) = A^{-1} (C/S) A^{-T}``, for every ``eps`` and ``H``."""
    Ai = np.linalg.inv(np.asarray(A, float))
    return _sym(Ai @ (np.asarray(BBt, float) / S) @ Ai.T)


def iasg_window_covariance_eq33(A, S, eps, T):
    """Mandt Eq. 33 (continuous, assumption A5 ``C = A``): covariance of a window-``T`` average.

    ``(1/(S T)) A^{-1} + (1/(eps S T^2)) U Lambda^{-2} (e^{-eps T Lambda} - I) U^T``, ``A = U Lambda U^T``.
    """
    lam, U = np.linalg.eigh(np.asarray(A, float))
    inner = 1.0 / (S * T * lam) + (np.exp(-eps * T * lam) - 1.0) / (eps * S * T**2 * lam**2)
    return _sym(U @ np.diag(inner) @ U.T)
