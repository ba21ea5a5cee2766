"""Cross-check smile_ref against BlackJAX: isokinetic integrators and tuned MCLMC.

Run with an environment that has ``jax`` and ``blackjax`` (the ``crosscheck`` extra)::

    python -m validation.crosscheck_blackjax --out validation/results/blackjax

Without jax/blackjax it prints a message and exits with code 0 (skipped).

Parts
-----
(a) deterministic: from the same ``(x, u, eps)`` and no momentum refresh, ``n`` steps of our
    ``isokinetic_step`` (leapfrog, McLachlan) vs BlackJAX ``isokinetic_velocity_verlet`` /
    ``isokinetic_mclachlan`` (float64, ``jax_enable_x64``), after 1 and after ``--steps`` steps;
    max |dx|, |du|, |dK| (summed kinetic-energy change) per target (Gaussian, funnel, logistic
    regression; the JAX log-densities are written independently of ours, so gradients are
    cross-checked too).  For chaotic targets rounding differences grow; we report the deviation
    after 1 step, after all steps, and the mean growth factor per step ``(dev_n/dev_1)^(1/(n-1))``.
(b) stochastic: BlackJAX ``mclmc_find_L_and_step_size`` (its fractions 0.1/0.1/0.1 of the tuning
    steps, ``num_steps = burn_in / 0.3`` so that both spend ``burn_in`` warm-up gradients,
    ``diagonal_preconditioning=False``) + ``blackjax.mclmc`` vs ``run_chains("mclmc")``
    with our tuner (warm-up split 0.8/0.1/0.1 of ``burn_in``).  Both report tuned eps and L,
    the relative second-moment error averaged over coordinates, and ESS (smile_ref.diagnostics.ess,
    bulk, minimum over coordinates) per gradient evaluation, gradient evaluations counting the
    sampling phase only.
(c) SGLD and SGHMC vs ``blackjax.sgmcmc.diffusions`` on a Gaussian with additive gradient noise:
    see ``validation/_crosscheck_sgmcmc.py`` (step-size mapping and exact stationary variances).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

import numpy as np


def _targets(d):
    """(name, smile_ref target, jax logdensity of one position, second moment)."""
    import jax.numpy as jnp

    from smile_ref.targets.funnel import Funnel
    from smile_ref.targets.gaussian import Gaussian
    from smile_ref.targets.glm import LogisticRegression

    s = np.linspace(1.0, 3.0, d)
    gauss = Gaussian(np.zeros(d), np.diag(s**2))
    fun = Funnel(dim=d, theta_scale=3.0)
    rng = np.random.default_rng(7)
    X = rng.normal(size=(200, d)) / math.sqrt(d)
    w = rng.normal(size=d)
    y = (rng.uniform(size=200) < 1 / (1 + np.exp(-X @ w))).astype(float)
    logreg = LogisticRegression(X, y, prior_scale=1.0)
    Xj, yj = jnp.asarray(X), jnp.asarray(y)

    def lg(x):
        return -0.5 * jnp.sum(x**2 / s**2)

    def lf(x):
        t, r = x[0], x[1:]
        return -0.5 * t**2 / 9.0 - 0.5 * jnp.sum(r**2) * jnp.exp(-t) - 0.5 * (d - 1) * t

    def ll(x):
        z = Xj @ x
        return jnp.sum(yj * z - jnp.logaddexp(0.0, z)) - 0.5 * jnp.sum(x**2)

    return [("gaussian", gauss, lg), ("funnel", fun, lf), ("logistic", logreg, ll)]


def deterministic(d=7, n_chains=4, n_steps=1000, eps=0.1, seed=0):
    import jax
    import jax.numpy as jnp
    import blackjax.mcmc.integrators as I

    from smile_ref.integrators import isokinetic as iso

    rng = np.random.default_rng(seed)
    rows = []
    for tname, tgt, f in _targets(d):
        x0 = rng.normal(size=(n_chains, d)) * 0.5
        u0 = rng.normal(size=(n_chains, d))
        u0 /= np.linalg.norm(u0, axis=1, keepdims=True)
        for bj, ours in (("velocity_verlet", "leapfrog"), ("mclachlan", "mclachlan")):
            integ = getattr(I, "isokinetic_" + bj)(f)

            def run(x, u):
                lp, g = jax.value_and_grad(f)(x)

                def body(st, _):
                    new, dk = integ(st, eps)
                    return new, (new.position, new.momentum, dk)

                _, (xs, us, ks) = jax.lax.scan(body, I.IntegratorState(x, u, lp, g), None, length=n_steps)
                return xs, us, jnp.cumsum(ks)

            bx, bu, bk = (np.asarray(a) for a in jax.jit(jax.vmap(run))(jnp.asarray(x0), jnp.asarray(u0)))
            lp, g = tgt.logdensity_and_grad(x0)
            st = iso.IntegratorState(x0, u0, lp, g)
            coef = iso.get_integrator(ours)
            K = np.zeros(n_chains)
            dev = []
            for t in range(n_steps):
                st, dk = iso.isokinetic_step(st, eps, tgt.logdensity_and_grad, coef)
                K = K + dk
                dev.append(max(np.abs(st.position - bx[:, t]).max(), np.abs(st.momentum - bu[:, t]).max(),
                               np.abs(K - bk[:, t]).max()))
            d1, dn = dev[0], dev[-1]
            growth = (max(dn, 1e-300) / max(d1, 1e-300)) ** (1.0 / (n_steps - 1)) if n_steps > 1 else 1.0
            rows.append({"target": tname, "integrator": ours, "eps": eps, "n_steps": n_steps,
                         "max_dev_step1": d1, "max_dev_final": dn, "max_dev_any": max(dev),
                         "growth_per_step": growth})
    return rows


def stochastic(d=7, n_chains=8, burn_in=2000, n_steps=4000, seed=1):
    import jax
    import jax.numpy as jnp
    import blackjax
    import blackjax.mcmc.integrators as I

    from smile_ref.diagnostics.ess import ess
    from smile_ref.run.driver import run_chains

    rows = []
    for tname, tgt, f in _targets(d):
        # reference second moments: analytic (Gaussian, funnel); logistic regression: a long run of
        # our own MCLMC (16 x 20000 steps) -- NOT independent of ours, so that row compares the two
        # samplers with each other rather than with the truth
        if getattr(tgt, "second_moment", None) is not None:
            m2 = np.asarray(tgt.second_moment)
        else:
            ref = run_chains("mclmc", tgt, n_chains=16, n_steps=20000, burn_in=4000, seed=99, progress=False)
            m2 = (ref.samples**2).mean(axis=(0, 1))
        r = run_chains("mclmc", tgt, n_chains=n_chains, n_steps=n_steps, burn_in=burn_in, seed=seed,
                       progress=False)
        eps_o = float(np.mean(r.info["step_size"][burn_in]))
        L_o = float(np.mean(r.info["L"][burn_in]))
        e_o = float(np.min(np.asarray(ess(r.samples)))) / (2 * n_chains * n_steps)  # McLachlan: 2 grads/step
        err_o = float(np.mean(np.abs((r.samples**2).mean(axis=(0, 1)) / m2 - 1)))

        def one(key):
            k0, k1, k2 = jax.random.split(key, 3)
            st = blackjax.mcmc.mclmc.init(jax.random.normal(k0, (d,)), f, k1)
            kern = blackjax.mcmc.mclmc.build_kernel(integrator=I.isokinetic_mclachlan)
            # BlackJAX tunes for (0.1 + 0.1 + 0.1) * num_steps steps: same warm-up budget as ours
            st, p, _ = blackjax.mclmc_find_L_and_step_size(kern, int(round(burn_in / 0.3)), st, k2,
                                                           logdensity_fn=f, diagonal_preconditioning=False)
            alg = blackjax.mclmc(f, L=p.L, step_size=p.step_size)

            def body(s, k):
                s, _ = alg.step(k, s)
                return s, s.position

            _, xs = jax.lax.scan(body, st, jax.random.split(k2, n_steps))
            return xs, p.step_size, p.L

        xs, pe, pL = jax.jit(jax.vmap(one))(jax.random.split(jax.random.key(seed), n_chains))
        xs = np.asarray(xs)
        e_b = float(np.min(np.asarray(ess(xs)))) / (2 * n_chains * n_steps)
        err_b = float(np.mean(np.abs((xs**2).mean(axis=(0, 1)) / m2 - 1)))
        rows.append({"target": tname, "ours_eps": eps_o, "ours_L": L_o, "bj_eps": float(np.mean(pe)),
                     "bj_L": float(np.mean(pL)), "ours_m2_relerr": err_o, "bj_m2_relerr": err_b,
                     "ours_ess_per_grad": e_o, "bj_ess_per_grad": e_b})
    return rows


def _md(rows):
    keys = list(rows[0])
    fmt = lambda v: f"{v:.3g}" if isinstance(v, float) else str(v)
    return "\n".join(["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
                     + ["| " + " | ".join(fmt(r[k]) for k in keys) + " |" for r in rows])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=None)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--burn-in", type=int, default=2000)
    ap.add_argument("--sample-steps", type=int, default=4000)
    ap.add_argument("--chains", type=int, default=8)
    ap.add_argument("--skip-stochastic", action="store_true")
    a = ap.parse_args(argv)
    try:
        import jax
        import blackjax
    except ImportError as e:
        print(f"SKIPPED: jax/blackjax not importable ({e}); install the 'crosscheck' extra.")
        return 0
    jax.config.update("jax_enable_x64", True)
    t0 = time.time()
    res = {"blackjax": blackjax.__version__, "jax": jax.__version__, "deterministic": deterministic(n_steps=a.steps)}
    print(_md(res["deterministic"]))
    if not a.skip_stochastic:
        res["stochastic"] = stochastic(n_chains=a.chains, burn_in=a.burn_in, n_steps=a.sample_steps)
        print(_md(res["stochastic"]))
        from validation._crosscheck_sgmcmc import sgmcmc

        res["sgmcmc"] = sgmcmc()
        print(_md(res["sgmcmc"]))
    res["runtime_s"] = time.time() - t0
    print(f"runtime {res['runtime_s']:.1f} s")
    if a.out:
        os.makedirs(a.out, exist_ok=True)
        with open(os.path.join(a.out, "blackjax_crosscheck.json"), "w") as fh:
            json.dump(res, fh, indent=1)
        with open(os.path.join(a.out, "blackjax_crosscheck.md"), "w") as fh:
            fh.write("\n\n".join(_md(res[k]) for k in ("deterministic", "stochastic", "sgmcmc") if k in res) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
