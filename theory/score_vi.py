"""Score-based VI on Gaussian targets (SymPy): our proximal score-matching formulation, ADVI, Fisher, BaM.

Statements (target ``p = N(mu, P^{-1})`` with dense SPD ``P``; ``D = diag(P)``; family
``q = N(m, diag(1/tau))``; population limit ``M -> infinity``):

1. Mini-batch unbiasedness: ``E||a - s_hat||^2 = ||a - s||^2 + tr Cov(s_hat)`` for ``E s_hat = s``
   (:func:`minibatch_identity` returns the difference, identically 0).
2. The ``beta = 0`` diagonal update maps ``(m, tau)`` to ``tau' = diag(P)`` (in one step, whatever
   ``(m, tau)``) and ``m' - mu = (I - D^{-1} P)(m - mu)``, a Jacobi iteration
   (:func:`diag_population_update`).  Fixed point ``m = mu``, ``tau = diag(P)``, which is the
   mean-field KL(q||p) (ADVI) optimum (:func:`advi_optimum`) and **not** the minimiser of the
   Fisher divergence ``E_q||grad log q - grad log p||^2``, ``tau_j = sqrt((P^2)_jj)``
   (:func:`fisher_optimum`).
3. For ``beta >= 0`` the mean map's Jacobian at the fixed point is ``I - 2 (2D + beta I)^{-1} P``
   (:func:`mean_jacobian`): the iteration converges iff ``2D + beta I - P`` is positive definite,
   so ``beta = 0`` diverges when ``2D - P`` is indefinite and ``beta > lambda_max(P - 2D)`` repairs it;
   the precision contracts with factor ``beta / (4 P_jj + beta)`` (:func:`tau_contraction`).
4. BaM in 1-D, target ``N(0, 1)``, ``q_t = N(mu_t, s)``: ``s' = f(s)`` with ``f'(1) = 1/(1 + 2 lambda)``
   and ``mu' = mu / (1 + lambda)`` (:func:`bam_population_1d`).

All expectations are computed from Gaussian moments (no formula assumed).  Page:
docs/derivations/score-vi.md; tests: tests/test_vi_theory.py.
"""
from __future__ import annotations

import sympy as sp

__all__ = ["minibatch_identity", "diag_population_update", "advi_optimum", "fisher_optimum",
           "mean_jacobian", "tau_contraction", "bam_population_1d", "dense_symbols"]


def _expect(expr, z):
    """E over independent standard normals ``z`` of a polynomial ``expr``."""
    poly = sp.Poly(sp.expand(expr), *z)
    out = 0
    for mon, coef in poly.terms():
        w = 1
        for k in mon:
            w = 0 if k % 2 else w * (sp.factorial2(k - 1) if k > 0 else 1)
        out += coef * w
    return sp.simplify(out)


def dense_symbols(d: int = 2):
    """Symbolic symmetric ``P``, ``mu``, ``m``, ``tau`` (positive) of dimension ``d``."""
    P = sp.Matrix(d, d, lambda i, j: sp.Symbol(f"P{min(i, j)}{max(i, j)}", real=True))
    mu = sp.Matrix(sp.symbols(f"mu0:{d}", real=True))
    m = sp.Matrix(sp.symbols(f"m0:{d}", real=True))
    tau = sp.Matrix(sp.symbols(f"tau0:{d}", positive=True))
    return P, mu, m, tau


def minibatch_identity(d: int = 2) -> sp.Expr:
    """``E||a - s - xi||^2 - (||a - s||^2 + sum_j Var xi_j)`` with ``E xi = 0`` (returns 0)."""
    a = sp.Matrix(sp.symbols(f"a0:{d}", real=True))
    s = sp.Matrix(sp.symbols(f"s0:{d}", real=True))
    z = sp.symbols(f"z0:{d}", real=True)
    L = sp.Matrix(d, d, lambda i, j: sp.Symbol(f"L{i}{j}", real=True) if j <= i else 0)  # xi = L z
    xi = L * sp.Matrix(z)
    r = a - s - xi
    lhs = _expect((r.T * r)[0], z)
    rhs = ((a - s).T * (a - s))[0] + (L * L.T).trace()
    return sp.simplify(lhs - rhs)


def diag_population_update(P, mu, m, tau):
    """Population ``beta = 0`` update ``(tau', m')`` of the diagonal family (exact Gaussian moments)."""
    d = P.shape[0]
    z = sp.symbols(f"z0:{d}", real=True)
    theta = sp.Matrix([m[j] + z[j] / sp.sqrt(tau[j]) for j in range(d)])
    s = -P * (theta - mu)
    tau_new, m_new = [], []
    for j in range(d):
        tbar = _expect(theta[j], z)
        sbar = _expect(s[j], z)
        V = _expect((theta[j] - tbar) ** 2, z)
        C = _expect((theta[j] - tbar) * (s[j] - sbar), z)
        tj = sp.simplify(-C / V)
        tau_new.append(tj)
        m_new.append(sp.simplify(tbar + sbar / tj))
    return sp.Matrix(tau_new), sp.Matrix(m_new)


def advi_optimum(P, mu, m, tau):
    """Stationary ``tau`` of KL(q || p) over diagonal ``q`` (list of solutions per coordinate)."""
    d = P.shape[0]
    z = sp.symbols(f"z0:{d}", real=True)
    theta = sp.Matrix([m[j] + z[j] / sp.sqrt(tau[j]) for j in range(d)])
    r = theta - mu
    kl = _expect((r.T * P * r)[0] / 2, z) + sum(sp.log(tau[j]) for j in range(d)) / 2   # E log q - E log p + const
    return [sp.solve(sp.diff(kl, tau[j]), tau[j]) for j in range(d)], kl


def fisher_optimum(P, mu, m, tau):
    """Stationary ``tau`` of the Fisher divergence ``E_q||grad log q - grad log p||^2`` over diagonal ``q``."""
    d = P.shape[0]
    z = sp.symbols(f"z0:{d}", real=True)
    theta = sp.Matrix([m[j] + z[j] / sp.sqrt(tau[j]) for j in range(d)])
    T = sp.diag(*tau)
    r = -T * (theta - m) + P * (theta - mu)
    fisher = _expect((r.T * r)[0], z)
    return [sp.solve(sp.diff(fisher, tau[j]), tau[j]) for j in range(d)], fisher


def mean_jacobian(P, beta):
    """``d m'/d m`` at the fixed point for ``m' = theta_bar + 2 s_bar / (2 tau' + beta)``, ``tau' = diag(P)``.

    At the fixed point ``s_bar = 0``, so the dependence of ``tau'`` on ``m`` drops out at first order.
    """
    d = P.shape[0]
    m = sp.Matrix(sp.symbols(f"m0:{d}", real=True))
    mu = sp.Matrix(sp.symbols(f"mu0:{d}", real=True))
    sbar = -P * (m - mu)
    mnew = sp.Matrix([m[j] + 2 * sbar[j] / (2 * P[j, j] + beta) for j in range(d)])
    return sp.simplify(mnew.jacobian(m))


def tau_contraction():
    """1-D ``d tau'/d tau`` at ``tau = p`` for the ``beta > 0`` root of ``f`` with ``V = 1/tau``, ``C = -p/tau``, ``s_bar = 0``."""
    t, to, p, b = sp.symbols("tau tau_old p beta", positive=True)
    f = (2 * t + b / 2) / to - 2 * p / to - b / (2 * t)
    dt = -sp.diff(f, to) / sp.diff(f, t)
    return sp.simplify(dt.subs({t: p, to: p})), f


def bam_population_1d():
    """BaM population map in 1-D (target N(0,1)): ``(Sigma'(s), d Sigma'/ds at 1, mean factor)``."""
    s, lam, S = sp.symbols("s lambda Sigma", positive=True)
    mu = sp.Symbol("mu", real=True)
    U = lam * s                    # Gamma = Var(-z) = s, gbar = -mu contributes (lam/(1+lam)) mu^2
    V = s * (1 + lam)              # Sigma_t + lam C, zbar = mu_t
    # at mu = 0: lam s S^2 + S - s (1 + lam) = 0, positive root
    roots = sp.solve(sp.Eq(U * S**2 + S, V), S)
    Snew = [r for r in roots if sp.simplify(r.subs({s: 1, lam: 1})) > 0][0]
    slope = sp.simplify(sp.factor(sp.diff(Snew, s).subs(s, 1), deep=True))
    mean_new = sp.simplify(mu / (1 + lam) + lam / (1 + lam) * (1 * (-mu) + mu))    # Sigma' = 1, gbar = -mu, zbar = mu
    return sp.simplify(Snew), slope, sp.simplify(mean_new / mu)
