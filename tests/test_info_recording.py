"""Thinned ``info`` rows (``run_chains(info=..., warmup_info=...)``) and the exact per-step counters.

Every comparison is against a second run of the same seed with ``info="all"`` (one row per step,
the per-step layout of old), computed here with plain loops and slices, not with the recorder's code:
the thinned rows must be the per-step rows at the draw steps, each window aggregate the sum / max of
the per-step values over its window, and run health the same in every mode.  The runs meet rejections
and non-finite steps (a NaN region of the target, random NaN gradients), so the counts are not
vacuous.  Deterministic (fixed seeds): failure probability 0.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import smile_ref
from smile_ref import gradients, targets
from smile_ref.errors import CorruptFileError, ResumeMismatchError, RunHealthWarning
from smile_ref.run.health import run_health
from smile_ref.run.stats import BINS_PER_DECADE, FINE_RANGE, StepStats

from .test_faults import START, TARGET, THRESHOLD, NaNRegion, RandomNaN, healthy_options

W, N, K = 23, 95, 7  # warm-up steps, sampling steps, thinning: 13 draws, 4 trailing steps after the last


def _run(name="smile", info="thinned", warmup_info="all", fault="region", raises=False, **kw):
    """A run of ``name`` on the fault-injection target (NaN region or random NaN gradients); it must warn
    (it meets non-finite values) unless it is expected to raise (``raises``)."""
    opts = healthy_options(name)
    opts.update(burn_in=W, thinning=K)
    opts.update(kw)
    base = opts.pop("gradient", None) or gradients.Exact(TARGET)
    est = NaNRegion(base, THRESHOLD) if fault == "region" else RandomNaN(base, 0.02, seed=3)
    if name in ("smile", "psmile"):
        opts.setdefault("tuner", "mclmc")
    with np.errstate(all="ignore"), (warnings.catch_warnings() if raises else pytest.warns(RunHealthWarning)):
        return smile_ref.run_chains(name, TARGET, gradient=est, n_chains=4, n_steps=N, seed=11, progress=False,
                                    initial_position=np.tile(START, (4, 1)), info=info, warmup_info=warmup_info,
                                    **opts)


def _window(steps, r, phase_start):
    """Steps of the window of row ``r``: after the previous row of the same phase, up to ``steps[r]``."""
    prev = steps[r - 1] if r > 0 and (steps[r - 1] >= phase_start) == (steps[r] >= phase_start) else None
    lo = phase_start if steps[r] >= phase_start and prev is None else (0 if prev is None else prev + 1)
    return slice(int(lo), int(steps[r]) + 1)


@pytest.mark.parametrize("name", ["smile", "mclmc", "sgld"])
@pytest.mark.parametrize("warmup_info", ["all", "thinned", "summary"])
def test_thinned_rows_are_the_draw_steps_and_windows_sum_the_per_step_values(name, warmup_info):
    full = _run(name, info="all")
    res = _run(name, warmup_info=warmup_info, block_size=5)  # blocks of 5 steps: windows cross block ends
    np.testing.assert_array_equal(res.samples, full.samples)
    draws = W + (np.arange(N // K) + 1) * K - 1
    warm = {"all": list(range(W)), "thinned": [6, 13, 20, 22], "summary": []}[warmup_info]
    assert res.info_steps.tolist() == warm + draws.tolist() and res.n_warmup_rows == len(warm)
    assert full.info_steps.tolist() == list(range(W + N)) and full.n_warmup_rows == W
    assert full.info["rejected"][W:].sum() > 0 and full.info["nonfinite"][W:].sum() > 0  # something to count
    for key, v in full.info.items():  # every per-step key: its value at the row's step
        np.testing.assert_array_equal(res.info[key], v[res.info_steps], err_msg=key)
        np.testing.assert_array_equal(res.sampling_info(key), v[draws], err_msg=key)
        assert res.info[key].dtype == v.dtype
    for r in range(res.info_steps.size):
        w = _window(res.info_steps, r, W)
        if res.info_steps[r] >= W:
            assert w.stop - w.start == K
        want_rej = full.info["rejected"][w].astype(np.int64).sum(axis=0)
        np.testing.assert_array_equal(res.info["n_rejected"][r], want_rej)
        np.testing.assert_array_equal(res.info["n_nonfinite"][r], full.info["nonfinite"][w].astype(np.int64).sum(axis=0))
        if "energy_error" in full.info:
            np.testing.assert_array_equal(res.info["max_abs_energy_error"][r],
                                          np.abs(full.info["energy_error"][w]).max(axis=0))
    assert res.info["n_rejected"].dtype == np.int64
    assert set(res.info) == set(full.info) | {"n_rejected", "n_nonfinite"} | (
        {"max_abs_energy_error"} if "energy_error" in full.info else set())


@pytest.mark.parametrize("info", ["thinned", "summary"])
@pytest.mark.parametrize("fault", ["region", "random"])
def test_health_and_counters_do_not_depend_on_the_rows_kept(info, fault):
    """Health comes from counters over every step: the same in every mode, and the same as run_health on
    the complete per-step arrays; n_rejected counts every step."""
    full = _run("sgld", info="all", fault=fault)
    res = _run("sgld", info=info, warmup_info="summary", fault=fault, block_size=3)
    assert res.stats.equal(full.stats)
    assert res.health.summary() == full.health.summary() and res.health.message() == full.health.message()
    ref = run_health(full.samples, full.info, sampler="sgld", n_warmup=W, dim=TARGET.dim)
    assert ref.summary() == full.health.summary()
    for field in ("n_rejected", "rejection_fraction", "n_nonfinite", "n_nonfinite_sampling", "step_size_min",
                  "step_size_max", "at_floor", "frozen"):
        np.testing.assert_array_equal(getattr(res.health, field), getattr(ref, field), err_msg=field)
    assert res.n_rejected == full.n_rejected == int(full.info["rejected"].sum()) > 0
    np.testing.assert_array_equal(res.stats.get("sampling", "nonfinite"), full.info["nonfinite"][W:].sum(axis=0))
    np.testing.assert_array_equal(res.stats.get("warmup", "rejected"), full.info["rejected"][:W].sum(axis=0))
    if info == "summary":
        assert res.info == {} and res.info_steps.size == 0
        with pytest.raises(ValueError, match="info='summary'"):
            res.sampling_info("rejected")
        with pytest.raises(ValueError, match="warmup_info='summary'"):
            res.warmup_info("rejected")


def test_energy_health_is_the_same_in_both_modes():
    """SMILE without a tuner at a step size that makes the energy error explode: the same trigger and numbers."""
    kw = dict(tuner=None, step_size=5.0, gradient=gradients.Exact(targets.Gaussian.isotropic(5)))
    t = targets.Gaussian.isotropic(5)
    runs = []
    for info in ("all", "thinned"):
        with np.errstate(all="ignore"), pytest.warns(RunHealthWarning, match="energy error explodes"):
            runs.append(smile_ref.run_chains("smile", t, n_chains=4, n_steps=300, thinning=10, seed=0, progress=False,
                                             info=info, **kw))
    full, thin = runs
    assert full.health.message() == thin.health.message()
    np.testing.assert_array_equal(full.health.energy_above_fraction, thin.health.energy_above_fraction)
    e2 = full.info["energy_error"].astype(np.float64) ** 2 / 5
    np.testing.assert_array_equal(thin.health.energy_above_fraction, (e2 > 0.1).mean(axis=0))
    _assert_median_close(thin.health.energy_var_per_dim, np.median(e2, axis=0))


def _assert_median_close(estimate, exact):
    """Within 10^(1/(2 BINS_PER_DECADE)) on FINE_RANGE, 10^(1/2) outside (the documented bounds)."""
    fine = (exact >= FINE_RANGE[0]) & (exact <= FINE_RANGE[1])
    bound = np.where(fine, 0.5 / BINS_PER_DECADE, 0.5) * (1 + 1e-9)
    assert np.all(np.abs(np.log10(estimate / exact)) <= bound), (estimate, exact)


def test_energy_median_estimate_bound():
    """StepStats' histogram median is within the documented factor of numpy's median (odd and even counts)."""
    rs = np.random.default_rng(0)
    for m in (1, 2, 7, 200, 201):
        dE = rs.standard_normal((m, 6)) * 10.0 ** rs.uniform(-30, 30, size=(1, 6))
        s = StepStats(6, dim=3)
        s.update("sampling", {"energy_error": dE})
        _assert_median_close(s.energy_median("sampling"), np.median(dE ** 2 / 3, axis=0))
    s.update("sampling", {"energy_error": np.full((1, 6), np.nan)})
    assert np.all(np.isnan(s.energy_median("sampling")))


def test_stats_stream_equals_one_pass():
    """Counters fed in blocks of any size equal the counters of the whole arrays (trailing runs across blocks)."""
    rs = np.random.default_rng(1)
    T, n = 57, 3
    info = {"rejected": rs.random((T, n)) < 0.4, "nonfinite": rs.random((T, n)) < 0.1,
            "step_size": rs.uniform(0.1, 1, (T, n)), "energy_error": rs.standard_normal((T, n)),
            "window_end": rs.random((T, n)) < 0.2}
    info["rejected"][-9:, 1] = True
    info["rejected"][:, 2] = True
    ref = StepStats.from_info(info, 10, n, 2)
    assert ref.trailing_rejected[1] >= 9 and ref.trailing_rejected[2] == T
    for size in (1, 4, 10, 56):
        s = StepStats(n, 2)
        for a in range(0, T, size):
            b = min(a + size, T)
            cut = min(max(10 - a, 0), b - a)
            s.update("warmup", {k: v[a:a + cut] for k, v in info.items()})
            s.update("sampling", {k: v[a + cut:b] for k, v in info.items()})
        assert s.equal(ref), size
    back = StepStats.from_arrays(ref.to_arrays(), n)
    assert back.equal(ref)
    np.testing.assert_array_equal(ref.get("sampling", "rejected"), info["rejected"][10:].sum(axis=0))
    np.testing.assert_array_equal(ref.step_size_range()[0], info["step_size"].min(axis=0))


@pytest.mark.parametrize("modes", [("thinned", "all"), ("thinned", "thinned"), ("summary", "summary")])
def test_resume_is_bit_identical_in_thinned_mode(tmp_path, modes):
    """A checkpoint written in the middle of a thinning window (steps 7, 14, ...; windows of 7 from step 23)
    resumes to the uninterrupted run's rows, window aggregates, counters and health."""
    info, warmup_info = modes
    ref = _run("sgld", info=info, warmup_info=warmup_info, fault="region")
    ck = tmp_path / "ck.npz"
    import smile_ref.run.driver as drv

    kept = {}
    real = drv.save_checkpoint

    def keep(path, state, meta, buffers):  # keep the checkpoint of step 35 (inside the window 30..36)
        real(path, state, meta, buffers)
        if meta["step"] == 35:
            kept["bytes"] = open(path, "rb").read()

    drv.save_checkpoint = keep
    try:
        _run("sgld", info=info, warmup_info=warmup_info, fault="region", checkpoint=ck, checkpoint_every=7)
    finally:
        drv.save_checkpoint = real
    ck.write_bytes(kept["bytes"])
    res = _run("sgld", info=info, warmup_info=warmup_info, fault="region", checkpoint=ck, checkpoint_every=7,
               resume=True)
    np.testing.assert_array_equal(res.samples, ref.samples)
    assert set(res.info) == set(ref.info)
    for k in ref.info:
        np.testing.assert_array_equal(res.info[k], ref.info[k], err_msg=k)
    np.testing.assert_array_equal(res.info_steps, ref.info_steps)
    assert res.stats.equal(ref.stats) and res.health.summary() == ref.health.summary()
    # a checkpoint of another info mode is refused, naming the field
    other = "all" if info != "all" else "thinned"
    ck.write_bytes(kept["bytes"])
    with pytest.raises(ResumeMismatchError, match="info is"):
        _run("sgld", info=other, warmup_info=warmup_info, fault="region", checkpoint=ck, checkpoint_every=7,
             resume=True, raises=True)


def test_damaged_counters_in_a_checkpoint_are_reported(tmp_path):
    from smile_ref.run.checkpoint import load_checkpoint, save_checkpoint

    ck = tmp_path / "ck.npz"
    _run("sgld", fault="region", checkpoint=ck)
    meta, arrays = load_checkpoint(ck)
    meta["step"] = 30
    arrays["stats/sampling/rejected"] = np.zeros(7, np.int64)  # wrong number of chains
    state = {k: v for k, v in arrays.items() if k.startswith("state/")}
    save_checkpoint(ck, None, meta, {k: v for k, v in arrays.items() if not k.startswith("state/")} | state)
    with pytest.raises(CorruptFileError, match="stats/sampling/rejected"):
        _run("sgld", fault="region", checkpoint=ck, resume=True, raises=True)


def test_saved_result_keeps_rows_steps_and_counters(tmp_path):
    res = _run("sgld", fault="random")
    res.save(tmp_path / "r.npz")
    with np.load(tmp_path / "r.npz", allow_pickle=False) as z:
        np.testing.assert_array_equal(z["info_steps"], res.info_steps)
        np.testing.assert_array_equal(z["info/n_rejected"], res.info["n_rejected"])
        back = StepStats.from_arrays({k: z[k] for k in z.files if k.startswith("stats/")}, res.n_chains)
    assert back.equal(res.stats)


def test_thinned_info_memory_scales_with_draws():
    """Sampling rows: n_draws instead of n_steps; the counters do not grow with the run."""
    t = targets.Gaussian.isotropic(3)
    kw = dict(n_chains=2, burn_in=10, thinning=50, seed=0, step_size=0.1, progress=False)
    short = smile_ref.run_chains("sgld", t, n_steps=500, **kw)
    long = smile_ref.run_chains("sgld", t, n_steps=5000, **kw)
    assert short.info["step_size"].shape == (10 + 10, 2) and long.info["step_size"].shape == (10 + 100, 2)
    nbytes = [sum(v.nbytes for v in r.stats.to_arrays().values()) for r in (short, long)]
    assert nbytes[0] == nbytes[1]


@pytest.mark.parametrize("name", ["smile", "sgld"])
def test_thinned_rows_on_array_api_strict(name):
    """The recorder reads host copies of each block: on array_api_strict the thinned rows, window counts and
    counters equal those of the same run with info="all", and the NumPy run's."""
    pytest.importorskip("array_api_strict")
    runs = {}
    for backend in ("numpy", "array_api_strict"):
        for info in ("all", "thinned"):
            runs[backend, info] = _run(name, info=info, backend=backend, block_size=4)
    for backend in ("numpy", "array_api_strict"):
        full, thin = runs[backend, "all"], runs[backend, "thinned"]
        for key, v in full.info.items():
            np.testing.assert_array_equal(thin.info[key], v[thin.info_steps], err_msg=key)
        for r, t in enumerate(thin.info_steps[thin.n_warmup_rows:], start=thin.n_warmup_rows):
            np.testing.assert_array_equal(thin.info["n_rejected"][r], full.info["rejected"][t - K + 1:t + 1].sum(axis=0))
        assert thin.stats.equal(full.stats) and thin.health.summary() == full.health.summary()
    np.testing.assert_allclose(runs["array_api_strict", "thinned"].samples, runs["numpy", "thinned"].samples,
                               rtol=1e-12, atol=1e-12)
