"""Covariance of the unbiased mini-batch gradient estimator (SymPy).

Statement
---------
Let ``a_1..a_N`` and ``c_1..c_N`` be two coordinates of the per-example
gradients, ``B`` a batch of ``b`` indices and ``A_hat = (N/b) sum_{i in B} a_i``
(same for ``C_hat``).  With the population covariance
``sigma_ac = (1/N) sum_i (a_i - abar)(c_i - cbar)`` (divisor ``N``):

* ``B`` a uniformly random ``b``-subset (without replacement):
  ``E[A_hat] = sum_i a_i`` and ``Cov[A_hat, C_hat] = (N^2/b) (N-b)/(N-1) sigma_ac``;
* ``B`` ``b`` i.i.d. uniform indices (with replacement):
  ``E[A_hat] = sum_i a_i`` and ``Cov[A_hat, C_hat] = (N^2/b) sigma_ac``.

In terms of ``S_ac = N/(N-1) sigma_ac`` (divisor ``N - 1``) the factors are
``N (N - b)/b`` and ``N (N - 1)/b``.

Two independent checks live here:

* :func:`derive_factor`: general ``N, b`` from the indicator moments
  ``P(i in B) = b/N`` and ``P(i, j in B) = b (b-1) / (N (N-1))`` (without
  replacement), or from the i.i.d. sum (with replacement);
* :func:`enumerate_covariance`: brute-force enumeration of every batch for a
  small ``N`` with symbolic ``a_i, c_i`` (no formula assumed).
"""
from __future__ import annotations

import itertools

import sympy as sp

__all__ = [
    "N",
    "b",
    "covariance_factor",
    "sample_covariance_factor",
    "derive_factor",
    "enumerate_covariance",
    "check_enumeration",
    "covariance_factor_numeric",
]

N, b = sp.symbols("N b", positive=True, integer=True)


def covariance_factor(replace: bool) -> sp.Expr:
    """``k`` with ``Cov[g_hat] = k * Sigma_pop`` (population covariance, divisor ``N``)."""
    if replace:
        return N**2 / b
    return N**2 / b * (N - b) / (N - 1)


def sample_covariance_factor(replace: bool) -> sp.Expr:
    """``k`` with ``Cov[g_hat] = k * S^2`` (per-example covariance, divisor ``N - 1``)."""
    return sp.simplify(covariance_factor(replace) * (N - 1) / N)


def derive_factor(replace: bool) -> sp.Expr:
    """Derive ``Cov[A_hat, C_hat] / sigma_ac`` for general ``N, b``.

    Centre WLOG (``sum a = sum c = 0``; a constant shift does not change a
    covariance).  With inclusion indicators ``I_i``::

        Cov[sum I_i a_i, sum I_j c_j] = sum_i a_i c_i Var[I_i] + sum_{i != j} a_i c_j Cov[I_i, I_j]

    and ``sum_{i != j} a_i c_j = (sum a)(sum c) - sum_i a_i c_i = -N sigma_ac``.
    With replacement, ``sum_{k=1}^b a_{J_k}`` is a sum of ``b`` i.i.d. terms of
    covariance ``sigma_ac``.
    """
    sigma = sp.Symbol("sigma_ac")
    if replace:
        cov_sum = b * sigma
    else:
        p = b / N
        p2 = b * (b - 1) / (N * (N - 1))
        var_i = p - p**2
        cov_ij = p2 - p**2
        sum_aa = N * sigma  # sum_i a_i c_i for centred a, c
        cov_sum = sum_aa * var_i + (-sum_aa) * cov_ij
    return sp.simplify((N / b) ** 2 * cov_sum / sigma)


def enumerate_covariance(n_data: int, batch_size: int, replace: bool):
    """Exact mean and covariance of ``(A_hat, C_hat)`` by enumerating every batch.

    Each batch is summarised by its count vector ``n_i`` (how often example
    ``i`` is in it); ``A_hat = (N/b) sum_i n_i a_i``, so with exact rational
    averages over all equally likely batches ``E[n_i]`` and ``E[n_i n_j]``::

        E[A_hat] = (N/b) sum_i E[n_i] a_i,
        Cov[A_hat, C_hat] = (N/b)^2 sum_ij (E[n_i n_j] - E[n_i] E[n_j]) a_i c_j.

    Returns ``(mean_a - sum a, cov_ac, sigma_ac)`` as expanded SymPy
    expressions in the symbols ``a0..a{N-1}, c0..c{N-1}``.
    """
    n, k = int(n_data), int(batch_size)
    a = sp.Matrix(sp.symbols(f"a0:{n}"))
    c = sp.Matrix(sp.symbols(f"c0:{n}"))
    batches = itertools.product(range(n), repeat=k) if replace else itertools.combinations(range(n), k)
    m1 = [0] * n
    m2 = [[0] * n for _ in range(n)]
    count = 0
    for B in batches:
        cnt = [0] * n
        for i in B:
            cnt[i] += 1
        count += 1
        for i in range(n):
            if cnt[i]:
                m1[i] += cnt[i]
                for j in range(n):
                    if cnt[j]:
                        m2[i][j] += cnt[i] * cnt[j]
    E1 = sp.Matrix(n, 1, [sp.Rational(v, count) for v in m1])
    E2 = sp.Matrix(n, n, [sp.Rational(m2[i][j], count) for i in range(n) for j in range(n)])
    s = sp.Rational(n, k)
    mean_a = s * (E1.T * a)[0, 0]
    cov = s**2 * (a.T * (E2 - E1 * E1.T) * c)[0, 0]
    abar = sum(a) / n
    cbar = sum(c) / n
    sigma = sum((a[i] - abar) * (c[i] - cbar) for i in range(n)) / n
    return sp.expand(mean_a - sum(a)), sp.expand(cov), sp.expand(sigma)


def check_enumeration(n_data: int, batch_size: int, replace: bool) -> bool:
    """``True`` iff enumeration gives an unbiased mean and ``Cov = covariance_factor * sigma_ac``."""
    bias, cov, sigma = enumerate_covariance(n_data, batch_size, replace)
    k = covariance_factor(replace).subs({N: n_data, b: batch_size})
    return bias == 0 and sp.expand(cov - k * sigma) == 0


_num = {r: sp.lambdify((N, b), covariance_factor(r), "math") for r in (False, True)}


def covariance_factor_numeric(n_data: int, batch_size: int, replace: bool) -> float:
    """Numeric ``covariance_factor(replace)`` (multiplies the population covariance)."""
    return float(_num[bool(replace)](n_data, batch_size))


