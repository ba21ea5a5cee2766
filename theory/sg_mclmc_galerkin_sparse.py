"""Sparse assembly of the Galerkin system of :mod:`smile_ref.theory.sg_mclmc_galerkin` (large d).

Same trial = test space ``V`` as the dense solve (polynomials ``y^β u^γ`` with the degree limits and
symmetry of :func:`~smile_ref.theory.sg_mclmc_galerkin_basis.galerkin_basis`), written in a different
basis of the *same span*: the position factor is the product Hermite polynomial
``He_β(y/k) = Π_i He_{β_i}(y_i/k)`` (orthogonal under the reference ``N(0, k^2 I)``,
``E[He_β He_β'] = β! δ_ββ'``), the velocity factor stays the monomial ``u^γ``.  Because
``He_n`` is ``y^n`` plus lower terms of the same parity, the change of basis is triangular within
every symmetry sector, so the Galerkin solution (and ``E[x x^T]``) is the same as the dense one up
to rounding.  In this basis the three parts of the generator act as::

    E[He_α ∂_j He_β]   = (β_j/k) α! δ(α = β - e_j),
    E[He_α y_l He_β]   = k α! [δ(α = β + e_l) + β_l δ(α = β - e_l)],
    E[He_α He_β]       = α! δ(α = β),

so ``M[a, b] = E_ref[φ_a L φ_b]`` is nonzero only for position indices that differ by at most one
unit vector, and (sphere moments vanish unless every exponent is even) for velocity monomials whose
parity patterns differ by the parity of the term's shift.  The pairs are enumerated by sorting the
basis on the key (position index, velocity parity mask) and looking up each term's partner key;
entries are evaluated in chunks and the system is solved with SuperLU (``scipy.sparse``).

The velocity moments are those of the dense assembly (``E_U[u^γ]`` in closed form), so the same
SymPy check of the monomial rules applies; the equality with the dense solve is tested at
d = 3-5.  Memory is ``O(nnz)``: no ``(n_u', n_u')`` velocity moment matrix is formed.
"""
from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sps
import scipy.sparse.linalg as spla

from .sg_mclmc_galerkin_basis import _Moments, _parity_mask, galerkin_basis

__all__ = ["sparse_solve", "sparse_assembly"]

_CHUNK = 2_000_000  # pairs evaluated at once (int8 exponents: ~20 d bytes per pair)


def _index_of(By, n_x):
    """Neighbour tables ``plus[i, l]``, ``minus[i, l]``: index of ``By[i] ± e_l`` in ``By`` (-1 if absent)."""
    d = By.shape[1]
    base = n_x + 2
    code = By @ (base ** np.arange(d, dtype=np.int64))
    order = np.argsort(code)
    sc = code[order]

    def find(c):
        pos = np.clip(np.searchsorted(sc, c), 0, len(sc) - 1)
        return np.where(sc[pos] == c, order[pos], -1)

    plus = np.empty((len(By), d), dtype=np.int64)
    minus = np.empty((len(By), d), dtype=np.int64)
    for l in range(d):
        plus[:, l] = find(code + base**l)
        minus[:, l] = np.where(By[:, l] > 0, find(code - base**l), -1)
    return plus, minus


def _fact(By):
    f = np.array([float(math.factorial(n)) for n in range(int(By.max(initial=0)) + 2)])
    return np.prod(f[By], axis=1)


def sparse_assembly(Winv, F, Sig, k2, kappa2, By, Gu, iy, iu, n_x):
    """``A`` (CSR, rows = test functions ``b``, columns = unknowns ``a``: ``A[b, a] = E_ref[φ_a L φ_b]``,
    Hermite position factors), the mass vector ``E_ref[φ_a]`` and the moment helper."""
    d = By.shape[1]
    N = iy.size
    k = math.sqrt(k2)
    mom = _Moments(d, 1.0, 2 * int(Gu.sum(1).max(initial=0)) + 4)
    Gs = Gu.astype(np.int8)
    bfac = _fact(By)
    plus, minus = _index_of(By, n_x)
    pu = _parity_mask(Gu)[iu]
    shift = 1 << d
    key = iy * shift + pu
    order = np.argsort(key, kind="stable")
    skey = key[order]
    nb_u = Gu.sum(1).astype(np.float64)
    trS = float(np.trace(Sig))
    rows, cols, vals = [], [], []

    def partners(b_idx, iy_target, mask):
        """All (b, a) with iy_a = iy_target[b], pu_a = pu_b ^ mask; iy_target < 0 drops b."""
        ok = iy_target >= 0
        b_idx, tgt = b_idx[ok], iy_target[ok] * shift + (pu[b_idx[ok]] ^ mask)
        lo, hi = np.searchsorted(skey, tgt, "left"), np.searchsorted(skey, tgt, "right")
        cnt = hi - lo
        bb = np.repeat(b_idx, cnt)
        start = np.repeat(lo - np.cumsum(cnt) + cnt, cnt)
        aa = order[np.arange(bb.size) + start]
        return bb, aa

    def Eu(ga, gb, sh_idx=None, sgn=0, sh2=None, sgn2=0):
        e = ga.astype(np.int16) + gb
        if sh_idx is not None:
            e[:, sh_idx] += sgn
        if sh2 is not None:
            e[:, sh2] += sgn2
        return mom.u(e)

    def emit(bb, aa, fn):
        for s in range(0, bb.size, _CHUNK):
            b, a = bb[s:s + _CHUNK], aa[s:s + _CHUNK]
            v = fn(b, a)
            nz = v != 0.0
            rows.append(b[nz])
            cols.append(a[nz])
            vals.append(v[nz])

    allb = np.arange(N)
    # noise part: E[He_α He_β] U0(γ_a, γ_b), α = β; masks 0 and e_j ^ e_k for Sig[j, k] != 0
    masks = {0} | {(1 << j) ^ (1 << kk) for j in range(d) for kk in range(j + 1, d) if Sig[j, kk] != 0.0}
    nzS = [(j, kk, float(Sig[j, kk])) for j in range(d) for kk in range(d) if Sig[j, kk] != 0.0]

    def noise_val(b, a):
        ga, gb = Gs[iu[a]], Gs[iu[b]]
        n = nb_u[iu[b]]
        gb16 = gb.astype(np.int64)
        tot = -n * trS * Eu(ga, gb)
        for j, kk, s in nzS:
            gj = gb16[:, j]
            gk = gb16[:, kk] - (1 if j == kk else 0)
            term = -(2 * n - 1) * gj * Eu(ga, gb, kk, 1, j, -1) + n * (n + 1) * Eu(ga, gb, j, 1, kk, 1)
            mm = gj * gk != 0
            if np.any(mm):
                term[mm] += (gj * gk)[mm] * Eu(ga[mm], gb[mm], j, -1, kk, -1)
            tot = tot + s * term
        return 0.5 * kappa2 * bfac[iy[b]] * tot

    for mask in masks:
        emit(*partners(allb, iy, mask), noise_val)
    # transport: E[He_α ∂_j He_β] Σ_l Winv[j, l] E[u^{γa+γb+e_l}], α = β - e_j
    for j in range(d):
        tgt = minus[iy, j]
        for l in range(d):
            w = float(Winv[j, l])
            if w == 0.0:
                continue
            emit(*partners(allb, tgt, 1 << l),
                 lambda b, a, j=j, l=l, w=w: w * (By[iy[b], j] / k) * bfac[iy[a]] * Eu(Gs[iu[a]], Gs[iu[b]], l, 1))
    # force: -(1/(d-1)) E[He_α y_l He_β] Σ_j F[j, l] [γb_j E[u^{..-e_j}] - n_b E[u^{..+e_j}]]
    for l in range(d):
        for sgn_y, tgt in ((1, plus[iy, l]), (-1, minus[iy, l])):
            for j in range(d):
                f = float(F[j, l])
                if f == 0.0:
                    continue

                def force_val(b, a, j=j, l=l, f=f, sgn_y=sgn_y):
                    ga, gb = Gs[iu[a]], Gs[iu[b]]
                    u2 = gb[:, j] * Eu(ga, gb, j, -1) - nb_u[iu[b]] * Eu(ga, gb, j, 1)
                    ymul = bfac[iy[a]] * (1.0 if sgn_y > 0 else By[iy[b], l])
                    return -(f * k / (d - 1)) * ymul * u2

                emit(*partners(allb, tgt, 1 << j), force_val)
    A = sps.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(N, N))
    mass = np.where(iy == 0, mom.u(Gu[iu]), 0.0)
    return A, mass, mom


def sparse_solve(St, S, kappa2, n_x, n_u, k2, symmetry, R, n_total=None, return_info=False):
    """``E[x x^T]`` of the Galerkin solve (same system as the dense ``_solve``), sparse assembly + SuperLU."""
    d = St.shape[0]
    W = np.linalg.cholesky(R)
    Winv = np.linalg.inv(W)
    F = np.linalg.solve(St, W)
    By, Gu, iy, iu = galerkin_basis(d, n_x, n_u, symmetry, n_total)
    A, mass, mom = sparse_assembly(Winv, F, S, k2, kappa2, By, Gu, iy, iu, n_x)
    N = iy.size
    A = A.tolil()
    A[0, :] = mass  # the constant test function's equation (0 = 0) -> normalisation
    A = A.tocsr()
    scale = np.sqrt(_fact(By)[iy] * mom.u(2 * Gu[iu]))  # norms of the basis functions
    As = sps.diags(1.0 / scale) @ A @ sps.diags(scale)
    rhs = np.zeros(N)
    rhs[0] = 1.0 / scale[0]
    c = spla.spsolve(As.tocsc(), rhs) * scale
    Eu0 = mom.u(Gu[iu])
    Eyy = np.zeros((d, d))
    k2f = float(k2)
    zero_c = float(c[iy == 0] @ Eu0[iy == 0])
    for i in range(d):
        for j in range(i, d):
            tgt = np.zeros(d, dtype=np.int64)
            tgt[i] += 1
            tgt[j] += 1
            sel = np.all(By[iy] == tgt, axis=1)
            v = float(c[sel] @ Eu0[sel])
            Eyy[i, j] = Eyy[j, i] = k2f * (2 * v + zero_c if i == j else v)
    C = W @ Eyy @ W.T
    if return_info:
        return C, {"n_basis": N, "nnz": int(A.nnz)}
    return C
