"""Step-for-step cross-check of smile_ref's ``preset="authors"`` against the SMILE authors' code.

Runs the authors' ``SMILE`` (SMILE-naive), ``SMILET`` (SMILE) and ``NOISYSMILE`` (pSMILE) kernels from
their repository (https://github.com/EmanuelSommer/SMILE, ``src/kernels/smile.py``; the user's own
exported copy, passed as ``--authors-src``; nothing of it is vendored here) and smile_ref's
``"smile"``/``"psmile"`` with ``preset="authors"`` from identical inputs, and reports the maximum
differences in position ``x``, velocity ``u``, step size ``eps`` and ``|dE|`` after 1, 10, 100 and 1000
steps, and the reset steps of both.  It also runs the authors' plain ``SGHMC`` kernel
(``src/kernels/sghmc.py``) against ``"sghmc"`` with ``preset="authors"`` (``step_size = eps^2``,
``alpha = mdecay``; velocity compared as ``eps m``), their ``SGLD`` (``src/kernels/sgld.py``) against
``"sgld"`` (``step_size`` = their step size) and their AdaSGHMC (``AdaSGHMCWarmup`` for the warm-up, then
``SGHMC`` rebuilt from its state) against ``"sghmc_adaptive"`` with ``preset="authors"`` (``step_size = eps^2``,
``alpha = mdecay``; step size compared per coordinate as ``eps^2 / s``), with their normals re-derived from
their ``jax.random`` keys and replayed to smile_ref in its draw order.

Identical inputs: the script draws every random input once with NumPy (the additive gradient noise of
the Gaussian target, the mini-batch indices of the logistic regression, in the authors' batch schedule:
per chain and epoch a permutation of the first ``floor(N/b) b`` examples) and hands the same arrays to
both codes: to the authors' kernel as its per-step ``minibatch`` argument, to smile_ref through
:class:`smile_ref.gradients.Replay`.  Each run has a warm-up of ``--warmup`` steps (default 50): the
authors' kernel is rebuilt from its warm-up state for sampling as their ``src/training/sampling.py``
does.

Targets
-------
``gaussian``: ``d = 10``, ``N(0, Q diag(c^2) Q^T)`` with ``c = logspace(-0.5, 0.5, 10)``, mini-batch
log-density ``log N(x) + xi . x`` with ``xi ~ N(0, diag(s^2))``, ``s = 3 logspace(-1, 1, 10)`` (the
form of the authors' analytical benchmark: additive, position-independent, anisotropic noise).
``logistic``: Bayesian logistic regression, ``N = 1000`` standardised examples, ``d = 5``, prior
``N(0, I)``, batches of ``b = 32`` (``N mod b = 8``): smile_ref evaluates it with
``MiniBatch(target, 32, scale="floor")``, the authors' side with the same formula in JAX
(``log prior + floor(N/b) sum_B l_i``, their ``src/bnns/logliks.py``).

``|dE|`` of the authors' tuned kernels is not in their state; it is recovered from their energy EMA
(``mu_t = |dE|`` for ``t < 3``, ``(mu_t - (1 - beta) mu_{t-1}) / beta`` afterwards), which amplifies
rounding by ``1/beta = 100``.  SMILE-naive computes no energy error: its ``|dE|`` column is empty.

Environment (the authors' pinned versions; Python 3.11)::

    python3 -m venv /tmp/venv-authors
    /tmp/venv-authors/bin/pip install jax==0.4.33 jaxlib==0.4.33 blackjax==1.2.2 optax==0.2.1 \\
        flax==0.9.0 "numpy<2" scipy sympy array-api-compat array-api-extra tqdm pyyaml
    /tmp/venv-authors/bin/pip install -e . --no-deps
    git clone https://github.com/EmanuelSommer/SMILE /tmp/smile-authors   # HEAD 8a54636
    /tmp/venv-authors/bin/python -m validation.crosscheck_authors --authors-src /tmp/smile-authors \\
        --out validation/results/authors_crosscheck

Only ``src/kernels/{__init__,base,smile,sghmc,sgld,warmup}.py`` (and what they import) of their tree are
imported.  Without jax/blackjax or the tree the script exits with a message (status 2).

Usage::

    python -m validation.crosscheck_authors --authors-src PATH [--out DIR] [--steps 1000] [--warmup 50] [--ablations]
    python -m validation.crosscheck_authors --authors-src PATH --mile-full [--mile-warmup 50000] [--mile-seeds 8] \
        [--mile-problems gaussian mlp]

``--ablations`` also runs smile_ref with one of its defaults at a time (everything else as in
``preset="authors"``) and reports where each departs from the authors' trajectory.  ``--mile-full`` runs
only MILE: the 250-step check, then whole warm-ups of ``--mile-warmup`` steps (the UCI MILE configs use
50,000) over ``--mile-seeds`` seeds on a d = 20 Gaussian and a small MLP, both codes recording every step
(``validation/_crosscheck_mile.py``): tuned ``eps`` and ``L`` of both over seeds, the step at which exact
agreement ends and the growth rate of the difference; written to ``mile_full.json`` / ``mile_full.md``.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import numpy as np

from smile_ref.io import atomic_write_json, atomic_write_text
from validation import _crosscheck_mile as _mile
from validation._authors_source import add_authors_source
from validation._crosscheck_mile import ReplayNormals  # noqa: F401 (the replayed normals of every pairing)

PAIRINGS = {  # name: (authors' class, smile_ref sampler, extra smile_ref options)
    "SMILE-naive": ("SMILE", "smile", {"tuner": None}),
    "SMILE (SMILET)": ("SMILET", "smile", {}),
    "pSMILE (NOISYSMILE)": ("NOISYSMILE", "psmile", {}),
}
SGHMC_PAIRING = "SGHMC"  # the authors' plain SGHMC kernel vs "sghmc" with preset="authors"
SGHMC_SETTINGS = {"gaussian": (0.1, 0.05), "logistic": (0.01, 0.05)}  # (their eps, mdecay)
REPORT_STEPS = (1, 10, 100, 1000)
N_CHAINS = 4


# ----------------------------------------------------------------------------- problems
class Problem:
    """Target, step size and the pre-drawn random inputs of one cross-check problem."""

    name: str
    dim: int
    step_size: float

    def batches(self, n_steps: int, n_chains: int) -> list:  # pragma: no cover - abstract
        raise NotImplementedError


class GaussianNoise(Problem):
    name = "gaussian"

    def __init__(self, seed=0, d=10):
        rs = np.random.default_rng(seed)
        self.dim, self.step_size = d, 0.2
        Q, _ = np.linalg.qr(rs.standard_normal((d, d)))
        c = np.logspace(-0.5, 0.5, d)
        self.cov = (Q * c**2) @ Q.T
        self.prec = (Q / c**2) @ Q.T
        self.noise_sd = 3.0 * np.logspace(-1, 1, d)
        self.rs = rs
        self.x0 = rs.standard_normal((N_CHAINS, d))

    def batches(self, n_steps, n_chains):
        return [self.rs.standard_normal((n_chains, self.dim)) * self.noise_sd for _ in range(n_steps)]

    # smile_ref side (NumPy, through Replay)
    def smile_ref_gradient(self, batches):
        from smile_ref.gradients import Replay

        P = self.prec

        def fn(x, xi):
            xp_ = x @ P
            return -0.5 * np.sum(xp_ * x, axis=1) + np.sum(xi * x, axis=1), -xp_ + xi

        return Replay(fn, batches)

    def smile_ref_target(self):
        from smile_ref.targets import Gaussian

        return Gaussian(np.zeros(self.dim), self.cov)

    # authors' side (JAX): per-chain minibatch (xi (d,), unused (1,))
    def authors_minibatch(self, batch):
        return (batch, np.zeros((batch.shape[0], 1)))

    def authors_grad_estimator(self):
        import jax
        import jax.numpy as jnp

        P = jnp.asarray(self.prec)

        def logdensity(pos, x, y):
            del y
            return -0.5 * jnp.dot(pos @ P, pos) + jnp.dot(x, pos)

        vg = jax.value_and_grad(logdensity)
        return lambda position, x, y: vg(position, x, y)


class Logistic(Problem):
    name = "logistic"

    def __init__(self, seed=1, n=1000, d=5, b=32):
        rs = np.random.default_rng(seed)
        X = rs.standard_normal((n, d))
        X = (X - X.mean(0)) / X.std(0)
        w = rs.standard_normal(d)
        y = (rs.random(n) < 1 / (1 + np.exp(-X @ w))).astype(float)
        self.X, self.y, self.n, self.b = X, y, n, b
        self.dim, self.step_size = d, 0.02
        self.rs = rs
        self.x0 = 0.1 * rs.standard_normal((N_CHAINS, d))

    def batches(self, n_steps, n_chains):
        """The authors' schedule: per chain and epoch a permutation of ``range(floor(N/b) b)``."""
        nb = self.n // self.b
        out, epoch = [], None
        for t in range(n_steps):
            k = t % nb
            if k == 0:
                epoch = np.stack([self.rs.permutation(nb * self.b) for _ in range(n_chains)])
            out.append(np.ascontiguousarray(epoch[:, k * self.b:(k + 1) * self.b]))
        return out

    def smile_ref_target(self):
        from smile_ref.targets import LogisticRegression

        return LogisticRegression(self.X, self.y, prior_scale=1.0)

    def smile_ref_gradient(self, batches):
        from smile_ref.gradients import MiniBatch, Replay

        mb = MiniBatch(self.smile_ref_target(), self.b, scale="floor")
        return Replay(lambda x, idx: mb.evaluate(x, idx), batches, cost=self.b / self.n)

    def authors_minibatch(self, batch):
        return (self.X[batch], self.y[batch])

    def authors_grad_estimator(self):
        import jax
        import jax.numpy as jnp

        nb = float(self.n // self.b)
        const = -0.5 * self.dim * np.log(2.0 * np.pi)

        def logpost(pos, x, y):  # log prior + n_batches * sum log lik (their logliks.py)
            z = x @ pos
            ll = jnp.sum(y * z - jnp.logaddexp(0.0, z))
            return -0.5 * jnp.sum(pos * pos) + const + ll * nb

        vg = jax.value_and_grad(logpost)
        return lambda position, x, y: vg(position, x, y)


PROBLEMS = {"gaussian": GaussianNoise, "logistic": Logistic}


# ----------------------------------------------------------------------------- smile_ref side
# one smile_ref default at a time, everything else as in preset="authors": the measured effect of each
# difference (docs/conventions.md); "pairings" limits an ablation to the samplers it applies to
ABLATIONS = {
    "initial_state='evaluate' (x0 evaluated)": {"options": {"initial_state": "evaluate"}, "init_draw": True},
    "warmup_boundary_reset=False": {"options": {"warmup_boundary_reset": False}},
    "energy_error='same_batch'": {"options": {"energy_error": "same_batch"}, "tuned": True},
    "reset_keeps_rejected_gradient=False": {"options": {"reset_keeps_rejected_gradient": False}, "tuned": True},
    "winsorize_rejected=True": {"options": {"tuner_options": {"winsorize_rejected": True}}, "tuned": True},
    "reset_prob=0.98, alpha=0.1 (UCI configs)": {"options": {"tuner_options": {"reset_prob": 0.98, "alpha": 0.1}},
                                                 "tuned": True},
    "carry_mean=True (P1 fixed)": {"options": {"preconditioner_options": {"carry_mean": True}}, "psmile": True},
    "first_b_preconditioner='current' (P2)": {"options": {"first_b_preconditioner": "current"}, "psmile": True},
    "init_mean=0 (analytical code)": {"options": {"preconditioner_options": {"init_mean": 0.0}}, "psmile": True},
    "MiniBatch scale N/b": {"options": {}, "scale": "unbiased", "problems": ("logistic",)},
}


def run_smile_ref(problem: Problem, pairing: str, batches: list, n_steps: int, n_warmup: int,
                  overrides: dict | None = None, init_draw: bool = False, scale: str | None = None) -> dict:
    """smile_ref's ``preset="authors"`` kernel, step for step: ``x, u, eps, |dE|, reset`` per step.

    ``overrides``: explicit options on top of the preset; ``init_draw``: prepend ``batches[0]`` for an
    evaluation at init (so that step ``t`` still sees ``batches[t]``); ``scale="unbiased"``: the
    logistic regression with ``N/b`` instead of ``floor(N/b)``.
    """
    from smile_ref.backend import get_backend
    from smile_ref.samplers import base as registry

    _, sampler, extra = PAIRINGS[pairing]
    build = registry.get(sampler)
    seq = ([batches[0]] + list(batches)) if init_draw else batches
    if scale == "unbiased":
        from smile_ref.gradients import MiniBatch, Replay

        mb = MiniBatch(problem.smile_ref_target(), problem.b)
        gradient = Replay(lambda x, idx: mb.evaluate(x, idx), seq)
    else:
        gradient = problem.smile_ref_gradient(seq)
    opts = dict(extra, **(overrides or {}))
    algo = build(problem.smile_ref_target(), gradient, get_backend("numpy", "float64"),
                 step_size=problem.step_size, n_warmup=n_warmup, preset="authors", **opts)
    state = algo.init(np.array(problem.x0, dtype=np.float64), None)
    rec = {k: [] for k in ("x", "u", "eps", "abs_dE", "reset")}
    for t in range(n_steps):
        eps_used = np.array(state.params.step_size, dtype=np.float64)
        state, info = algo.step(state, None, t < n_warmup)
        rec["x"].append(np.array(state.integrator.position))
        rec["u"].append(np.array(state.integrator.momentum))
        rec["eps"].append(np.array(state.params.step_size) if extra.get("tuner", "x") is not None else eps_used)
        rec["abs_dE"].append(np.abs(np.array(info["energy_error"])))
        rec["reset"].append(np.array(info["rejected"], dtype=bool))
    return {k: np.stack(v) for k, v in rec.items()}


# ----------------------------------------------------------------------------- authors' side
class MissingDependency(RuntimeError):
    pass


def import_authors(authors_src: str):
    """The authors' kernel module ``src.kernels.smile`` from their tree (jax in float64)."""
    if not os.path.isfile(os.path.join(authors_src, "src", "kernels", "smile.py")):
        raise MissingDependency(f"--authors-src {authors_src!r} is not an export of github.com/EmanuelSommer/SMILE "
                                "(no src/kernels/smile.py)")
    os.environ.setdefault("XLA_FLAGS", f"--xla_force_host_platform_device_count={N_CHAINS}")
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    try:
        import blackjax  # noqa: F401
        import jax
    except ImportError as e:
        raise MissingDependency(f"the authors' code needs jax 0.4.33 and blackjax 1.2.2 ({e}); see the docstring "
                                "of validation/crosscheck_authors.py for the venv") from e
    jax.config.update("jax_enable_x64", True)
    if len(jax.devices()) < N_CHAINS:
        raise MissingDependency(f"need {N_CHAINS} jax devices (pmap over chains); set XLA_FLAGS="
                                f"--xla_force_host_platform_device_count={N_CHAINS} before importing jax")
    add_authors_source(authors_src)
    import src.kernels.smile as smile_mod

    return smile_mod, jax


def _authors_abs_dE(mu_new, mu_old, t, beta=0.01):
    """|dE| from the authors' EMA: mu_t = a (t < 3), else (1 - beta) mu_{t-1} + beta a (then clipped)."""
    return mu_new if t < 3 else (mu_new - (1.0 - beta) * mu_old) / beta


def run_authors(problem: Problem, pairing: str, batches: list, n_steps: int, n_warmup: int, authors_src: str) -> dict:
    """The authors' kernel (unmodified, pmapped over chains as in their code), step for step."""
    smile_mod, jax = import_authors(authors_src)
    import jax.numpy as jnp

    cls = getattr(smile_mod, PAIRINGS[pairing][0])
    tuned = cls is not smile_mod.SMILE
    grad = problem.authors_grad_estimator()
    eps0 = float(problem.step_size)
    x0 = jnp.asarray(problem.x0)
    if tuned:
        sampler = cls(grad_estimator=grad, position=x0, step_size=eps0)
    else:
        sampler = cls(grad_estimator=grad, position=x0)
    keys = jax.random.split(jax.random.PRNGKey(0), N_CHAINS)
    rec = {k: [] for k in ("x", "u", "eps", "abs_dE", "reset")}
    for t in range(n_steps):
        if t == n_warmup and n_warmup > 0:  # their sampling.py: config.kernel(grad_estimator, state=warmup state)
            sampler = cls(grad_estimator=grad, state=sampler.state)
        mb = tuple(jnp.asarray(a) for a in problem.authors_minibatch(batches[t]))
        old = sampler.state
        mu_old = np.array(old.energy_var_mean) if tuned else None
        time_old = float(np.array(old.time)[0]) if tuned else None
        keys_t = jax.vmap(jax.random.split)(keys)[:, 0]
        sampler.update_state(keys_t, mb, jnp.asarray(eps0))
        st = sampler.state
        rec["x"].append(np.array(st.position, dtype=np.float64))
        u = np.array(st.momentum, dtype=np.float64)
        rec["u"].append(u)
        if tuned:
            rec["eps"].append(np.array(st.step_size, dtype=np.float64))
            rec["abs_dE"].append(_authors_abs_dE(np.array(st.energy_var_mean), mu_old, time_old))
            rec["reset"].append((time_old >= 10.0) & np.all(u == 0.0, axis=1))
        else:
            rec["eps"].append(np.full(N_CHAINS, eps0))
            rec["abs_dE"].append(np.full(N_CHAINS, np.nan))
            rec["reset"].append(np.zeros(N_CHAINS, dtype=bool))
    return {k: np.stack(v) for k, v in rec.items()}


# ----------------------------------------------------------------------------- SGHMC
def authors_sghmc_keys(n_steps):
    """Per-step, per-chain keys of the authors' loop (``jax.random.split`` of one key per chain)."""
    import jax

    keys = jax.random.split(jax.random.PRNGKey(1), N_CHAINS)
    out = []
    for _ in range(n_steps):
        keys = jax.vmap(jax.random.split)(keys)[:, 0]
        out.append(keys)
    return out


def authors_sghmc_normals(keys_per_step, dim):
    """The normals of their SGHMC step re-derived from its key: ``split`` -> ``key_steps`` -> ``split(., 1)[0]``
    -> ``blackjax.util.generate_gaussian_noise`` (``normal(key, (d,))``), per chain."""
    import jax
    import jax.numpy as jnp

    def one(key):
        _, key_steps = jax.random.split(key)
        k = jax.random.split(key_steps, 1)[0]
        return jax.random.normal(k, (dim,), dtype=jnp.float64)

    f = jax.jit(jax.vmap(one))
    return [np.array(f(k)) for k in keys_per_step]


def run_authors_sghmc(problem: Problem, batches: list, n_steps: int, authors_src: str) -> dict:
    """The authors' plain ``SGHMC`` kernel (unmodified, pmapped), step for step; velocity reported as ``eps m``."""
    import importlib

    smile_mod, jax = import_authors(authors_src)
    import jax.numpy as jnp

    sghmc_mod = importlib.import_module("src.kernels.sghmc")
    eps, mdecay = SGHMC_SETTINGS[problem.name]
    sampler = sghmc_mod.SGHMC(grad_estimator=problem.authors_grad_estimator(), position=jnp.asarray(problem.x0),
                              mdecay=mdecay)
    rec = {k: [] for k in ("x", "u", "eps", "abs_dE", "reset")}
    for t, keys in enumerate(authors_sghmc_keys(n_steps)):
        mb = tuple(jnp.asarray(a) for a in problem.authors_minibatch(batches[t]))
        sampler.update_state(keys, mb, jnp.asarray(eps))
        rec["x"].append(np.array(sampler.state.position, dtype=np.float64))
        rec["u"].append(eps * np.array(sampler.state.momentum, dtype=np.float64))
        rec["eps"].append(np.full(N_CHAINS, eps**2))
        rec["abs_dE"].append(np.full(N_CHAINS, np.nan))
        rec["reset"].append(np.zeros(N_CHAINS, dtype=bool))
    return {k: np.stack(v) for k, v in rec.items()}


def run_smile_ref_sghmc(problem: Problem, batches: list, normals: list, n_steps: int, overrides=None) -> dict:
    """``"sghmc"`` with ``preset="authors"``, ``step_size = eps^2``, ``alpha = mdecay``, the same normals.

    With ``overrides={"initial_velocity": "sample"}`` an extra normal draw (seed 99) is prepended for ``v0``.
    """
    from smile_ref.backend import get_backend
    from smile_ref.samplers import base as registry

    eps, mdecay = SGHMC_SETTINGS[problem.name]
    overrides = dict(overrides or {})
    # smile_ref evaluates g_hat at the proposal at the end of each step (draw t + 1; the draw at init is 0), so
    # a run of n steps makes n + 1 draws: the last one, for a step that is never taken, repeats batches[-1]
    algo = registry.get("sghmc")(problem.smile_ref_target(), problem.smile_ref_gradient(list(batches) + batches[-1:]),
                                 get_backend("numpy", "float64"), step_size=eps**2, preset="authors", alpha=mdecay,
                                 **overrides)
    if overrides.get("initial_velocity") == "sample":
        normals = [np.random.default_rng(99).standard_normal((N_CHAINS, problem.dim))] + list(normals)
    rng = ReplayNormals(normals)
    state = algo.init(np.array(problem.x0, dtype=np.float64), rng)
    rec = {k: [] for k in ("x", "u", "eps", "abs_dE", "reset")}
    for _ in range(n_steps):
        state, info = algo.step(state, rng, False)
        rec["x"].append(np.array(state.position))
        rec["u"].append(np.array(state.velocity))
        rec["eps"].append(np.array(info["step_size"]))
        rec["abs_dE"].append(np.full(N_CHAINS, np.nan))
        rec["reset"].append(np.array(info["rejected"], dtype=bool))
    return {k: np.stack(v) for k, v in rec.items()}


# ----------------------------------------------------------------------------- SGLD and AdaSGHMC
SGLD_PAIRING = "SGLD"  # the authors' SGLD kernel vs "sgld" (step_size = their step size)
SGLD_SETTINGS = {"gaussian": 0.01, "logistic": 1e-4}  # their step size
ADASGHMC_PAIRING = "AdaSGHMC"  # their AdaSGHMCWarmup + SGHMC vs "sghmc_adaptive" with preset="authors"
ADASGHMC_SETTINGS = {"gaussian": (0.02, 0.05), "logistic": (0.01, 0.05)}  # (their eps, mdecay)


def authors_sgld_normals(keys_per_step, dim):
    """The normals of their SGLD step: ``blackjax.util.generate_gaussian_noise`` with the step's key."""
    import jax
    import jax.numpy as jnp

    f = jax.jit(jax.vmap(lambda key: jax.random.normal(key, (dim,), dtype=jnp.float64)))
    return [np.array(f(k)) for k in keys_per_step]


def _nan_rec(rec):
    rec["abs_dE"].append(np.full(N_CHAINS, np.nan))
    rec["reset"].append(np.zeros(N_CHAINS, dtype=bool))


def run_authors_sgld(problem: Problem, batches: list, n_steps: int, authors_src: str) -> dict:
    """The authors' ``SGLD`` kernel (``src/kernels/sgld.py``, unmodified, pmapped), step for step."""
    import importlib

    import_authors(authors_src)
    import jax.numpy as jnp

    sgld_mod = importlib.import_module("src.kernels.sgld")
    h = SGLD_SETTINGS[problem.name]
    sampler = sgld_mod.SGLD(grad_estimator=problem.authors_grad_estimator(), position=jnp.asarray(problem.x0))
    rec = {k: [] for k in ("x", "u", "eps", "abs_dE", "reset")}
    for t, keys in enumerate(authors_sghmc_keys(n_steps)):
        mb = tuple(jnp.asarray(a) for a in problem.authors_minibatch(batches[t]))
        sampler.update_state(keys, mb, jnp.asarray(h))
        rec["x"].append(np.array(sampler.state.position, dtype=np.float64))
        rec["u"].append(np.full((N_CHAINS, problem.dim), np.nan))
        rec["eps"].append(np.full(N_CHAINS, h))
        _nan_rec(rec)
    return {k: np.stack(v) for k, v in rec.items()}


def run_smile_ref_sgld(problem: Problem, batches: list, normals: list, n_steps: int, overrides=None) -> dict:
    """``"sgld"`` with ``step_size`` = their step size and the same normals (``n + 1`` batches, as for SGHMC)."""
    from smile_ref.backend import get_backend
    from smile_ref.samplers import base as registry

    h = SGLD_SETTINGS[problem.name]
    algo = registry.get("sgld")(problem.smile_ref_target(), problem.smile_ref_gradient(list(batches) + batches[-1:]),
                                get_backend("numpy", "float64"), step_size=h, **dict(overrides or {}))
    rng = ReplayNormals(normals)
    state = algo.init(np.array(problem.x0, dtype=np.float64), rng)
    rec = {k: [] for k in ("x", "u", "eps", "abs_dE", "reset")}
    for _ in range(n_steps):
        state, info = algo.step(state, rng, False)
        rec["x"].append(np.array(state.position))
        rec["u"].append(np.full((N_CHAINS, problem.dim), np.nan))
        rec["eps"].append(np.array(info["step_size"]))
        rec["abs_dE"].append(np.full(N_CHAINS, np.nan))
        rec["reset"].append(np.array(info["rejected"], dtype=bool))
    return {k: np.stack(v) for k, v in rec.items()}


def run_authors_adasghmc(problem: Problem, batches: list, n_steps: int, n_warmup: int, authors_src: str) -> dict:
    """The authors' ``AdaSGHMCWarmup`` for ``n_warmup`` steps, then ``SGHMC`` rebuilt from its state as their
    ``src/training/sampling.py`` does (``s`` kept, momentum zeroed); velocity reported as ``eps m``, step size
    as the per-coordinate ``eps^2 / s``."""
    import importlib

    import_authors(authors_src)
    import jax.numpy as jnp

    sghmc_mod = importlib.import_module("src.kernels.sghmc")
    eps, mdecay = ADASGHMC_SETTINGS[problem.name]
    ge = problem.authors_grad_estimator()
    sampler = sghmc_mod.AdaSGHMCWarmup(grad_estimator=ge, position=jnp.asarray(problem.x0), mdecay=mdecay)
    rec = {k: [] for k in ("x", "u", "eps", "abs_dE", "reset")}
    for t, keys in enumerate(authors_sghmc_keys(n_steps)):
        if t == n_warmup:
            sampler = sghmc_mod.SGHMC(grad_estimator=ge, state=sampler.state, mdecay=mdecay)
        mb = tuple(jnp.asarray(a) for a in problem.authors_minibatch(batches[t]))
        sampler.update_state(keys, mb, jnp.asarray(eps))
        rec["x"].append(np.array(sampler.state.position, dtype=np.float64))
        rec["u"].append(eps * np.array(sampler.state.momentum, dtype=np.float64))
        rec["eps"].append(eps**2 / np.array(sampler.state.elementwise_sd, dtype=np.float64))
        _nan_rec(rec)
    return {k: np.stack(v) for k, v in rec.items()}


def run_smile_ref_adasghmc(problem: Problem, batches: list, normals: list, n_steps: int, n_warmup: int,
                           overrides=None) -> dict:
    """``"sghmc_adaptive"`` with ``preset="authors"``, ``step_size = eps^2``, ``alpha = mdecay``, the same
    normals; the first ``n_warmup`` steps are warm-up steps."""
    from smile_ref.backend import get_backend
    from smile_ref.samplers import base as registry

    eps, mdecay = ADASGHMC_SETTINGS[problem.name]
    algo = registry.get("sghmc_adaptive")(problem.smile_ref_target(),
                                          problem.smile_ref_gradient(list(batches) + batches[-1:]),
                                          get_backend("numpy", "float64"), step_size=eps**2, preset="authors",
                                          alpha=mdecay, **dict(overrides or {}))
    rng = ReplayNormals(normals)
    state = algo.init(np.array(problem.x0, dtype=np.float64), rng)
    rec = {k: [] for k in ("x", "u", "eps", "abs_dE", "reset")}
    for t in range(n_steps):
        state, info = algo.step(state, rng, t < n_warmup)
        rec["x"].append(np.array(state.position))
        rec["u"].append(eps * np.array(state.momentum))
        rec["eps"].append(eps**2 / np.array(state.sd))
        rec["abs_dE"].append(np.full(N_CHAINS, np.nan))
        rec["reset"].append(np.array(info["rejected"], dtype=bool))
    return {k: np.stack(v) for k, v in rec.items()}


def _sg_baselines(problem, batches, n_steps, n_warmup, authors_src, normals_fn, overrides=None):
    """``{pairing: (authors' record, smile_ref record)}`` for SGLD and AdaSGHMC; with ``normals_fn`` (a stand-in
    for the authors) smile_ref with ``preset="authors"`` is the reference."""
    out = {}
    if normals_fn is None:
        keys = authors_sghmc_keys(n_steps)
        ref_sgld = run_authors_sgld(problem, batches, n_steps, authors_src)
        n_sgld = authors_sgld_normals(keys, problem.dim)
        ref_ada = run_authors_adasghmc(problem, batches, n_steps, n_warmup, authors_src)
        n_ada = authors_sghmc_normals(keys, problem.dim)
    else:
        n_sgld = n_ada = normals_fn(problem, n_steps)
        ref_sgld = run_smile_ref_sgld(problem, batches, n_sgld, n_steps)
        ref_ada = run_smile_ref_adasghmc(problem, batches, n_ada, n_steps, n_warmup)
    out[SGLD_PAIRING] = (ref_sgld, lambda o=None: run_smile_ref_sgld(problem, batches, n_sgld, n_steps, o))
    out[ADASGHMC_PAIRING] = (ref_ada, lambda o=None: run_smile_ref_adasghmc(problem, batches, n_ada, n_steps,
                                                                             n_warmup, o))
    return out


ADASGHMC_ABLATIONS = {"moment_gradient='current'": {"moment_gradient": "current"},
                      "gradient_clip=None (guardrails)": {"gradient_clip": None}}


# ----------------------------------------------------------------------------- MILE warm-up
MILE_PAIRING = "MILE warm-up"  # their src/kernels/warmup.py vs "mclmc" with preset="authors" (tuner="mile")
MILE_DIM, MILE_WARMUP, MILE_CHAINS = 20, 250, 4
MILE_FULL_WARMUP, MILE_FULL_SEEDS = 50_000, 8  # the UCI MILE configs' warm-up length


def run_authors_mile(authors_src: str) -> dict:
    """Their MILE warm-up on the d = 20 Gaussian (:func:`_crosscheck_mile.run_authors`), chain ``c`` = seed ``c``;
    also ``custom_mclmc_warmup(...).run`` itself."""
    import_authors(authors_src)
    problem = _mile.GaussianProblem()
    runs = [_mile.run_authors(problem, c, MILE_WARMUP, check_run=True) for c in range(MILE_CHAINS)]
    return {k: np.array([r[k] for r in runs]) for k in ("eps", "L_phase2", "L", "x", "eps_run", "L_run", "x_run")}


def authors_mile_normals(chain):
    """Their normals for one chain in smile_ref's draw order (:func:`_crosscheck_mile.authors_normals`)."""
    return _mile.authors_normals(_mile.GaussianProblem(), chain, MILE_WARMUP)


def run_smile_ref_mile(normals_per_chain, overrides=None) -> dict:
    """``"mclmc"`` with ``preset="authors"`` (``tuner="mile"``), one chain at a time with the replayed normals."""
    problem = _mile.GaussianProblem()
    runs = [_mile.run_smile_ref(problem, c, MILE_WARMUP, normals_per_chain[c], overrides) for c in range(MILE_CHAINS)]
    return {k: np.array([r[k] for r in runs]) for k in ("eps", "L_phase2", "L", "x")}


MILE_ABLATIONS = {
    "num_effective_samples=150": {"tuner_options": {"num_effective_samples": 150}},
    "schedule_divisor='n12-1'": {"tuner_options": {"schedule_divisor": "n12-1"}},
    "moment_weight='step'": {"tuner_options": {"moment_weight": "step"}},
    "ess_method='split'": {"tuner_options": {"ess_method": "split"}},
    "L0 = sqrt(d)": {"L": float(np.sqrt(MILE_DIM))},
    "eps0 = 0.25 sqrt(d)": {"step_size": 0.25 * float(np.sqrt(MILE_DIM))},
}


def run_mile(authors_src, normals_fn=None, ablations=False) -> dict:
    """Relative differences of the tuned ``eps``, ``L`` after phase 2, final ``L`` and the final position."""
    if normals_fn is None:
        ref = run_authors_mile(authors_src)
        normals = [authors_mile_normals(c) for c in range(MILE_CHAINS)]
    else:
        normals = [normals_fn(c) for c in range(MILE_CHAINS)]
        ref = run_smile_ref_mile(normals)

    def rel(a, b):
        return float(np.max(np.abs(a - b) / np.abs(a)))

    def row(ours):
        return {"eps": rel(ref["eps"], ours["eps"]), "L_phase2": rel(ref["L_phase2"], ours["L_phase2"]),
                "L": rel(ref["L"], ours["L"]), "x": float(np.max(np.abs(ref["x"] - ours["x"]))),
                "L_ratio": [float(v) for v in ours["L"] / ref["L"]]}

    res = {"preset": row(run_smile_ref_mile(normals)),
           "authors": {k: [float(v) for v in np.ravel(ref[k])] for k in ("eps", "L_phase2", "L")}}
    if "eps_run" in ref:  # their pieces = their custom_mclmc_warmup
        res["pieces_vs_run"] = {"eps": rel(ref["eps_run"], ref["eps"]), "L": rel(ref["L_run"], ref["L"]),
                                "x": float(np.max(np.abs(ref["x_run"] - ref["x"])))}
    if ablations:
        res["ablations"] = {name: row(run_smile_ref_mile(normals, o)) for name, o in MILE_ABLATIONS.items()}
    return res


def markdown_mile(res: dict) -> str:
    lines = ["", f"## {MILE_PAIRING} (d = {MILE_DIM} Gaussian, {MILE_WARMUP} steps, {MILE_CHAINS} chains)", "",
             "Max relative difference of the tuned eps, L after phase 2 and final L; max |dx| of the final position.",
             "", "| smile_ref | eps | L (phase 2) | L | x | L ratio smile_ref / authors |", "|---|---|---|---|---|---|"]
    rows = {"preset='authors'": res["preset"], **{f"preset, {k}": v for k, v in res.get("ablations", {}).items()}}
    for k, r in rows.items():
        lines.append(f"| {k} | {r['eps']:.1e} | {r['L_phase2']:.1e} | {r['L']:.1e} | {r['x']:.1e} | "
                     + ", ".join(f"{v:.3f}" for v in r["L_ratio"]) + " |")
    if "pieces_vs_run" in res:
        p = res["pieces_vs_run"]
        lines += ["", f"Their pieces vs their `custom_mclmc_warmup(...).run`: eps {p['eps']:.1e}, L {p['L']:.1e}, "
                      f"x {p['x']:.1e}."]
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- comparison
def _maxdiff(a, b):
    if np.all(np.isnan(a)) or np.all(np.isnan(b)):
        return None
    return float(np.max(np.abs(a - b)))


def compare(ref: dict, ours: dict, report_steps=REPORT_STEPS) -> dict:
    """Max |authors - smile_ref| of x, u, eps, |dE| after each report step, max over all steps, resets."""
    n = ref["x"].shape[0]
    out = {"after_step": {}, "max_over_steps": {}}
    for s in report_steps:
        if s <= n:
            out["after_step"][str(s)] = {q: _maxdiff(ref[q][s - 1], ours[q][s - 1]) for q in ("x", "u", "eps", "abs_dE")}
    # |dE| through step s (a reset step compares the raw |dE| of both)
    out["max_over_steps"] = {q: _maxdiff(ref[q], ours[q]) for q in ("x", "u", "eps", "abs_dE")}
    ra = [(int(t) + 1, int(c)) for t, c in zip(*np.nonzero(ref["reset"]))]
    rb = [(int(t) + 1, int(c)) for t, c in zip(*np.nonzero(ours["reset"]))]
    out["resets_authors"] = ra
    out["resets_smile_ref"] = rb
    out["resets_identical"] = ra == rb
    return out


def run(authors_src: str | None, n_steps: int, n_warmup: int, authors_runner=None, problems=None,
        sghmc_normals=None) -> dict:
    """All pairings on all problems; ``authors_runner`` replaces :func:`run_authors` (tests: a stand-in).

    ``sghmc_normals``: include SGHMC; with a stand-in runner it is a function ``(problem, n_steps) -> normals``
    (the authors' normals need jax), otherwise any non-``None`` value.
    """
    runner = authors_runner or (lambda p, name, batches, n, w: run_authors(p, name, batches, n, w, authors_src))
    results = {}
    for pname in problems or PROBLEMS:
        for pairing in PAIRINGS:
            problem = PROBLEMS[pname]()
            batches = problem.batches(n_steps, N_CHAINS)
            t0 = time.perf_counter()
            ref = runner(problem, pairing, batches, n_steps, n_warmup)
            t1 = time.perf_counter()
            ours = run_smile_ref(problem, pairing, batches, n_steps, n_warmup)
            t2 = time.perf_counter()
            res = compare(ref, ours)
            res["seconds"] = {"authors": round(t1 - t0, 2), "smile_ref": round(t2 - t1, 2)}
            results[f"{pname} / {pairing}"] = res
        if sghmc_normals is not None:
            problem = PROBLEMS[pname]()
            batches = problem.batches(n_steps, N_CHAINS)
            t0 = time.perf_counter()
            if authors_runner is None:
                ref = run_authors_sghmc(problem, batches, n_steps, authors_src)
                normals = authors_sghmc_normals(authors_sghmc_keys(n_steps), problem.dim)
            else:
                normals = sghmc_normals(problem, n_steps)
                ref = run_smile_ref_sghmc(problem, batches, normals, n_steps)
            t1 = time.perf_counter()
            ours = run_smile_ref_sghmc(problem, batches, normals, n_steps)
            res = compare(ref, ours)
            res["seconds"] = {"authors": round(t1 - t0, 2), "smile_ref": round(time.perf_counter() - t1, 2)}
            results[f"{pname} / {SGHMC_PAIRING}"] = res
            problem = PROBLEMS[pname]()
            batches = problem.batches(n_steps, N_CHAINS)
            t0 = time.perf_counter()
            pairs = _sg_baselines(problem, batches, n_steps, n_warmup, authors_src,
                                  None if authors_runner is None else sghmc_normals)
            for name, (ref, ours_fn) in pairs.items():
                t1 = time.perf_counter()
                res = compare(ref, ours_fn())
                res["seconds"] = {"authors": round(t1 - t0, 2), "smile_ref": round(time.perf_counter() - t1, 2)}
                results[f"{pname} / {name}"] = res
    return results


def run_ablations(authors_src, n_steps, n_warmup, authors_runner=None, problems=None, tol=1e-10,
                  sghmc_normals=None) -> dict:
    """Each smile_ref default in turn against the authors: step-1 and max x difference, first step > tol."""
    runner = authors_runner or (lambda p, name, batches, n, w: run_authors(p, name, batches, n, w, authors_src))
    out = {}
    for pname in problems or PROBLEMS:
        for pairing in ("SMILE (SMILET)", "pSMILE (NOISYSMILE)"):
            problem = PROBLEMS[pname]()
            batches = problem.batches(n_steps, N_CHAINS)
            ref = runner(problem, pairing, batches, n_steps, n_warmup)
            for name, ab in ABLATIONS.items():
                if ab.get("psmile") and PAIRINGS[pairing][1] != "psmile":
                    continue
                if pname not in ab.get("problems", (pname,)):
                    continue
                ours = run_smile_ref(problem, pairing, batches, n_steps, n_warmup, ab["options"],
                                     ab.get("init_draw", False), ab.get("scale"))
                out[f"{pname} / {pairing} / {name}"] = _ablation_row(ref, ours, tol)
        if sghmc_normals is not None:
            problem = PROBLEMS[pname]()
            batches = problem.batches(n_steps, N_CHAINS)
            if authors_runner is None:
                ref = run_authors_sghmc(problem, batches, n_steps, authors_src)
                normals = authors_sghmc_normals(authors_sghmc_keys(n_steps), problem.dim)
            else:
                normals = sghmc_normals(problem, n_steps)
                ref = run_smile_ref_sghmc(problem, batches, normals, n_steps)
            for name, opts in (("beta_hat=0", {"beta_hat": 0.0}), ("v0 ~ N(0, eta)", {"initial_velocity": "sample"})):
                ours = run_smile_ref_sghmc(problem, batches, normals, n_steps, opts)
                out[f"{pname} / {SGHMC_PAIRING} / {name}"] = _ablation_row(ref, ours, tol)
            problem = PROBLEMS[pname]()
            batches = problem.batches(n_steps, N_CHAINS)
            ref, ours_fn = _sg_baselines(problem, batches, n_steps, n_warmup, authors_src,
                                         None if authors_runner is None else sghmc_normals)[ADASGHMC_PAIRING]
            for name, opts in ADASGHMC_ABLATIONS.items():
                out[f"{pname} / {ADASGHMC_PAIRING} / {name}"] = _ablation_row(ref, ours_fn(opts), tol)
    return out


def _ablation_row(ref, ours, tol):
    dx = np.max(np.abs(ref["x"] - ours["x"]), axis=(1, 2))
    bad = np.nonzero(dx > tol)[0]
    return {"x_step1": float(dx[0]), "x_max": float(dx.max()), "x_last": float(dx[-1]),
            "first_step_above_tol": int(bad[0]) + 1 if bad.size else None,
            "resets_identical": bool(np.array_equal(ref["reset"], ours["reset"]))}


def markdown_ablations(abl: dict) -> str:
    lines = ["", "## One smile_ref default at a time (all other options as in preset='authors')", "",
             "| problem / pairing / option | x after step 1 | x after the last step | max x over steps | "
             "first step > 1e-10 | same resets |",
             "|---|---|---|---|---|---|"]
    for k, r in abl.items():
        first = "never" if r["first_step_above_tol"] is None else str(r["first_step_above_tol"])
        lines.append(f"| {k} | {r['x_step1']:.1e} | {r['x_last']:.1e} | {r['x_max']:.1e} | {first} | "
                     f"{'yes' if r['resets_identical'] else 'no'} |")
    return "\n".join(lines) + "\n"


def _fmt(v):
    return "n/a" if v is None else f"{v:.1e}"


def markdown(results: dict, meta: dict) -> str:
    lines = ["# Cross-check against the SMILE authors' code", "",
             f"Steps {meta['n_steps']} (warm-up {meta['n_warmup']}), {N_CHAINS} chains, float64. "
             f"Authors' tree: `{meta.get('authors_src')}`; jax {meta.get('jax')}, blackjax {meta.get('blackjax')}.", "",
             "Max |authors - smile_ref| over chains and coordinates after step s, and over all steps.", "",
             "| problem / pairing | s | x | u | eps | abs dE |", "|---|---|---|---|---|---|"]
    for key, r in results.items():
        for s, row in list(r["after_step"].items()) + [("all", r["max_over_steps"])]:
            lines.append(f"| {key} | {s} | " + " | ".join(_fmt(row[q]) for q in ("x", "u", "eps", "abs_dE")) + " |")
    lines += ["", "| problem / pairing | resets authors (step, chain) | resets smile_ref | identical |", "|---|---|---|---|"]
    for key, r in results.items():
        def short(v):
            return (", ".join(f"{t}:{c}" for t, c in v[:12]) + (f" ... ({len(v)} in all)" if len(v) > 12 else "")) or "none"
        lines.append(f"| {key} | {short(r['resets_authors'])} | {short(r['resets_smile_ref'])} | "
                     f"{'yes' if r['resets_identical'] else 'NO'} |")
    worst = max((v for r in results.values() for v in r["max_over_steps"].values() if v is not None), default=0.0)
    lines += ["", f"Largest difference: {worst:.1e}."]
    return "\n".join(lines) + "\n"


def main(argv=None, authors_runner=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--authors-src", default=None, help="exported tree of github.com/EmanuelSommer/SMILE")
    ap.add_argument("--out", default="validation/results/authors_crosscheck")
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--problems", nargs="*", default=list(PROBLEMS), choices=list(PROBLEMS))
    ap.add_argument("--no-sghmc", action="store_true", help="skip the SGHMC, SGLD and AdaSGHMC pairings")
    ap.add_argument("--no-mile", action="store_true", help="skip the MILE warm-up pairing")
    ap.add_argument("--ablations", action="store_true",
                    help="also run each smile_ref default in turn against the authors' kernels")
    ap.add_argument("--mile-full", action="store_true",
                    help="only MILE: the 250-step check, then whole warm-ups over seeds (mile_full.json/.md)")
    ap.add_argument("--mile-warmup", type=int, default=MILE_FULL_WARMUP, help="warm-up length of --mile-full")
    ap.add_argument("--mile-seeds", type=int, default=MILE_FULL_SEEDS, help="seeds (one chain each) of --mile-full")
    ap.add_argument("--mile-problems", nargs="+", default=list(_mile.PROBLEMS), choices=list(_mile.PROBLEMS))
    a = ap.parse_args(argv)
    if a.mile_full and (a.mile_warmup < 10 or not 2 <= a.mile_seeds <= _mile.N_START_ROWS):
        ap.error(f"--mile-full needs --mile-warmup >= 10 and 2 <= --mile-seeds <= {_mile.N_START_ROWS}")
    meta = {"n_steps": a.steps, "n_warmup": a.warmup, "authors_src": a.authors_src, "python": platform.python_version()}
    if authors_runner is None:
        if a.authors_src is None:
            print("crosscheck_authors: --authors-src PATH is required (an export of github.com/EmanuelSommer/SMILE)",
                  file=sys.stderr)
            return 2
        try:
            import_authors(a.authors_src)
        except MissingDependency as e:
            print(f"crosscheck_authors: {e}", file=sys.stderr)
            return 2
        import blackjax
        import jax

        meta.update(jax=jax.__version__, blackjax=blackjax.__version__)
    else:
        meta.update(jax="stand-in", blackjax="stand-in")
    if a.mile_full:
        return _main_mile_full(a, meta, authors_runner is not None)
    if a.no_sghmc:
        sghmc = None
    elif authors_runner is None:
        sghmc = True
    else:
        sghmc = lambda p, n: [np.random.default_rng(7 + k).standard_normal((N_CHAINS, p.dim)) for k in range(n)]  # noqa: E731
    results = run(a.authors_src, a.steps, a.warmup, authors_runner, a.problems, sghmc)
    abl = run_ablations(a.authors_src, a.steps, a.warmup, authors_runner, a.problems, sghmc_normals=sghmc) \
        if a.ablations else None
    mile = None
    if not a.no_mile:
        mile_normals = None if authors_runner is None else (
            lambda c: [np.random.default_rng(50 + c).standard_normal((1, MILE_DIM))
                       for _ in range(2 * MILE_WARMUP + 1)])
        mile = run_mile(a.authors_src, mile_normals, a.ablations)
    os.makedirs(a.out, exist_ok=True)
    atomic_write_json(os.path.join(a.out, "authors_crosscheck.json"),
                      {"meta": meta, "results": results, "ablations": abl, "mile": mile}, indent=1, sort_keys=False)
    md = markdown(results, meta) + (markdown_ablations(abl) if abl else "") + (markdown_mile(mile) if mile else "")
    atomic_write_text(os.path.join(a.out, "authors_crosscheck.md"), md)
    print(md)
    return 0


def _main_mile_full(a, meta, stand_in: bool) -> int:
    """``--mile-full``: the 250-step MILE check, then :func:`_crosscheck_mile.run_full`."""
    if stand_in:
        mile_normals = lambda c: [np.random.default_rng(50 + c).standard_normal((1, MILE_DIM))  # noqa: E731
                                  for _ in range(2 * MILE_WARMUP + 1)]
        full_normals = lambda p, seed, n: [np.random.default_rng(60 + seed).standard_normal((1, p.dim))  # noqa: E731
                                           for _ in range(2 * n + 1)]
    else:
        mile_normals = full_normals = None
    t0 = time.perf_counter()
    mile = run_mile(a.authors_src, mile_normals)
    full = _mile.run_full(range(a.mile_seeds), a.mile_warmup, a.mile_problems, full_normals)
    meta.update(mile_warmup=a.mile_warmup, mile_seeds=a.mile_seeds, seconds=round(time.perf_counter() - t0, 1))
    os.makedirs(a.out, exist_ok=True)
    atomic_write_json(os.path.join(a.out, "mile_full.json"), {"meta": meta, "mile": mile, "mile_full": full},
                      indent=1, sort_keys=False)
    md = markdown_mile(mile) + _mile.markdown(full) + f"\nSeconds: {meta['seconds']}.\n"
    atomic_write_text(os.path.join(a.out, "mile_full.md"), md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
