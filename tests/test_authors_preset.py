"""preset="authors" for smile/psmile and the options it sets; MiniBatch's authors' scale and schedule;
the smile_ref side of validation/crosscheck_authors.py with a stand-in for the authors' kernels."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

import smile_ref
from smile_ref.backend import get_backend, to_numpy
from smile_ref.gradients import MiniBatch, Replay
from smile_ref.integrators.coefficients import get_integrator
from smile_ref.integrators.isokinetic import IntegratorState, isokinetic_step
from smile_ref.preconditioners.noise_scale import noise_scale_preconditioner
from smile_ref.samplers import base as registry
from smile_ref.samplers.smile import AUTHORS_PRESETS, apply_preset
from smile_ref.targets import LogisticRegression

BACKENDS = [("numpy", "float64", None), ("array_api_strict", "float64", None),
            ("array_api_strict", "float32", "device1")]
IDS = ["numpy-f64", "strict-f64", "strict-device1-f32"]


def _noisy_gaussian(seed=0, d=4, n=3, steps=40):
    """Replay gradient of N(0, diag(c^2)) with additive anisotropic noise, and its noise draws."""
    rs = np.random.default_rng(seed)
    prec = 1.0 / np.linspace(0.5, 2.0, d) ** 2
    sd = np.linspace(0.5, 3.0, d)
    noise = [rs.standard_normal((n, d)) * sd for _ in range(steps)]

    def fn(x, xi):
        return -0.5 * np.sum(prec * x * x, axis=1) + np.sum(xi * x, axis=1), -prec * x + xi

    return fn, noise, smile_ref.targets.Gaussian(np.zeros(d), np.diag(1.0 / prec)), rs.standard_normal((n, d))


def _run(sampler, be, fn, batches, target, x0, n_steps, n_warmup=0, step_size=0.1, **options):
    algo = registry.get(sampler)(target, Replay(fn, batches), be, step_size=step_size, n_warmup=n_warmup, **options)
    state = algo.init(be.xp.asarray(x0, dtype=be.dtype, device=be.device), None)
    states, infos = [state], []
    for t in range(n_steps):
        state, info = algo.step(state, None, t < n_warmup)
        states.append(state)
        infos.append(info)
    return algo, states, infos


# ----------------------------------------------------------------------------- preset mechanics
def test_preset_values_and_explicit_options_win():
    opts = apply_preset("psmile", "authors", {})
    assert opts["tuner"] == "energy_error"  # pinned, whatever smile_ref's default tuner is
    assert opts["tuner_options"]["reset_prob"] == 0.99 and opts["tuner_options"]["alpha"] == 0.05
    assert opts["tuner_options"]["winsorize_rejected"] is False
    assert opts["energy_error"] == "cross_batch" and opts["reset_keeps_rejected_gradient"] is True
    assert opts["initial_state"] == "zero" and opts["warmup_boundary_reset"] is True
    assert opts["first_b_preconditioner"] == "previous"
    assert opts["preconditioner_options"]["carry_mean"] is False and opts["preconditioner_options"]["init_mean"] == 1.0
    assert "first_b_preconditioner" not in apply_preset("smile", "authors", {})
    # explicit keys win; dict options merge key by key
    o = apply_preset("psmile", "authors", {"energy_error": "same_batch",
                                           "tuner_options": {"reset_prob": 0.98, "alpha": 0.1},
                                           "preconditioner_options": {"carry_mean": True}})
    assert o["energy_error"] == "same_batch"
    assert o["tuner_options"]["reset_prob"] == 0.98 and o["tuner_options"]["winsorize_rejected"] is False
    assert o["preconditioner_options"] == dict(AUTHORS_PRESETS["psmile"]["preconditioner_options"], carry_mean=True)
    # another tuner drops the energy-error tuner's options; a dense preconditioner drops P2
    o = apply_preset("smile", "authors", {"tuner": "mclmc"})
    assert o["tuner"] == "mclmc" and "tuner_options" not in o
    o = apply_preset("psmile", "authors", {"preconditioner": "dense"})
    assert "first_b_preconditioner" not in o and "preconditioner_options" not in o
    assert apply_preset("smile", None, {"a": 1}) == {"a": 1}
    with pytest.raises(ValueError, match="preset"):
        apply_preset("smile", "paper", {})
    with pytest.raises(TypeError):  # the preset is read-only
        AUTHORS_PRESETS["smile"]["tuner"] = None


def test_preset_through_run_chains_and_other_tuners():
    fn, noise, target, x0 = _noisy_gaussian(steps=12)
    res = smile_ref.run_chains("psmile", target, gradient=Replay(fn, noise), n_chains=3, n_steps=8, burn_in=4,
                               seed=0, step_size=0.1, initial_position=x0, progress=False, preset="authors")
    assert res.samples.shape == (3, 8, 4)
    assert np.all(np.isfinite(res.samples))
    be = get_backend()
    algo = registry.get("smile")(target, Replay(fn, noise), be, step_size=0.1, n_warmup=5, preset="authors",
                                 tuner="mclmc", energy_error="same_batch")  # a Var[dE]/d target needs same_batch
    assert algo.tuner.reset_rule is None and math.isfinite(algo.max_energy_error)
    assert [r.name for r in algo.reset_rules] == [f"energy_limit({algo.max_energy_error:g})"]


def test_bad_authors_options():
    fn, noise, target, _ = _noisy_gaussian()
    be = get_backend()
    build = registry.get("smile")
    with pytest.raises(ValueError, match="first_b_preconditioner='previous' needs the diagonal"):
        build(target, Replay(fn, noise), be, step_size=0.1, tuner=None, first_b_preconditioner="previous")
    with pytest.raises(ValueError, match="initial_state"):
        build(target, Replay(fn, noise), be, step_size=0.1, tuner=None, initial_state="x0")
    with pytest.raises(TypeError, match="warmup_boundary_reset must be a bool"):
        build(target, Replay(fn, noise), be, step_size=0.1, tuner=None, warmup_boundary_reset=1)


# ----------------------------------------------------------------------------- zero initial state
@pytest.mark.parametrize("bk", BACKENDS, ids=IDS)
def test_zero_initial_state(bk):
    """No draw and no evaluation at init; the first B leaves u = 0; the first dE is the kinetic change only."""
    be = get_backend(*bk)
    fn, noise, target, x0 = _noisy_gaussian(steps=5)
    algo, states, infos = _run("smile", be, fn, noise, target, x0, 5, preset="authors")  # 5 batches for 5 steps
    assert algo.init_grad_evals == 0
    s0 = states[0]
    assert np.all(to_numpy(s0.integrator.logdensity_grad) == 0) and np.all(to_numpy(s0.integrator.logdensity) == 0)
    assert np.array_equal(to_numpy(infos[0]["energy_error"]), to_numpy(infos[0]["kinetic_change"]))
    assert not np.array_equal(to_numpy(infos[1]["energy_error"]), to_numpy(infos[1]["kinetic_change"]))
    # step 1 by hand: B(0 gradient) A B A B from u = 0 on batch 0
    xp = be.xp
    x = xp.asarray(x0, dtype=be.dtype, device=be.device)

    def f(z):
        lp, g = fn(to_numpy(z), noise[0])
        return xp.asarray(lp, dtype=be.dtype, device=be.device), xp.asarray(g, dtype=be.dtype, device=be.device)

    z = xp.zeros_like(x)
    new, _ = isokinetic_step(IntegratorState(x, z, z[:, 0], z), 0.1, f, get_integrator("mclachlan"))
    np.testing.assert_allclose(to_numpy(states[1].integrator.position), to_numpy(new.position),
                               rtol=0, atol=1e-12 if be.dtype == xp.float64 else 1e-5)


def test_warmup_boundary_reset():
    """At the first sampling step u, g and l are zero before the step; not at any other step."""
    be = get_backend()
    fn, noise, target, x0 = _noisy_gaussian(steps=12)
    _, states, infos = _run("smile", be, fn, noise, target, x0, 8, n_warmup=4, preset="authors", tuner=None)
    xw = states[4].integrator.position
    f = lambda z: fn(z, noise[4])  # noqa: E731
    z = np.zeros_like(xw)
    new, dK = isokinetic_step(IntegratorState(xw, z, z[:, 0], z), 0.1, f, get_integrator("mclachlan"))
    assert np.array_equal(states[5].integrator.position, new.position)
    assert np.array_equal(infos[4]["energy_error"], dK)  # no log-density term after the reset
    assert states[5].sampling_started and not states[4].sampling_started
    # without the option the sampling step continues from the warm-up state
    _, states2, _ = _run("smile", be, fn, noise, target, x0, 8, n_warmup=4, preset="authors", tuner=None,
                         warmup_boundary_reset=False)
    assert np.array_equal(states2[4].integrator.position, xw)
    assert not np.allclose(states2[5].integrator.position, new.position)
    # no warm-up: nothing to reset (the zero initial state is the authors' start anyway)
    _, s3, _ = _run("smile", be, fn, noise, target, x0, 3, preset="authors", tuner=None)
    _, s4, _ = _run("smile", be, fn, noise, target, x0, 3, preset="authors", tuner=None, warmup_boundary_reset=False)
    assert np.array_equal(s3[-1].integrator.position, s4[-1].integrator.position)


# ----------------------------------------------------------------------------- P1 and P2
@pytest.mark.parametrize("bk", BACKENDS, ids=IDS)
def test_preconditioner_without_carried_mean(bk):
    """carry_mean=False: m_t = rho m0 + (1 - rho) g_t, v_t = rho v + (1 - rho)(g_t - m_t)^2 = ... rho^2 (g - m0)^2."""
    be = get_backend(*bk)
    xp = be.xp
    rs = np.random.default_rng(1)
    gs = [rs.standard_normal((2, 3)) * 4 for _ in range(5)]
    pc = noise_scale_preconditioner(init_mean=1.0, carry_mean=False)
    st = pc.init(xp.asarray(gs[0], dtype=be.dtype, device=be.device))
    v = np.ones((2, 3))
    for g in gs:
        st = pc.update(st, xp.asarray(g, dtype=be.dtype, device=be.device))
        v = 0.99 * v + 0.01 * (0.99 * (g - 1.0)) ** 2
    tol = 1e-12 if be.dtype == xp.float64 else 1e-5
    np.testing.assert_allclose(to_numpy(st.var), v, rtol=tol)
    np.testing.assert_allclose(to_numpy(st.mean), 0.99 + 0.01 * gs[-1], rtol=tol)
    # carried mean (default) differs
    st2 = noise_scale_preconditioner(init_mean=1.0).init(xp.asarray(gs[0], dtype=be.dtype, device=be.device))
    for g in gs:
        st2 = noise_scale_preconditioner(init_mean=1.0).update(st2, xp.asarray(g, dtype=be.dtype, device=be.device))
    assert not np.allclose(to_numpy(st2.var), v)
    # floor_stored_var keeps the floored value in the state
    pf = noise_scale_preconditioner(floor_stored_var=True, init_std=1e-6)
    s = pf.update(pf.init(xp.zeros((1, 2), dtype=be.dtype, device=be.device)), xp.zeros((1, 2), dtype=be.dtype,
                                                                                       device=be.device))
    assert np.all(to_numpy(s.var) == np.asarray(1e-7, dtype=to_numpy(s.var).dtype))
    with pytest.raises(TypeError, match="carry_mean must be a bool"):
        noise_scale_preconditioner(carry_mean=0)


def test_first_b_uses_previous_preconditioner():
    """P2: step t+1's first B sees S_t g_t.  With the preconditioner frozen (sampling,
    freeze_preconditioner=True) S_t = S_{t+1} and both rules agree exactly; while it adapts they differ."""
    be = get_backend()
    fn, noise, target, x0 = _noisy_gaussian(steps=40)
    kw = dict(preset="authors", tuner=None, n_warmup=5, warmup_boundary_reset=False)
    _, a, _ = _run("psmile", be, fn, noise, target, x0, 30, freeze_preconditioner=True, **kw)
    _, b, _ = _run("psmile", be, fn, noise, target, x0, 30, freeze_preconditioner=True,
                   first_b_preconditioner="current", **kw)
    # S adapts during the 5 warm-up steps, so the two rules give different trajectories there
    assert not np.array_equal(a[5].integrator.position, b[5].integrator.position)
    # one frozen step from the same state: identical for both rules
    algo_p = registry.get("psmile")(target, Replay(fn, noise), be, step_size=0.1, n_warmup=5,
                                    freeze_preconditioner=True, **{k: v for k, v in kw.items() if k != "n_warmup"})
    algo_c = registry.get("psmile")(target, Replay(fn, noise), be, step_size=0.1, n_warmup=5,
                                    freeze_preconditioner=True, first_b_preconditioner="current",
                                    **{k: v for k, v in kw.items() if k != "n_warmup"})
    s = a[10]  # S_prev == S_cur: the preconditioner was frozen at step 6
    np.testing.assert_array_equal(s.grad_sqrt_diag, algo_p.precond.sqrt_diag(s.precond_state))
    ns_p, _ = algo_p.step(s, None, False)
    ns_c, _ = algo_c.step(s, None, False)
    np.testing.assert_allclose(ns_p.integrator.position, ns_c.integrator.position, rtol=0, atol=1e-15)
    # while adapting, the first B differs by S_t / S_{t+1}
    s = a[3]
    assert not np.allclose(s.grad_sqrt_diag, algo_p.precond.sqrt_diag(s.precond_state))
    ns_p, _ = algo_p.step(s, None, True)
    ns_c, _ = algo_c.step(s, None, True)
    assert np.max(np.abs(ns_p.integrator.position - ns_c.integrator.position)) > 1e-8


@pytest.mark.parametrize("sampler", ["smile", "psmile"])
def test_preset_backends_agree(sampler):
    """NumPy and array_api_strict run the preset to the same trajectory (float64)."""
    fn, noise, target, x0 = _noisy_gaussian(steps=30)
    out = []
    for bk in BACKENDS[:2]:
        _, states, infos = _run(sampler, get_backend(*bk), fn, noise, target, x0, 30, n_warmup=10, preset="authors")
        out.append((to_numpy(states[-1].integrator.position), [to_numpy(i["rejected"]) for i in infos]))
    np.testing.assert_allclose(out[0][0], out[1][0], rtol=0, atol=1e-12)
    assert all(np.array_equal(p, q) for p, q in zip(out[0][1], out[1][1]))


# ----------------------------------------------------------------------------- MiniBatch options
def _logistic(n=103, d=3, seed=0):
    rs = np.random.default_rng(seed)
    X = rs.standard_normal((n, d))
    return LogisticRegression(X, (rs.random(n) < 0.5).astype(float))


@pytest.mark.parametrize("bk", BACKENDS, ids=IDS)
def test_minibatch_floor_scale(bk):
    be = get_backend(*bk)
    t = _logistic()
    x = be.xp.asarray(np.random.default_rng(2).standard_normal((2, 3)), dtype=be.dtype, device=be.device)
    idx = be.xp.asarray(np.array([np.arange(10), np.arange(10, 20)]), dtype=be.xp.int64, device=be.device)
    lp_u, g_u = MiniBatch(t, 10).evaluate(x, idx)
    lp_f, g_f = MiniBatch(t, 10, scale="floor").evaluate(x, idx)
    xn = to_numpy(x).astype(np.float64)
    prior_lp = -0.5 * np.sum(xn * xn, axis=1) - 1.5 * np.log(2 * np.pi)
    tol = 1e-10 if be.dtype == be.xp.float64 else 1e-3
    # floor(103/10) = 10 against 10.3: the likelihood part scales by 10/10.3
    np.testing.assert_allclose(to_numpy(lp_f) - prior_lp, (to_numpy(lp_u) - prior_lp) * 10 / 10.3, rtol=tol)
    np.testing.assert_allclose(to_numpy(g_f) + xn, (to_numpy(g_u) + xn) * 10 / 10.3, rtol=tol, atol=tol)
    cov_u = MiniBatch(t, 10).noise_covariance(x, kind="diag")
    cov_f = MiniBatch(t, 10, scale="floor").noise_covariance(x, kind="diag")
    np.testing.assert_allclose(to_numpy(cov_f), to_numpy(cov_u) * (100 / 103) ** 2, rtol=tol)


def test_minibatch_authors_schedule():
    """Each epoch permutes the first floor(N/b) b examples; the last N mod b are never used."""
    t = _logistic(n=103)
    mb = MiniBatch(t, 10, schedule="authors")
    rng = smile_ref.backend.make_random(0, get_backend())
    st = mb.init(2, rng)
    assert st["perm"].shape == (2, 100)
    seen = []
    for _ in range(30):  # 3 epochs of 10 batches
        idx, st = mb.draw_host(st, rng, 2)
        seen.append(idx)
    seen = np.stack(seen)  # (30, 2, 10)
    for e in range(3):
        for c in range(2):
            assert np.array_equal(np.sort(seen[10 * e:10 * (e + 1), c].ravel()), np.arange(100))
    assert st["epoch"] == 2
    assert mb.describe()["schedule"] == "authors" and "scale" not in mb.describe()
    assert "schedule" not in MiniBatch(t, 10).describe()  # default descriptions (golden sidecars) unchanged
    with pytest.raises(ValueError, match="scale"):
        MiniBatch(t, 10, scale="exact")
    with pytest.raises(ValueError, match="needs replace=False"):
        MiniBatch(t, 10, replace=True, schedule="authors")


# ----------------------------------------------------------------------------- the cross-check script
def _load_crosscheck():
    import importlib

    return importlib.import_module("validation.crosscheck_authors")


def test_crosscheck_script_smile_ref_side(tmp_path):
    """The script's smile_ref side, problems and report, with smile_ref itself standing in for the authors'
    kernels: all differences 0, identical resets, JSON and Markdown written (no jax needed)."""
    mod = _load_crosscheck()

    def stand_in(problem, pairing, batches, n, w):
        return mod.run_smile_ref(problem, pairing, batches, n, w)

    rc = mod.main(["--out", str(tmp_path), "--steps", "12", "--warmup", "4", "--ablations"], authors_runner=stand_in)
    assert rc == 0
    doc = json.loads((tmp_path / "authors_crosscheck.json").read_text())
    assert set(doc["results"]) == {f"{p} / {q}" for p in mod.PROBLEMS for q in list(mod.PAIRINGS) + ["SGHMC", "SGLD", "AdaSGHMC"]}
    for r in doc["results"].values():
        assert set(r["after_step"]) == {"1", "10"}
        assert all(v in (0.0, None) for v in r["max_over_steps"].values())
        assert r["resets_identical"]
    # every ablation changes the trajectory of at least one problem within 12 steps, except those whose
    # effect needs resets or a non-default path that 12 steps may not reach
    abl = doc["ablations"]
    assert abl["gaussian / pSMILE (NOISYSMILE) / carry_mean=True (P1 fixed)"]["x_max"] > 0
    assert abl["logistic / SMILE (SMILET) / MiniBatch scale N/b"]["x_step1"] > 0
    assert abl["gaussian / SMILE (SMILET) / initial_state='evaluate' (x0 evaluated)"]["x_step1"] > 0
    assert abl["gaussian / SGHMC / beta_hat=0"]["x_step1"] > 0 and abl["logistic / SGHMC / v0 ~ N(0, eta)"]["x_step1"] > 0
    assert abl["gaussian / AdaSGHMC / moment_gradient='current'"]["x_step1"] > 0
    mile = doc["mile"]
    assert all(mile["preset"][q] == 0.0 for q in ("eps", "L_phase2", "L", "x"))
    assert mile["ablations"]["ess_method='split'"]["L"] > 0 and mile["ablations"]["moment_weight='step'"]["L_phase2"] > 0
    md = (tmp_path / "authors_crosscheck.md").read_text()
    assert "| gaussian / SMILE-naive | 1 |" in md and "One smile_ref default at a time" in md
    assert mod.main(["--out", str(tmp_path)]) == 2  # no --authors-src: a message, not a traceback


def test_crosscheck_script_mile_full_smile_ref_side(tmp_path):
    """``--mile-full`` with smile_ref standing in for the authors' warm-up: the 250-step check and the whole
    warm-ups agree exactly (no divergence step), the control run from ``x0 (1 + 1e-15)`` separates on the MLP,
    JSON and Markdown written (no jax needed)."""
    mod = _load_crosscheck()
    rc = mod.main(["--out", str(tmp_path), "--mile-full", "--mile-warmup", "300", "--mile-seeds", "2"],
                  authors_runner=lambda *a: None)
    assert rc == 0
    doc = json.loads((tmp_path / "mile_full.json").read_text())
    assert all(doc["mile"]["preset"][q] == 0.0 for q in ("eps", "L_phase2", "L", "x"))
    full = doc["mile_full"]
    assert set(full) == {"gaussian", "mlp"}
    for name, r in full.items():
        assert r["n_warmup"] == 300 and r["seeds"] == [0, 1]
        for row in r["rows"]:
            assert row["vs_authors"]["dx_max"] == 0.0 and row["vs_authors"]["first_above_1e-10"] is None
            assert row["eps_authors"] == row["eps_smile_ref"] and row["L_authors"] == row["L_smile_ref"]
            assert row["eps_step_first_rel_1e-10"] is None
        assert r["summary"]["eps"]["paired_smile_ref_minus_authors"][0] == 0.0
    assert all(row["control"]["dx_max"] > 0.0 for row in full["mlp"]["rows"])
    md = (tmp_path / "mile_full.md").read_text()
    assert "MILE full warm-up: gaussian" in md and "MILE full warm-up: mlp" in md
    with pytest.raises(SystemExit):
        mod.main(["--out", str(tmp_path), "--mile-full", "--mile-seeds", "1"], authors_runner=lambda *a: None)


def test_crosscheck_mile_problems():
    """The MILE check's NumPy MLP is smile_ref's ``targets.MLP`` (same layout, log-density and gradient), and the
    divergence summary reads an exponential separation correctly."""
    mod = _load_crosscheck()
    from smile_ref.targets import MLP

    p = mod._mile.MLPProblem()
    t = MLP(p.X, p.y, hidden=(8, 8), activation="relu", prior_scale=1.0)
    x = np.random.default_rng(0).standard_normal((3, p.dim))
    lp, g = t.logdensity_and_grad(x)
    lp2, g2 = p._logdensity_and_grad(x)
    np.testing.assert_allclose(lp2, lp, rtol=1e-13)
    np.testing.assert_allclose(g2, g, rtol=1e-12, atol=1e-12)
    assert p.dim == t.dim == 106 and p.start(0).shape == (106,)
    # |dx_t| = 1e-16 * 10^(t / 100) (t = 0, 1, ...): 10 decades per 1000 steps, > 1e-10 from step 602
    steps = np.arange(2000)
    a = np.zeros((2000, 3))
    b = a.copy()
    b[:, 1] = 1e-16 * 10.0 ** (steps / 100.0)
    d = mod._mile.divergence(a, b)
    assert d["first_above_1e-10"] == 602 and d["first_above_0.001"] == 1302
    assert d["decades_per_1000_steps"] == pytest.approx(10.0, rel=1e-9)


# ----------------------------------------------------------------------------- SGHMC preset
def test_sghmc_authors_preset():
    """preset='authors' for sghmc: v0 = 0, beta_hat = eta/2, clipped gradients; one step by hand equals the
    authors' update m' = (1 - a) m + eps g + sqrt(2a - eps^2) z, x' = x + eps m' with eta = eps^2."""
    be = get_backend()
    eps, a = 0.1, 0.05
    fn, noise, target, x0 = _noisy_gaussian(steps=5)
    build = registry.get("sghmc")
    k = build(target, Replay(fn, noise), be, step_size=eps**2, preset="authors", alpha=a)
    assert k.beta_hat == eps**2 / 2 and k.initial_velocity == "zero" and k.clip == 1e6
    rng = smile_ref.backend.make_random(5, be)
    st = k.init(np.array(x0), rng)
    assert np.all(st.velocity == 0)
    ref_rng = smile_ref.backend.make_random(5, be)
    st1, _ = k.step(st, rng, False)
    z = ref_rng.normal(x0.shape, dtype=np.float64)  # the one normal draw of the step (init drew none)
    g = fn(x0, noise[0])[1]
    m1 = eps * g + np.sqrt(2 * a - eps**2) * z  # authors, from m = 0
    np.testing.assert_allclose(st1.position, x0 + eps * m1, rtol=0, atol=1e-14)
    np.testing.assert_allclose(st1.velocity, eps * m1, rtol=0, atol=1e-14)
    # explicit options win; bad preset or options are errors
    assert build(target, Replay(fn, noise), be, step_size=0.01, preset="authors", beta_hat=0.0).beta_hat == 0.0
    with pytest.raises(ValueError, match="preset"):
        build(target, Replay(fn, noise), be, step_size=0.01, preset="paper")
    with pytest.raises(ValueError, match="initial_velocity"):
        build(target, Replay(fn, noise), be, step_size=0.01, initial_velocity="none")
    with pytest.raises(ValueError, match="beta_hat"):  # eps^2 / 2 > alpha: the authors clip, we refuse
        build(target, Replay(fn, noise), be, step_size=0.5, preset="authors", alpha=0.1)


def test_preset_checkpoint_resume_bit_identical(tmp_path):
    """The preset's extra state (the previous preconditioner, the boundary flag) survives checkpoint/resume:
    crash after the warm-up -> sampling switch, resume from the checkpoint written after it."""
    from .sgmcmc_helpers import Crash, CrashAfter

    fn, noise, target, x0 = _noisy_gaussian(steps=20)
    kw = dict(n_chains=3, n_steps=8, burn_in=5, seed=4, step_size=0.1, progress=False, initial_position=x0,
              preset="authors")
    full = smile_ref.run_chains("psmile", target, gradient=Replay(fn, noise), **kw)
    path = tmp_path / "ck.npz"
    with pytest.raises(Crash):  # 2 evaluations per step: crash in step 11; checkpoints after steps 4 and 8
        smile_ref.run_chains("psmile", target, gradient=CrashAfter(Replay(fn, noise), 21), checkpoint=path,
                             checkpoint_every=4, **kw)
    resumed = smile_ref.run_chains("psmile", target, gradient=Replay(fn, noise), checkpoint=path,
                                   checkpoint_every=4, resume=True, **kw)
    np.testing.assert_array_equal(resumed.samples, full.samples)
    assert resumed.state.sampling_started


def test_authors_minibatch_in_a_run_and_in_golden_specs():
    from smile_ref.crosscheck.specs import build_gradient, gradient_spec

    t = _logistic(n=103)
    mb = MiniBatch(t, 10, scale="floor", schedule="authors")
    res = smile_ref.run_chains("psmile", t, gradient=mb, n_chains=2, n_steps=25, burn_in=5, seed=0, step_size=0.05,
                               progress=False, preset="authors")
    assert np.all(np.isfinite(res.samples))
    back = build_gradient(gradient_spec(mb), t)
    assert (back.scale, back.schedule) == ("floor", "authors")
    assert "scale" not in gradient_spec(MiniBatch(t, 10))["params"]  # default specs (golden files) unchanged
