"""MILE warm-up part of validation/crosscheck_authors.py: the authors' ``src/kernels/warmup.py`` against
``"mclmc"`` with ``preset="authors"`` (``tuner="mile"``), from identical inputs, one chain per seed.

Problems (``PROBLEMS``): ``gaussian``, the d = 20 Gaussian ``N(0, diag(logspace(-1, 1, 20)))`` started at
row ``seed`` of ``default_rng(20).standard_normal``, initial step size 0.005 (their default); ``mlp``, a
small Bayesian MLP (the model of :class:`smile_ref.targets.MLP`: 2 inputs, 8-8 ReLU, learned noise scale,
N(0, 1) prior, N = 200 synthetic examples; d = 106) from a He-normal start, initial step size 0.01 (the UCI
MILE configs); the authors' side evaluates the same log-density in JAX (gradient and log-density
differences checked against smile_ref's to 1e-12).

Seed ``s`` uses their keys ``PRNGKey(100 + s)`` (split as their ``mclmc_find_L_and_step_size``); their
normals are re-derived from those keys and replayed to smile_ref in its draw order (the initial unit
vector, then per step ``normal(key2)``, ``normal(key1)`` of ``with_isokinetic_maruyama``).

:func:`run_full` runs whole warm-ups (phases 0.8/0.1/0.1 of ``n_warmup``), records the position after
every step on both sides (on theirs through a ``jax.debug.callback`` in the kernel the script hands to
their adaptation; it does not change the computation) and reports the tuned ``eps`` and ``L`` of both,
their paired differences over seeds, the first step at which ``max |dx|`` exceeds 1e-10 and 1e-3, and the
growth rate of ``max |dx|`` (least squares of ``log10`` of its running maximum between 1e-13 and 1e-4).
A control run of smile_ref from ``x0 (1 + 1e-15)`` (its first ``CONTROL_STEPS`` steps) measures the same growth
without the authors' code: the dynamics' own amplification of rounding.
"""
from __future__ import annotations

import math

import numpy as np

N_START_ROWS = 64  # start points drawn per problem (seeds 0..63)
CONTROL_STEPS = 5000  # steps of the control run (smile_ref from a perturbed start)


class ReplayNormals:
    """Random source for smile_ref samplers that hands out pre-drawn standard normals in order."""

    def __init__(self, normals):
        self.normals, self.k = normals, 0

    def normal(self, shape, dtype=None):
        if self.k >= len(self.normals):
            raise IndexError(f"ReplayNormals: draw {self.k} requested, {len(self.normals)} recorded")
        z = np.asarray(self.normals[self.k], dtype=np.float64)
        if z.shape != tuple(shape):
            raise ValueError(f"ReplayNormals: draw {self.k} has shape {z.shape}, the sampler asked for {tuple(shape)}")
        self.k += 1
        return z


class GaussianProblem:
    name, dim, step_size = "gaussian", 20, 0.005

    def __init__(self):
        self.var = np.logspace(-1, 1, self.dim)
        # the first rows equal the 250-step check's default_rng(20).standard_normal((4, 20))
        self.x0 = np.random.default_rng(20).standard_normal((N_START_ROWS, self.dim))

    def start(self, seed):
        return self.x0[seed]

    def smile_ref_target(self):
        from smile_ref.targets import Gaussian

        return Gaussian.diagonal(self.var)

    def jax_logdensity(self):
        import jax.numpy as jnp

        inv = jnp.asarray(1.0 / self.var)
        return lambda x: -0.5 * jnp.sum(x * x * inv)


class MLPProblem:
    """Bayesian MLP ``2 -> 8 -> 8 -> 1`` (ReLU), ``y ~ N(f, sigma^2)`` with learned ``log sigma``, N(0, 1) prior
    on all parameters (the model of :class:`smile_ref.targets.MLP` and its layout: per layer ``W`` (n_in, n_out)
    row-major, then ``b``; ``log sigma`` last), written out in NumPy for :func:`smile_ref.targets.from_callable`
    (``MLP`` needs NumPy >= 2, the authors' venv pins NumPy < 2) and in JAX for the authors' side."""

    name, step_size, widths = "mlp", 0.01, (2, 8, 8, 1)

    def __init__(self, n=200):
        rs = np.random.default_rng(21)
        X = rs.standard_normal((n, 2))
        y = np.sin(2.0 * X[:, 0]) + 0.5 * X[:, 1] + 0.1 * rs.standard_normal(n)
        self.X, self.y = X, (y - y.mean()) / y.std()
        self.shapes = list(zip(self.widths[:-1], self.widths[1:]))
        self.dim = sum(i * o + o for i, o in self.shapes) + 1

    def start(self, seed):
        """He-normal weights (std ``sqrt(2 / n_in)``), zero biases, ``log sigma = 0`` (``MLP.init_params``)."""
        rs = np.random.default_rng(1000 + seed)
        theta, off = np.zeros(self.dim), 0
        for i, o in self.shapes:
            theta[off : off + i * o] = math.sqrt(2.0 / i) * rs.standard_normal(i * o)
            off += i * o + o
        return theta

    def _logdensity_and_grad(self, x):
        n, X, y = x.shape[0], self.X, self.y
        hs, As, Ws, off = [np.broadcast_to(X, (n,) + X.shape)], [], [], 0
        for k, (i, o) in enumerate(self.shapes):
            W = x[:, off : off + i * o].reshape(n, i, o)
            a = hs[-1] @ W + x[:, None, off + i * o : off + i * o + o]
            off += i * o + o
            Ws.append(W)
            As.append(a)
            hs.append(a if k == len(self.shapes) - 1 else np.maximum(a, 0.0))
        ls = x[:, -1]
        r = y[None, :] - hs[-1][:, :, 0]
        w = np.exp(-2.0 * ls)
        lp = np.sum(-0.5 * r * r * w[:, None] - ls[:, None] - 0.5 * math.log(2.0 * math.pi), axis=1)
        lp = lp - 0.5 * np.sum(x * x, axis=1) - 0.5 * self.dim * math.log(2.0 * math.pi)
        g = np.zeros_like(x)
        g[:, -1] = np.sum(r * r * w[:, None] - 1.0, axis=1)
        delta = (r * w[:, None])[:, :, None]  # dl/da of the output layer (n, N, 1)
        for k in range(len(self.shapes) - 1, -1, -1):
            i, o = self.shapes[k]
            off = sum(ii * oo + oo for ii, oo in self.shapes[:k])
            g[:, off : off + i * o] = (np.swapaxes(hs[k], 1, 2) @ delta).reshape(n, i * o)
            g[:, off + i * o : off + i * o + o] = np.sum(delta, axis=1)
            if k > 0:
                delta = (delta @ np.swapaxes(Ws[k], 1, 2)) * (As[k - 1] > 0.0)
        return lp, g - x

    def smile_ref_target(self):
        from smile_ref.targets import from_callable

        return from_callable(None, None, self.dim, logdensity_and_grad=self._logdensity_and_grad, name="mlp")

    def jax_logdensity(self):
        import jax
        import jax.numpy as jnp

        X, y, shapes, dim = jnp.asarray(self.X), jnp.asarray(self.y), self.shapes, self.dim

        def logdensity(theta):
            h, off = X, 0
            for k, (i, o) in enumerate(shapes):
                a = h @ jnp.reshape(theta[off : off + i * o], (i, o)) + theta[off + i * o : off + i * o + o]
                off += i * o + o
                h = a if k == len(shapes) - 1 else jax.nn.relu(a)
            ls = theta[-1]
            r = y - h[:, 0]
            ll = jnp.sum(-0.5 * r * r * jnp.exp(-2.0 * ls) - ls - 0.5 * math.log(2.0 * math.pi))
            return ll - 0.5 * jnp.sum(theta * theta) - 0.5 * dim * math.log(2.0 * math.pi)

        return logdensity


PROBLEMS = {"gaussian": GaussianProblem, "mlp": MLPProblem}


def phases(n_warmup):
    return int(n_warmup * 0.8), int(n_warmup * 0.1), int(n_warmup * 0.1)


def keys(seed, n_warmup):
    """Their keys for one seed: init, per phase-1/2 step, per phase-3 step (``mclmc_find_L_and_step_size``)."""
    import jax

    n1, n2, n3 = phases(n_warmup)
    key = jax.random.PRNGKey(100 + seed)
    part1, part2 = jax.random.split(key, 2)
    return key, jax.numpy.concatenate([jax.random.split(part1, n1 + n2 + 1)[:-1], jax.random.split(part2, n3)])


def authors_normals(problem, seed, n_warmup):
    """Their normals for one seed in smile_ref's draw order: the init draw, then per step ``z(key2)``, ``z(key1)``."""
    import jax
    import jax.numpy as jnp

    key, steps = keys(seed, n_warmup)
    d = problem.dim

    def pair(k):
        k1, k2 = jax.random.split(k)
        return jnp.stack([jax.random.normal(k2, (d,), dtype=jnp.float64), jax.random.normal(k1, (d,), dtype=jnp.float64)])

    z = np.asarray(jax.jit(jax.vmap(pair))(steps)).reshape(-1, d)
    return [np.asarray(jax.random.normal(key, (d,), dtype=jnp.float64))[None, :]] + [r[None, :] for r in z]


def run_authors(problem, seed, n_warmup, trace=False, check_run=False):
    """Their ``make_L_step_size_adaptation`` then ``make_adaptation_L`` (the settings of ``custom_mclmc_warmup``
    and the UCI MILE configs: energy variance 0.5 -> 0.1, N_eff 100, trust 1.5, no diagonal preconditioning),
    one chain; with ``trace`` the position after every step; with ``check_run`` also their
    ``custom_mclmc_warmup(...).run`` itself (``eps_run``, ``L_run``, ``x_run``)."""
    import importlib

    import blackjax
    import jax
    import jax.numpy as jnp
    from blackjax.adaptation.mclmc_adaptation import MCLMCAdaptationState

    warm = importlib.import_module("src.kernels.warmup")
    logdensity = problem.jax_logdensity()
    d, eps0 = problem.dim, problem.step_size
    rec = []

    def kernel(sqrt_diag_cov):
        k = blackjax.mcmc.mclmc.build_kernel(logdensity_fn=logdensity, sqrt_diag_cov=sqrt_diag_cov,
                                             integrator=blackjax.mcmc.integrators.isokinetic_mclachlan)
        if not trace:
            return k

        def traced(rng_key, state, L, step_size):
            new, info = k(rng_key=rng_key, state=state, L=L, step_size=step_size)
            jax.debug.callback(lambda x, e: rec.append((np.array(x), float(e))), new.position, step_size, ordered=True)
            return new, info

        return traced

    n1, n2, n3 = phases(n_warmup)
    key, _ = keys(seed, n_warmup)
    part1, part2 = jax.random.split(key, 2)
    x0 = jnp.asarray(problem.start(seed))
    state = blackjax.mcmc.mclmc.init(x0, logdensity, key)
    params = MCLMCAdaptationState(L=jnp.maximum(jnp.sqrt(d), 15.0), step_size=eps0, sqrt_diag_cov=jnp.ones((d,)))
    state, params = warm.make_L_step_size_adaptation(
        kernel=kernel, dim=d, tune1_steps=n1, tune2_steps=n2, diagonal_preconditioning=False,
        desired_energy_var_start=0.5, desired_energy_var_end=0.1, trust_in_estimate=1.5,
        num_effective_samples=100)(state, params, part1)
    out = {"L_phase2": float(params.L)}
    state, params = warm.make_adaptation_L(kernel(params.sqrt_diag_cov), Lfactor=0.4)(state, params, n3, part2)
    jax.effects_barrier()
    out.update(eps=float(params.step_size), L=float(params.L), x=np.array(state.position, dtype=np.float64))
    if trace:
        out["x_trace"] = np.stack([r[0] for r in rec])
        out["eps_trace"] = np.array([r[1] for r in rec])
    if check_run:
        st, pr = warm.custom_mclmc_warmup(logdensity, diagonal_preconditioning=False, desired_energy_var_start=0.5,
                                          desired_energy_var_end=0.1, trust_in_estimate=1.5, num_effective_samples=100,
                                          step_size_init=eps0).run(key, x0, n_warmup)
        out.update(eps_run=float(pr.step_size), L_run=float(pr.L), x_run=np.array(st.position, dtype=np.float64))
    return out


def run_smile_ref(problem, seed, n_warmup, normals, overrides=None, trace=False, x0_scale=1.0, stop=None):
    """``"mclmc"`` with ``preset="authors"`` (``tuner="mile"``), one chain, the replayed normals; ``stop``: only
    the first ``stop`` warm-up steps (of a warm-up of ``n_warmup``)."""
    from smile_ref.backend import get_backend
    from smile_ref.gradients import Exact
    from smile_ref.samplers import base as registry

    t = problem.smile_ref_target()
    opts = {"step_size": problem.step_size, **dict(overrides or {})}
    algo = registry.get("mclmc")(t, Exact(t), get_backend("numpy", "float64"), n_warmup=n_warmup, preset="authors",
                                 **opts)
    rng = ReplayNormals(normals)
    state = algo.init(np.array(problem.start(seed)[None, :] * x0_scale, dtype=np.float64), rng)
    n12 = sum(phases(n_warmup)[:2])
    xs, eps, out = [], [], {}
    for i in range(n_warmup if stop is None else min(stop, n_warmup)):
        eps.append(float(state.params.step_size[0]))
        state, _ = algo.step(state, rng, True)
        if trace:
            xs.append(np.array(state.integrator.position[0]))
        if i == n12 - 1:
            out["L_phase2"] = float(state.params.L[0])
    out.update(eps=float(state.params.step_size[0]), L=float(state.params.L[0]), x=np.array(state.integrator.position[0]),
               n_rejected=int(state.tuner_state.n_rejected[0]))
    if trace:
        out["x_trace"], out["eps_trace"] = np.stack(xs), np.array(eps)
    return out


def divergence(a, b, tols=(1e-10, 1e-3)):
    """First step (1-based) with ``max |dx| > tol`` for each tol, and the growth rate of ``max |dx|`` (over the
    steps both traces have)."""
    n = min(a.shape[0], b.shape[0])
    dx = np.max(np.abs(a[:n] - b[:n]), axis=1)
    run = np.maximum.accumulate(dx)
    out = {f"first_above_{t:g}": (int(np.argmax(run > t)) + 1 if run[-1] > t else None) for t in tols}
    out["dx_step1"], out["dx_max"], out["dx_last"] = float(dx[0]), float(dx.max()), float(dx[-1])
    lo = int(np.argmax(run > 1e-13)) if run[-1] > 1e-13 else None
    hi = int(np.argmax(run > 1e-4)) if run[-1] > 1e-4 else len(run)
    if lo is not None and hi - lo >= 10:
        t = np.arange(lo, hi)
        out["decades_per_1000_steps"] = float(1000.0 * np.polyfit(t, np.log10(run[lo:hi]), 1)[0])
    else:
        out["decades_per_1000_steps"] = None
    return out


def _mse(v):
    v = np.asarray([x for x in v if x is not None], dtype=np.float64)
    if v.size == 0:
        return None, None
    return float(v.mean()), (float(v.std(ddof=1) / math.sqrt(v.size)) if v.size > 1 else None)


def run_full(seeds, n_warmup, problems=("gaussian", "mlp"), normals_fn=None, log=print):
    """Full warm-ups on each problem and seed; ``normals_fn(problem, seed, n_warmup)`` replaces the authors'
    normals and smile_ref itself stands in for their code (tests, no jax)."""
    res = {}
    for pname in problems:
        problem = PROBLEMS[pname]()
        if normals_fn is None:
            _check_logdensity(problem)
        rows = []
        for seed in seeds:
            if normals_fn is None:
                ref = run_authors(problem, seed, n_warmup, trace=True)
                normals = authors_normals(problem, seed, n_warmup)
            else:
                normals = normals_fn(problem, seed, n_warmup)
                ref = run_smile_ref(problem, seed, n_warmup, normals, trace=True)
            ours = run_smile_ref(problem, seed, n_warmup, normals, trace=True)
            ctrl = run_smile_ref(problem, seed, n_warmup, normals, trace=True, x0_scale=1.0 + 1e-15,
                                 stop=CONTROL_STEPS)
            row = {"seed": seed, **{f"{k}_{side}": r[k] for side, r in (("authors", ref), ("smile_ref", ours))
                                    for k in ("eps", "L_phase2", "L")},
                   "vs_authors": divergence(ref["x_trace"], ours["x_trace"]),
                   "control": divergence(ours["x_trace"], ctrl["x_trace"]), "n_rejected_smile_ref": ours["n_rejected"],
                   "eps_step_first_rel_1e-10": _first_rel(ref["eps_trace"], ours["eps_trace"], 1e-10)}
            rows.append(row)
            log(f"MILE full / {pname} / seed {seed}: eps {row['eps_authors']:.6g} vs {row['eps_smile_ref']:.6g}, "
                f"L {row['L_authors']:.6g} vs {row['L_smile_ref']:.6g}, dx > 1e-10 from step "
                f"{row['vs_authors']['first_above_1e-10']}")
        summ = {}
        for q in ("eps", "L_phase2", "L"):
            summ[q] = {"authors": _mse([r[f"{q}_authors"] for r in rows]),
                       "smile_ref": _mse([r[f"{q}_smile_ref"] for r in rows]),
                       "paired_smile_ref_minus_authors": _mse([r[f"{q}_smile_ref"] - r[f"{q}_authors"] for r in rows])}
        for side in ("vs_authors", "control"):
            summ[side] = {k: _mse([r[side][k] for r in rows]) for k in
                          ("first_above_1e-10", "first_above_0.001", "decades_per_1000_steps")}
        res[pname] = {"dim": problem.dim, "n_warmup": n_warmup, "seeds": list(seeds), "rows": rows, "summary": summ}
    return res


def _first_rel(a, b, tol):
    bad = np.nonzero(np.abs(a - b) > tol * np.abs(a))[0]
    return int(bad[0]) + 1 if bad.size else None


def _check_logdensity(problem):
    """The JAX log-density has smile_ref's gradient and log-density differences (to 1e-12 relative)."""
    import jax

    t = problem.smile_ref_target()
    x = problem.start(0)[None, :] + 0.1 * np.random.default_rng(3).standard_normal((2, problem.dim))
    lp, g = (np.asarray(v) for v in t.logdensity_and_grad(x))
    f = jax.jit(jax.vmap(jax.value_and_grad(problem.jax_logdensity())))
    lp_j, g_j = (np.asarray(v) for v in f(jax.numpy.asarray(x)))
    scale = max(1.0, float(np.max(np.abs(lp))))
    if not (abs((lp[1] - lp[0]) - (lp_j[1] - lp_j[0])) <= 1e-12 * scale
            and np.max(np.abs(g - g_j)) <= 1e-12 * max(1.0, float(np.max(np.abs(g))))):
        raise AssertionError(f"{problem.name}: the JAX log-density does not match smile_ref's target")


def _pm(m_se, fmt="{:.4g}"):
    m, se = m_se
    if m is None:
        return "n/a"
    return fmt.format(m) + ("" if se is None else " ± " + fmt.format(se))


def markdown(res: dict) -> str:
    lines = []
    for pname, r in res.items():
        s = r["summary"]
        lines += ["", f"## MILE full warm-up: {pname} (d = {r['dim']}, {r['n_warmup']} steps, seeds {r['seeds']})", "",
                  "Mean ± SE over seeds (one chain per seed).", "",
                  "| quantity | authors | smile_ref preset='authors' | paired smile_ref − authors |", "|---|---|---|---|"]
        for q, lab in (("eps", "tuned ε"), ("L_phase2", "L after phase 2"), ("L", "final L")):
            lines.append(f"| {lab} | {_pm(s[q]['authors'])} | {_pm(s[q]['smile_ref'])} | "
                         f"{_pm(s[q]['paired_smile_ref_minus_authors'], '{:.2e}')} |")
        lines += ["", "| max abs dx | first step > 1e-10 | first step > 1e-3 | growth (decades / 1000 steps) |",
                  "|---|---|---|---|"]
        for side, lab in (("vs_authors", "smile_ref vs authors"), ("control", f"smile_ref vs smile_ref from x0 (1 + 1e-15), first {CONTROL_STEPS} steps")):
            v = s[side]
            lines.append(f"| {lab} | {_pm(v['first_above_1e-10'], '{:.0f}')} | {_pm(v['first_above_0.001'], '{:.0f}')} | "
                         f"{_pm(v['decades_per_1000_steps'], '{:.3g}')} |")
        lines += ["", "| seed | ε authors | ε smile_ref | L authors | L smile_ref | dx > 1e-10 | dx > 1e-3 | ε rel > 1e-10 | "
                  "smile_ref rejections |", "|---|---|---|---|---|---|---|---|---|"]
        for row in r["rows"]:
            va = row["vs_authors"]
            lines.append(f"| {row['seed']} | {row['eps_authors']:.6g} | {row['eps_smile_ref']:.6g} | {row['L_authors']:.6g} | "
                         f"{row['L_smile_ref']:.6g} | {va['first_above_1e-10']} | {va['first_above_0.001']} | "
                         f"{row['eps_step_first_rel_1e-10']} | {row['n_rejected_smile_ref']} |")
    return "\n".join(lines) + "\n"
