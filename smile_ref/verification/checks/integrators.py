"""Integrator checks: the closed-form ESH update is exact; schemes have their declared order."""
from __future__ import annotations

import numpy as np
from scipy.integrate import solve_ivp

from ...backend import get_backend, to_numpy
from ...integrators import IntegratorState, esh_velocity_update, get_integrator, isokinetic_step
from ..registry import check, exact
from ._common import have_matplotlib, savefig


@check("esh_update_exact", group="integrators", seeds=(0,))
def esh_update_exact(outdir, quick):
    """Closed-form ESH velocity update vs a numerical ODE solve of du/dt = P(u) g/(d-1); SymPy residuals."""
    from smile_ref.theory import esh

    rs = np.random.default_rng(0)
    worst_u = worst_k = 0.0
    b = get_backend()
    for _ in range(5 if quick else 20):
        d = int(rs.integers(2, 12))
        u = rs.standard_normal(d)
        u /= np.linalg.norm(u)
        g = rs.standard_normal(d) * 10 ** rs.uniform(-2, 1)
        tau = float(rs.uniform(0.01, 2.0))

        def rhs(_, y):
            uu = y[:d]
            return np.concatenate([(g - uu * (uu @ g)) / (d - 1), [uu @ g]])

        sol = solve_ivp(rhs, (0, tau), np.concatenate([u, [0.0]]), rtol=1e-12, atol=1e-14, method="DOP853")
        u1, dk = esh_velocity_update(b.asarray(u[None]), b.asarray(g[None]), tau)
        worst_u = max(worst_u, float(np.max(np.abs(to_numpy(u1)[0] - sol.y[:d, -1]))))
        worst_k = max(worst_k, float(abs(to_numpy(dk)[0] - sol.y[d, -1])))
    res = esh.all_residuals()
    n_nonzero = sum(1 for v in res.values() if v != 0)
    return [
        exact("esh_update_exact", "max |u' - u_ODE|", 0.0, worst_u, 1e-9),
        exact("esh_update_exact", "max |dK - int u.g dt|", 0.0, worst_k, 1e-9),
        exact("esh_update_exact", "SymPy residuals not simplifying to 0", 0.0, float(n_nonzero), 0.0,
              notes=f"{len(res)} identities: ODE, unit norm, zeta form, kinetic change = work"),
    ]


def _energy_error_at_time(name, eps, T, x0, u0, prec):
    b = get_backend()
    coeff = get_integrator(name)

    def f(x):
        lp = -0.5 * np.sum(x * x * prec, axis=1)
        return lp, -x * prec

    x = b.asarray(x0)
    lp, g = f(x)
    s = IntegratorState(x, b.asarray(u0), lp, g)
    total_k = np.zeros(x0.shape[0])
    for _ in range(int(round(T / eps))):
        s, dk = isokinetic_step(s, eps, f, coeff)
        total_k += to_numpy(dk)
    return np.mean(np.abs(total_k - (to_numpy(s.logdensity) - lp)))


@check("integrator_order", group="integrators", seeds=(1,))
def integrator_order(outdir, quick):
    """Energy error after a fixed time T scales like eps^p for a scheme of order p (slope of log |dE|)."""
    rs = np.random.default_rng(1)
    d, n = 20, 16
    prec = 1.0 / np.logspace(-1, 1, d)
    x0 = rs.standard_normal((n, d)) / np.sqrt(prec)
    u0 = rs.standard_normal((n, d))
    u0 /= np.linalg.norm(u0, axis=1, keepdims=True)
    rows, curves, slopes = [], {}, {}
    eps_grid = np.array([0.05, 0.035, 0.025, 0.0175]) if quick else np.geomspace(0.08, 0.01, 7)
    for name in ("leapfrog", "mclachlan", "yoshida", "omelyan"):
        p = get_integrator(name).order
        errs = np.array([_energy_error_at_time(name, e, 2.0, x0, u0, prec) for e in eps_grid])
        slope = float(np.polyfit(np.log(eps_grid), np.log(errs), 1)[0])
        curves[name] = errs
        slopes[name] = slope
        rows.append(exact("integrator_order", f"{name}: slope of log|dE(T)| vs log eps", float(p), slope, 0.3,
                          notes="deterministic; tolerance 0.3 on the fitted order" if name == "leapfrog" else ""))
    if have_matplotlib():
        import matplotlib.pyplot as plt

        with plt.rc_context({"font.size": 11}):
            fig, ax = plt.subplots(figsize=(6.5, 4.5))
            for name, errs in curves.items():
                p = get_integrator(name).order
                ax.loglog(eps_grid, errs, "o-", label=f"{name} (order {p}, fitted slope {slopes[name]:.2f})")
            ax.set_xlabel("step size ε (time units; fixed total time T = 2)")
            ax.set_ylabel("mean |energy error| at T = 2 (nats)")
            ax.set_title("Isokinetic integrators: energy error vs step size\n(Gaussian, d = 20, 16 chains)")
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=9)
            rows[0].plot = savefig(fig, outdir, "integrator_order.png")
    return rows
