"""Part (c) of validation/crosscheck_blackjax.py: SGLD and SGHMC vs ``blackjax.sgmcmc.diffusions``.

Target N(0, diag(s^2)), gradient estimate ``g + sigma_g * xi`` (additive Gaussian noise).

Step-size conventions (checked in blackjax/sgmcmc/diffusions.py, BlackJAX 1.7.1):

* SGLD: BlackJAX ``x' = x + h g + sqrt(2 T h) n`` is exactly ours (``h = step_size``, T = 1).
* SGHMC: BlackJAX ``x' = x + h p; p' = (1 - a h) p + h g(x) + sqrt(2 a h) n`` (beta = 0; position
  moved with the OLD momentum, explicit Euler); ours (Chen et al. 2014) ``v' = (1 - alpha) v + eta g
  + sqrt(2 alpha eta) z; x' = x + v'`` (semi-implicit).  With ``v = h p``: ``eta = h^2``,
  ``alpha = a h``; the two updates are then different discretisations of the same SDE, so their
  stationary variances differ at O(h).  Each is compared with its OWN exact stationary variance
  (discrete Lyapunov equation of the linear recursion), and the two with each other.

Moments are E[x_i^2] with batch-means standard errors (smile_ref.diagnostics.batch_means_se);
z-scores |est - exact| / se.  A |z| > 4 on any of the coordinates flags a disagreement.
"""
import math

import numpy as np


def _lyap_var(A, Q):
    from scipy.linalg import solve_discrete_lyapunov

    return solve_discrete_lyapunov(A, Q)[0, 0]


def sgmcmc(d=4, n_chains=16, burn_in=2000, n_steps=20000, h=0.05, sigma_g=1.0, eta=0.01, alpha=0.1, seed=3):
    import jax
    import jax.numpy as jnp
    from blackjax.sgmcmc import diffusions

    from smile_ref.diagnostics.ess import batch_means_se
    from smile_ref.gradients.noise import AdditiveNoise
    from smile_ref.run.driver import run_chains
    from smile_ref.targets.gaussian import Gaussian

    s = np.linspace(1.0, 2.5, d)
    tgt = Gaussian(np.zeros(d), np.diag(s**2))
    sj = jnp.asarray(s)
    grad = lambda x, k: -x / sj**2 + sigma_g * jax.random.normal(k, x.shape)
    rows = []
    hb = math.sqrt(eta)
    ab = alpha / hb
    for name, step, opts in (("sgld", h, {}), ("sghmc", eta, {"alpha": alpha})):
        r = run_chains(name, tgt, gradient=AdditiveNoise(tgt, sigma_g**2), n_chains=n_chains, n_steps=n_steps,
                       burn_in=burn_in, step_size=step, seed=seed, progress=False, **opts)
        if name == "sgld":
            lang = diffusions.overdamped_langevin()

            def one(key):
                def body(x, k):
                    k1, k2 = jax.random.split(k)
                    x = lang(k1, x, grad(x, k2), h)
                    return x, x

                _, xs = jax.lax.scan(body, jnp.zeros(d), jax.random.split(key, burn_in + n_steps))
                return xs[burn_in:]
        else:
            dyn = diffusions.sghmc(ab, 0.0)

            def one(key):
                def body(c, k):
                    k1, k2 = jax.random.split(k)
                    x, p = dyn(k1, c[0], c[1], grad(c[0], k2), hb)
                    return (x, p), x

                _, xs = jax.lax.scan(body, (jnp.zeros(d), jnp.zeros(d)), jax.random.split(key, burn_in + n_steps))
                return xs[burn_in:]

        xb = np.asarray(jax.jit(jax.vmap(one))(jax.random.split(jax.random.key(seed), n_chains)))
        mo, so = (np.asarray(a) for a in batch_means_se(r.samples**2))
        mb, sb = (np.asarray(a) for a in batch_means_se(xb**2))
        for i in range(d):
            w = 1.0 / s[i] ** 2
            if name == "sgld":
                a_ = 1 - h * w
                ex_o = ex_b = (h * h * sigma_g**2 + 2 * h) / (1 - a_ * a_)
            else:
                q = eta * eta * sigma_g**2 + 2 * alpha * eta
                ex_o = _lyap_var(np.array([[1 - eta * w, 1 - alpha], [-eta * w, 1 - alpha]]), q * np.ones((2, 2)))
                qb = hb * hb * sigma_g**2 + 2 * ab * hb
                ex_b = _lyap_var(np.array([[1.0, hb], [-hb * w, 1 - ab * hb]]), np.diag([0.0, qb]))
            rows.append({"sampler": name, "coord": i, "target_var": float(s[i] ** 2),
                         "ours": float(mo[i]), "ours_se": float(so[i]), "ours_exact": float(ex_o),
                         "bj": float(mb[i]), "bj_se": float(sb[i]), "bj_exact": float(ex_b),
                         "z_ours": float((mo[i] - ex_o) / so[i]), "z_bj": float((mb[i] - ex_b) / sb[i]),
                         "z_ours_vs_bj": float((mo[i] - mb[i]) / math.hypot(so[i], sb[i]))})
    return rows
