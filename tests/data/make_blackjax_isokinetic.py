"""Generate tests/data/blackjax_isokinetic.npz: BlackJAX outputs of one isokinetic step.

Run with an environment that has ``jax`` and ``blackjax`` (the ``crosscheck`` extra):

    python tests/data/make_blackjax_isokinetic.py

For each BlackJAX scheme (``isokinetic_{velocity_verlet, mclachlan, yoshida, omelyan}``), two
targets (an anisotropic Gaussian and Neal's funnel, d = 7) and with/without the diagonal
preconditioner (``inverse_mass_matrix = sqrt_diag**2``), it records one deterministic step of size
0.37 from fixed (x0, u0), and one ``with_isokinetic_maruyama`` step (L = 1.3) together with the
normal draws z1, z2 it used (re-drawn from the same keys exactly as
``partially_refresh_momentum`` does).  ``tests/test_integrators.py::test_matches_blackjax``
compares ``smile_ref`` against this file.
"""
import jax
import numpy as np

jax.config.update("jax_enable_x64", True)
import blackjax  # noqa: E402
import blackjax.mcmc.integrators as I  # noqa: E402
import jax.numpy as jnp  # noqa: E402

EPS, L = 0.37, 1.3
rng = np.random.default_rng(0)
n, d = 6, 7
s = np.linspace(1, 2, d)


def gauss(x):
    return -0.5 * jnp.sum(x**2 / s**2)


def funnel(x):
    v, y = x[0], x[1:]
    return -0.5 * v**2 / 9 - 0.5 * jnp.sum(y**2) * jnp.exp(-v) - 0.5 * (d - 1) * v


x0 = rng.normal(size=(n, d))
x0[:, 0] = np.clip(x0[:, 0], -1, 1)
u0 = rng.normal(size=(n, d))
u0 /= np.linalg.norm(u0, axis=1, keepdims=True)
sq = np.exp(0.3 * rng.normal(size=d))
out = {"x0": x0, "u0": u0, "sqrt_diag": sq, "step_size": np.array(EPS), "L": np.array(L),
       "blackjax_version": np.array(blackjax.__version__), "jax_version": np.array(jax.__version__)}
z1 = np.empty((n, d))
z2 = np.empty((n, d))
keys = jax.random.split(jax.random.key(42), n)
for i in range(n):
    k1, k2 = jax.random.split(keys[i])
    z1[i] = np.asarray(jax.random.normal(k1, shape=(d,), dtype=jnp.float64))
    z2[i] = np.asarray(jax.random.normal(k2, shape=(d,), dtype=jnp.float64))
out["z1"], out["z2"] = z1, z2
for iname in ["velocity_verlet", "mclachlan", "yoshida", "omelyan"]:
    for tname, f in [("gauss", gauss), ("funnel", funnel)]:
        for pre in (0, 1):
            integ = getattr(I, "isokinetic_" + iname)(f, inverse_mass_matrix=sq**2 if pre else 1.0)
            maru = I.with_isokinetic_maruyama(integ)
            rec = {k: [] for k in ("x", "u", "k", "lp", "mx", "mu", "mk")}
            for i in range(n):
                lp, g = jax.value_and_grad(f)(jnp.asarray(x0[i]))
                st = I.IntegratorState(jnp.asarray(x0[i]), jnp.asarray(u0[i]), lp, g)
                new, dK = integ(st, EPS)
                rec["x"].append(np.asarray(new.position))
                rec["u"].append(np.asarray(new.momentum))
                rec["k"].append(float(dK))
                rec["lp"].append(float(new.logdensity))
                new, dK = maru(st, EPS, L, keys[i])
                rec["mx"].append(np.asarray(new.position))
                rec["mu"].append(np.asarray(new.momentum))
                rec["mk"].append(float(dK))
            for k, v in rec.items():
                out[f"{iname}_{tname}_{pre}_{k}"] = np.array(v)
np.savez_compressed("tests/data/blackjax_isokinetic.npz", **out)
print("wrote tests/data/blackjax_isokinetic.npz with blackjax", blackjax.__version__)
