"""Bit-for-bit comparison of ``run_chains`` outputs between two checkouts (hot-path refactoring check).

Run by hand (not a test), from the root of each checkout::

    OPENBLAS_NUM_THREADS=1 PYTHONPATH=. python benchmarks/bitwise_check.py --record /tmp/ref.npz   # old tree
    OPENBLAS_NUM_THREADS=1 PYTHONPATH=. python benchmarks/bitwise_check.py --compare /tmp/ref.npz  # new tree

``--record`` runs every configuration of :func:`configurations` on NumPy and ``array_api_strict``, in
float64 and float32, and stores the samples, every ``info`` array, ``info_steps`` and the final
integrator state; ``--compare`` reruns them and requires every array to be *exactly* equal (same
dtype, same shape, same bits; NaN equal to NaN at the same place).  The exit status is the number of
configurations that differ.  Configurations cover SMILE-naive, the default and the authors' tuners,
exact and stochastic gradients, large steps with rejections, pSMILE (diagonal and dense), both
authors' presets, MCLMC tuned / fixed / with diagonal preconditioning / fixed ``sqrt_diag``, other
integrators, Neal's funnel, whose gradients become non-finite, under both
``nonfinite_gradient`` modes, and ``esh_form="lean"`` on SMILE, pSMILE and MCLMC (including the
rows that fall back to the robust form).
"""
from __future__ import annotations

import argparse
import sys
import time
import warnings

import numpy as np

import smile_ref
from smile_ref import gradients, targets

BACKENDS = ("numpy", "array_api_strict")
DTYPES = ("float64", "float32")


def _logreg():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((60, 4))
    y = (X @ np.array([1.0, -1.0, 0.5, 0.0]) + rng.standard_normal(60) > 0).astype(float)
    return targets.LogisticRegression(X, y)


class NonFinite(gradients.GradientEstimator):
    """``base``'s gradient, with ``+inf`` entries where ``x_0 < lo`` and NaN where ``x_0 > hi``."""

    def __init__(self, base, lo=-2.0, hi=3.0):
        self.base, self.target, self.lo, self.hi = base, base.target, lo, hi
        self.stochastic, self.cost = base.stochastic, base.cost

    def init(self, n_chains, rng):
        return self.base.init(n_chains, rng)

    def draw(self, state, rng, x):
        return self.base.draw(state, rng, x)

    def evaluate(self, x, batch):
        from smile_ref.backend import array_namespace

        xp = array_namespace(x)
        lp, g = self.base.evaluate(x, batch)
        g = xp.where((x[:, :1] < self.lo) & (x[:, 1:2] > 0), xp.inf, g)
        g = xp.where(x[:, :1] > self.hi, xp.nan, g)
        return lp, g


def configurations():
    """``name -> (sampler, target, gradient factory, run_chains options)``."""
    g6 = targets.Gaussian.diagonal(np.logspace(-0.5, 0.5, 6))
    g20 = targets.Gaussian.diagonal(np.logspace(-1, 1, 20))
    lr = _logreg()
    funnel = targets.Funnel(dim=5)
    noise = lambda t, s=0.5: (lambda: gradients.AdditiveNoise(t, s))  # noqa: E731
    exact = lambda t: (lambda: gradients.Exact(t))  # noqa: E731
    mb = lambda t, b=10, **k: (lambda: gradients.MiniBatch(t, b, **k))  # noqa: E731
    nonfinite = lambda t, exact=False: (  # noqa: E731
        lambda: NonFinite(gradients.Exact(t) if exact else gradients.AdditiveNoise(t, 0.1)))
    base = {"n_chains": 4, "n_steps": 60, "burn_in": 40, "thinning": 3}
    C = {
        "smile_naive": ("smile", g6, noise(g6), {"tuner": None, "step_size": 0.3}),
        "smile_naive_big_step": ("smile", g6, noise(g6, 3.0), {"tuner": None, "step_size": 4.0,
                                                               "max_energy_error": 2.0}),
        "smile_default": ("smile", g20, noise(g20), {"step_size": 0.1}),
        "smile_exact": ("smile", g20, exact(g20), {"step_size": 0.2}),
        "smile_energy_error": ("smile", g6, noise(g6), {"tuner": "energy_error", "step_size": 0.1}),
        "smile_cross_batch": ("smile", lr, mb(lr), {"tuner": None, "step_size": 0.05,
                                                    "energy_error": "cross_batch"}),
        "smile_minibatch": ("smile", lr, mb(lr), {"step_size": 0.05}),
        "smile_authors": ("smile", lr, mb(lr, scale="floor", schedule="authors"), {"preset": "authors",
                                                                                   "step_size": 0.05}),
        "smile_authors_naive": ("smile", g6, noise(g6), {"preset": "authors", "tuner": None, "step_size": 0.2}),
        "psmile": ("psmile", lr, mb(lr), {"step_size": 0.05}),
        "psmile_naive": ("psmile", g6, noise(g6), {"tuner": None, "step_size": 0.1}),
        "psmile_dense": ("psmile", g6, noise(g6), {"step_size": 0.1, "preconditioner": "dense"}),
        "psmile_authors": ("psmile", lr, mb(lr, scale="floor", schedule="authors"), {"preset": "authors",
                                                                                     "step_size": 0.05}),
        "smile_leapfrog": ("smile", g6, noise(g6), {"tuner": None, "step_size": 0.2, "integrator": "leapfrog"}),
        "smile_omelyan": ("smile", g6, noise(g6), {"tuner": None, "step_size": 0.2, "integrator": "omelyan"}),
        "mclmc_tuned": ("mclmc", g20, exact(g20), {"step_size": 0.5}),
        "mclmc_fixed": ("mclmc", g20, exact(g20), {"tuner": None, "step_size": 3.0, "L": 4.0,
                                                   "max_energy_error": 1.0}),
        "mclmc_diag": ("mclmc", g20, exact(g20), {"step_size": 0.5, "diagonal_preconditioning": True}),
        "mclmc_sqrt_diag": ("mclmc", g20, exact(g20), {"tuner": None, "step_size": 0.5, "L": 3.0,
                                                       "sqrt_diag": np.linspace(0.5, 2.0, 20)}),
        "mclmc_mile": ("mclmc", lr, exact(lr), {"step_size": 0.1, "tuner": "mile"}),
        "funnel_reject": ("smile", funnel, noise(funnel, 0.1), {"tuner": None, "step_size": 1.5}),
        "funnel_zero_and_clip": ("smile", funnel, noise(funnel, 0.1), {"tuner": None, "step_size": 1.5,
                                                                        "nonfinite_gradient": "zero_and_clip"}),
        "funnel_mclmc": ("mclmc", funnel, exact(funnel), {"tuner": None, "step_size": 2.0, "L": 3.0}),
        "funnel_psmile": ("psmile", funnel, noise(funnel, 0.1), {"step_size": 1.0}),
        "funnel_nan_reject": ("smile", funnel, nonfinite(funnel), {"tuner": None, "step_size": 1.5}),
        "funnel_nan_zero_and_clip": ("smile", funnel, nonfinite(funnel), {"tuner": None, "step_size": 1.5,
                                                                            "nonfinite_gradient": "zero_and_clip"}),
        "funnel_nan_mclmc": ("mclmc", funnel, nonfinite(funnel, exact=True), {"step_size": 1.0}),
        "funnel_nan_psmile": ("psmile", funnel, nonfinite(funnel), {"step_size": 1.0}),
    }
    lean = {"esh_form": "lean"}  # the lean ESH form and its fallbacks to the robust one (funnel, rejections)
    for name in ("smile_naive", "smile_naive_big_step", "smile_default", "psmile_naive", "mclmc_fixed",
                 "mclmc_diag", "funnel_reject", "funnel_nan_mclmc"):
        s_, t_, g_, o_ = C[name]
        C[name + "_lean"] = (s_, t_, g_, {**o_, **lean})
    one = {"n_chains": 1, "n_steps": 150, "burn_in": 50}  # one chain: the NumPy one-row ESH form
    for name in ("smile_naive", "smile_naive_big_step", "smile_default", "smile_exact", "psmile", "mclmc_tuned",
                 "mclmc_fixed", "mclmc_diag", "funnel_nan_reject", "funnel_nan_zero_and_clip", "funnel_nan_mclmc",
                 "smile_authors", "smile_naive_lean", "mclmc_fixed_lean"):
        s_, t_, g_, o_ = C[name]
        C[name + "_1chain"] = (s_, t_, g_, {**o_, **one})
    many = {"n_chains": 64, "n_steps": 30, "burn_in": 10}  # many short rows (the transposed max|g|)
    for name in ("smile_naive", "smile_default", "mclmc_diag", "psmile", "funnel_zero_and_clip", "smile_naive_lean"):
        s_, t_, g_, o_ = C[name]
        C[name + "_64chains"] = (s_, t_, g_, {**o_, **many})
    return {k: (s, t, g, {**base, **o}) for k, (s, t, g, o) in C.items()}


def _flatten_state(prefix, obj, out):
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        for f in obj._fields:
            _flatten_state(f"{prefix}.{f}", getattr(obj, f), out)
    elif hasattr(obj, "shape") and hasattr(obj, "dtype"):
        out[prefix] = np.asarray(obj)


def run_one(sampler, target, grad, opts, backend, dtype, seed=0) -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = smile_ref.run_chains(sampler, target, gradient=grad(), seed=seed, backend=backend, dtype=dtype,
                                   progress=False, **opts)
    out = {"samples": np.asarray(res.samples), "info_steps": np.asarray(res.info_steps)}
    for k, v in res.info.items():
        out[f"info.{k}"] = np.asarray(v)
    integ = getattr(res.state, "integrator", None)
    if integ is not None:
        _flatten_state("state", integ, out)
    return out


def run_all(names=None, log=print) -> dict:
    arrays = {}
    for name, (s, t, g, o) in configurations().items():
        if names and name not in names:
            continue
        for b in BACKENDS:
            for dt in DTYPES:
                t0 = time.perf_counter()
                for k, v in run_one(s, t, g, o, b, dt).items():
                    arrays[f"{name}/{b}/{dt}/{k}"] = v
                log(f"  {name:24s} {b:17s} {dt}  {time.perf_counter() - t0:5.2f} s")
    return arrays


def identical(a: np.ndarray, b: np.ndarray) -> bool:
    """Same dtype, shape and bytes (so -0.0 != 0.0 and NaN payloads count)."""
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--record", metavar="NPZ")
    g.add_argument("--compare", metavar="NPZ")
    ap.add_argument("--only", nargs="*", help="configuration names (default: all)")
    args = ap.parse_args(argv)
    arrays = run_all(args.only)
    if args.record:
        np.savez(args.record, **arrays)
        print(f"recorded {len(arrays)} arrays to {args.record}")
        return 0
    ref = np.load(args.compare)
    bad_configs = set()
    for key, v in arrays.items():
        cfg = key.rsplit("/", 1)[0]
        if key not in ref.files:
            print(f"MISSING in reference: {key}")
            bad_configs.add(cfg)
        elif not identical(ref[key], v):
            a = ref[key]
            diff = "" if a.shape != v.shape else f" max|diff| {np.nanmax(np.abs(a.astype(float) - v.astype(float)))}"
            print(f"DIFFERS: {key}{diff}")
            bad_configs.add(cfg)
    for key in ref.files:
        if key not in arrays and (not args.only or key.split("/", 1)[0] in args.only):
            print(f"MISSING in this run: {key}")
            bad_configs.add(key.rsplit("/", 1)[0])
    n_cfg = len({k.rsplit("/", 1)[0] for k in arrays})
    print(f"{n_cfg - len(bad_configs)} of {n_cfg} configurations (sampler x backend x dtype) bit-identical, "
          f"{len(arrays)} arrays compared")
    return len(bad_configs)


if __name__ == "__main__":
    sys.exit(main())
