"""Command line: is the deterministic isokinetic flow on an anisotropic Gaussian ergodic?

The weak-noise limit ``Q -> 0`` of SG-MCLMC's stationary law is decided by the noise-free flow
(docs ``sg-mclmc-weak-noise-limit.md``).  Write the stationary density as ``μ(1 + h)`` with
``μ = N(0, Σ_t) × Uniform(S^{d-1})`` and ``f = d uᵀΣu/tr Σ - 1`` (the uniform law's defect under
anisotropic noise, ``L*_noise 1 ∝ f``; bias page section 1).  If the flow is mixing for ``μ``, ``h``
vanishes with ``Q``.  If it has invariant sets ``A`` of positive measure on which the orbit average
``⟨f⟩_A`` is not zero, the averaging principle gives an ``O(1)`` limit ``h_0``, a function of the invariants.

This script integrates the flow with smile_ref's own integrator (McLachlan, the closed-form ESH velocity
update, exact gradient ``-Σ_t⁻¹ x``, no refresh) from ``n`` points drawn from ``μ`` and measures, per
trajectory:

* the finite-time Lyapunov exponent ``Λ_T`` (a companion trajectory at distance ``1e-8`` in ``(x, u)``,
  renormalised every time unit);
* window averages of ``f`` and of ``x_i²/Σ_t,ii`` (windows of ``window`` time units).

Summaries: the fraction of trajectories with ``Λ_T < lyap_regular`` (regular orbits: on a torus ``Λ_T``
falls like ``log T/T``); for regular and chaotic trajectories separately, the variance across
trajectories of the orbit average of ``f`` and the mean variance of the window averages within a
trajectory; ``R = Var(⟨f⟩_T)/Var(⟨f⟩_{T/8})`` (a flow whose correlations decay integrably gives
``R -> 1/8``, one with invariant sets ``R -> 1``); and ``cov(⟨x_i²⟩_T, ⟨f⟩_T)``, which for large ``T`` is the
plateau ``lim_t E_μ[x_i²(t) f(0)]`` of the linear-response correlator (ergodic decomposition).  Standard
errors by the bootstrap over trajectories.

Examples::

    python -m validation.isokinetic_ergodicity --out docs/results/isokinetic-ergodicity
    python -m validation.isokinetic_ergodicity --dims 3 --n 500 --T 400 --out /tmp/erg

Cost (2000 trajectories, T = 1600, one core): 3.5-5 min per dimension, about 16 min for d = 3, 4, 6, 10.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time

import numpy as np

from smile_ref.integrators import MCLACHLAN
from smile_ref.integrators.isokinetic import esh_velocity_update, position_update
from smile_ref.integrators.refresh import partial_refresh
from smile_ref.io import atomic_write_json, atomic_write_text

__all__ = ["case", "integrate", "summarise", "variance_ratio"]

LYAP_REGULAR = 0.01  # Λ_T below this at T = 1600 (log T/T ≈ 0.005) counts as regular
SEED = 20261203


def case(d):
    """``(Σ_t, Σ)`` with the regime map's shape: ``Σ_t = diag(linspace(0.5, 1.5, d))``, ``Σ ∝ geomspace(1, 8, d)``.

    Only the shape of ``Σ`` enters ``f``; its size is irrelevant for the noise-free flow.
    """
    st = np.linspace(0.5, 1.5, d)
    sig = np.geomspace(1.0, 8.0, d)
    return np.diag(st), np.diag(sig / sig.sum())


def _defect(u, sig):
    return u.shape[1] * ((u * u) @ sig) / sig.sum() - 1.0


def integrate(target_var, noise_var, n, T, eps=0.02, window=100.0, seed=SEED, L=math.inf, lyapunov=True,
              progress=False):
    """Integrate the isokinetic flow from ``n`` draws of ``μ`` (module docstring).

    Parameters
    ----------
    target_var, noise_var : (d,) arrays
        Diagonals of ``Σ_t`` and ``Σ`` (aligned case).
    n : int
        Trajectories.
    T, eps, window : float
        Time span, step size and window length (``window`` a multiple of ``eps``, ``T`` of ``window``).
    L : float
        Partial-refresh length (``inf``: the deterministic flow; finite: the positive control, a flow made
        ergodic by isotropic refresh).
    lyapunov : bool
        Also follow a companion trajectory for ``Λ_T``.

    Returns
    -------
    dict
        ``lyap`` (n,) or None; ``f_win`` (n_windows, n); ``x2_win`` (n_windows, n, d) (``x_i²/Σ_t,ii``).
    """
    st = np.asarray(target_var, float)
    sig = np.asarray(noise_var, float)
    d = st.size
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)) * np.sqrt(st)
    u = rng.standard_normal((n, d))
    u /= np.linalg.norm(u, axis=1)[:, None]
    m = 2 * n if lyapunov else n
    if lyapunov:
        x = np.concatenate([x, x + 1e-8 * rng.standard_normal((n, d))])
        u = np.concatenate([u, u])
    prec = 1.0 / st
    b = MCLACHLAN.coefficients
    per_unit = int(round(1.0 / eps))
    per_win = int(round(window / eps))
    n_steps = int(round(T / eps))
    if n_steps % per_win:
        raise ValueError(f"T must be a multiple of window, got T={T}, window={window}")
    log_growth = np.zeros(n)

    def dist():
        return np.sqrt(((x[:n] - x[n:]) ** 2).sum(1) + ((u[:n] - u[n:]) ** 2).sum(1))

    d0 = dist() if lyapunov else None
    acc_f = np.zeros(n)
    acc_x = np.zeros((n, d))
    f_win, x_win = [], []
    g = -prec * x
    t0 = time.time()
    for k in range(1, n_steps + 1):
        if L != math.inf:
            u = partial_refresh(u, 0.5 * eps, L, rng.standard_normal((m, d)))
        for j, c in enumerate(b):
            if j % 2 == 0:
                u, _ = esh_velocity_update(u, g, c * eps)
            else:
                x = position_update(x, u, c * eps)
                g = -prec * x
        if L != math.inf:
            u = partial_refresh(u, 0.5 * eps, L, rng.standard_normal((m, d)))
        acc_f += _defect(u[:n], sig)
        acc_x += x[:n] ** 2 * prec
        if lyapunov and k % per_unit == 0:
            d1 = dist()
            log_growth += np.log(d1 / d0)
            s = (d0 / d1)[:, None]
            x[n:] = x[:n] + (x[n:] - x[:n]) * s
            u[n:] = u[:n] + (u[n:] - u[:n]) * s
            u[n:] /= np.linalg.norm(u[n:], axis=1)[:, None]
            g = -prec * x
            d0 = dist()
        if k % per_win == 0:
            f_win.append(acc_f / per_win)
            x_win.append(acc_x / per_win)
            acc_f = np.zeros(n)
            acc_x = np.zeros((n, d))
            if progress:
                print(f"  d={d} t={k * eps:.0f}/{T:.0f} ({time.time() - t0:.0f} s)", file=sys.stderr, flush=True)
    return {"lyap": log_growth / T if lyapunov else None, "f_win": np.array(f_win), "x2_win": np.array(x_win)}


def variance_ratio(f_win, n_short, rng, n_boot=400):
    """``R = Var(⟨f⟩_T)/Var(⟨f⟩_{T_s})`` over trajectories (``T_s`` = the first ``n_short`` windows) and its
    bootstrap SE."""
    long_ = f_win.mean(0)
    short = f_win[:n_short].mean(0)
    r = long_.var() / short.var()
    n = long_.size
    boot = np.empty(n_boot)
    for i in range(n_boot):
        j = rng.integers(0, n, n)
        boot[i] = long_[j].var() / short[j].var()
    return float(r), float(boot.std(ddof=1))


def summarise(out, rng, n_boot=400):
    """The module docstring's summaries of one :func:`integrate` result (JSON-ready)."""
    f_win, x_win, lyap = out["f_win"], out["x2_win"], out["lyap"]
    n_win, n = f_win.shape
    orbit_f = f_win.mean(0)
    orbit_x = x_win.mean(0)
    within = f_win.var(0, ddof=1)
    res = {"n": int(n), "n_windows": int(n_win)}
    if lyap is not None:
        reg = lyap < LYAP_REGULAR
        p = reg.mean()
        res["lyap_quantiles"] = {str(q): float(v) for q, v in
                                 zip((0.1, 0.25, 0.5, 0.75, 0.9), np.quantile(lyap, [0.1, 0.25, 0.5, 0.75, 0.9]))}
        res["regular_fraction"] = float(p)
        res["regular_fraction_se"] = float(math.sqrt(p * (1 - p) / n))
        for name, mask in (("regular", reg), ("chaotic", ~reg)):
            if mask.sum() > 2:
                res[name] = {"count": int(mask.sum()), "mean_orbit_f": float(orbit_f[mask].mean()),
                             "mean_orbit_f_se": float(orbit_f[mask].std(ddof=1) / math.sqrt(mask.sum())),
                             "across_var_orbit_f": float(orbit_f[mask].var(ddof=1)),
                             "within_var_window_f": float(within[mask].mean())}
    n_short = max(1, n_win // 8)
    r, r_se = variance_ratio(f_win, n_short, rng, n_boot)
    res["variance_ratio"] = {"R": r, "se": r_se, "mixing_value": n_short / n_win}
    boot = np.empty((n_boot, orbit_x.shape[1]))
    cov = np.array([np.cov(orbit_x[:, i], orbit_f)[0, 1] for i in range(orbit_x.shape[1])])
    for b in range(n_boot):
        j = rng.integers(0, n, n)
        boot[b] = [np.cov(orbit_x[j, i], orbit_f[j])[0, 1] for i in range(orbit_x.shape[1])]
    res["plateau_cov_x2_f"] = cov.tolist()
    res["plateau_cov_x2_f_se"] = boot.std(0, ddof=1).tolist()
    res["var_orbit_f"] = float(orbit_f.var(ddof=1))
    return res


def _plot(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dims = sorted(results, key=int)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for d in dims:
        lyap = np.asarray(results[d]["_lyap"])
        axes[0].hist(lyap, bins=np.linspace(0, max(0.12, lyap.max()), 60), histtype="step", density=True,
                     label=f"d = {d}")
    axes[0].axvline(LYAP_REGULAR, color="k", ls=":", lw=1)
    axes[0].set_xlabel("finite-time Lyapunov exponent Λ_T (1/time unit)")
    axes[0].set_ylabel("density over trajectories from μ")
    axes[0].set_title("noise-free isokinetic flow: regular (left of dotted) and chaotic orbits")
    axes[0].legend()
    d0 = dims[0]
    lyap = np.asarray(results[d0]["_lyap"])
    of = np.asarray(results[d0]["_orbit_f"])
    axes[1].scatter(lyap, of, s=3, alpha=0.4)
    axes[1].axhline(0, color="k", lw=0.8)
    axes[1].axvline(LYAP_REGULAR, color="k", ls=":", lw=1)
    axes[1].set_xlabel("Λ_T")
    axes[1].set_ylabel("orbit average of f = d uᵀΣu/trΣ − 1")
    axes[1].set_title(f"d = {d0}: the defect does not average out on an orbit")
    fig.tight_layout()
    tmp = path + ".tmp.png"
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, path)


def _table(results, T):
    rows = ["| d | regular fraction (Λ_T < %.2f) | ⟨f⟩ on regular orbits | ⟨f⟩ on chaotic orbits | Var of orbit ⟨f⟩ "
            "regular / chaotic | mean within-orbit Var of window ⟨f⟩, regular / chaotic | R (mixing: %s) | "
            "plateau cov(⟨x_i²/Σ_t,ii⟩, ⟨f⟩) |" % (LYAP_REGULAR, "1/8"),
            "|---|---|---|---|---|---|---|---|"]
    for d in sorted(results, key=int):
        r = results[d]
        reg, cha = r.get("regular", {}), r.get("chaotic", {})

        def pm(block, key):
            return f"{block[key]:+.4f} ± {block[key + '_se']:.4f}" if block else "—"

        cov = ", ".join(f"{c:+.3f}" for c in r["plateau_cov_x2_f"])
        cse = max(r["plateau_cov_x2_f_se"])
        rows.append(
            f"| {d} | {r['regular_fraction']:.3f} ± {r['regular_fraction_se']:.3f} | {pm(reg, 'mean_orbit_f')} | "
            f"{pm(cha, 'mean_orbit_f')} | {reg.get('across_var_orbit_f', float('nan')):.4f} / "
            f"{cha.get('across_var_orbit_f', float('nan')):.4f} | {reg.get('within_var_window_f', float('nan')):.4f} / "
            f"{cha.get('within_var_window_f', float('nan')):.4f} | {r['variance_ratio']['R']:.3f} ± "
            f"{r['variance_ratio']['se']:.3f} | {cov} (SE ≤ {cse:.3f}) |")
    rows.append("")
    rows.append(f"T = {T:g} time units, step 0.02 (McLachlan), windows of 100 time units; ± one bootstrap or "
                "binomial SE.  Written by `python -m validation.isokinetic_ergodicity`.")
    return "\n".join(rows) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--dims", type=int, nargs="+", default=[3, 4, 6, 10])
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--T", type=float, default=1600.0)
    ap.add_argument("--eps", type=float, default=0.02)
    args = ap.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    rng = np.random.default_rng(SEED)
    results = {}
    for d in args.dims:
        st, sig = case(d)
        out = integrate(np.diag(st), np.diag(sig), args.n, args.T, args.eps, progress=True)
        res = summarise(out, rng)
        res["_lyap"] = out["lyap"].tolist()
        res["_orbit_f"] = out["f_win"].mean(0).tolist()
        results[str(d)] = res
        print(f"d={d}: regular {res['regular_fraction']:.3f}, R {res['variance_ratio']['R']:.3f}", flush=True)
    _plot(results, os.path.join(args.out, "lyapunov.png"))
    slim = {d: {k: v for k, v in r.items() if not k.startswith("_")} for d, r in results.items()}
    atomic_write_json(os.path.join(args.out, "ergodicity.json"),
                      {"T": args.T, "eps": args.eps, "n": args.n, "lyap_regular": LYAP_REGULAR, "dims": slim})
    atomic_write_text(os.path.join(args.out, "ergodicity.md"), _table(slim, args.T))
    return 0


if __name__ == "__main__":
    sys.exit(main())
