"""KL divergence between Gaussians, derived from the densities (SymPy).

Statement
---------
KL(N(m0, S0) || N(m1, S1)) = 1/2 [tr(S1^{-1} S0) + (m1 - m0)^T S1^{-1} (m1 - m0) - d
+ ln det S1 - ln det S0]; in 1-D, ln(s1/s0) + (s0^2 + (m0 - m1)^2) / (2 s1^2) - 1/2.

Derivation (no KL formula assumed): KL = E_{x ~ N0}[ln N0(x) - ln N1(x)].  The
log-density ratio is a quadratic polynomial in x; substituting x = m0 + L0 z
(S0 = L0 L0^T, z ~ N(0, I)) and replacing monomials of z by their moments
(E z_i = 0, E z_i z_j = delta_ij) gives the expectation exactly.

Checked by ``tests/test_diagnostics.py::test_gaussian_kl_1d_closed_form`` and
``::test_gaussian_kl_2d_vs_sympy_and_batched`` against
``smile_ref.diagnostics.gaussian_kl``.  Page: docs/derivations/gaussian-kl.md.
"""
from __future__ import annotations


import sympy as sp

__all__ = ["kl_from_densities", "kl_1d_derived", "kl_1d_closed_form", "check_1d"]


def _gaussian_moment(exponents) -> int:
    """E prod_i z_i^{k_i} for independent standard normals: prod_i (k_i - 1)!! for even k_i, else 0."""
    out = 1
    for k in exponents:
        if k % 2:
            return 0
        out *= sp.factorial2(k - 1) if k > 0 else 1
    return out


def kl_from_densities(m0, l0, m1, s1) -> sp.Expr:
    """Exact KL(N(m0, L0 L0^T) || N(m1, S1)) from the log-densities (SymPy matrices or nested lists)."""
    m0, l0, m1, s1 = (sp.Matrix(a) for a in (m0, l0, m1, s1))
    d = m0.shape[0]
    z = sp.Matrix(sp.symbols(f"z0:{d}"))
    s0 = l0 * l0.T
    x = m0 + l0 * z

    def logpdf(mu, cov):
        r = x - mu
        return -(r.T * cov.inv() * r)[0] / 2 - sp.log(cov.det()) / 2 - d * sp.log(2 * sp.pi) / 2

    poly = sp.Poly(sp.expand(logpdf(m0, s0) - logpdf(m1, s1)), *z)
    return sp.simplify(sum(coef * _gaussian_moment(mon) for mon, coef in poly.terms()))


m0, m1 = sp.symbols("m0 m1", real=True)
s0, s1 = sp.symbols("s0 s1", positive=True)


def kl_1d_derived() -> sp.Expr:
    """1-D KL derived from the densities with symbolic (m0, s0, m1, s1)."""
    return kl_from_densities([m0], [[s0]], [m1], [[s1**2]])


def kl_1d_closed_form() -> sp.Expr:
    """The textbook 1-D formula ln(s1/s0) + (s0^2 + (m0 - m1)^2)/(2 s1^2) - 1/2."""
    return sp.log(s1 / s0) + (s0**2 + (m0 - m1) ** 2) / (2 * s1**2) - sp.Rational(1, 2)


def check_1d() -> bool:
    """True iff the derived and textbook 1-D expressions are identical."""
    return sp.simplify(sp.expand_log(kl_1d_derived() - kl_1d_closed_form(), force=True)) == 0


