"""Tests of ChainResult.to_arviz / EnsembleResult.to_arviz (ArviZ DataTree layout, the ``arviz`` extra).

Deterministic: layout, values and alignment are compared exactly; arviz-stats' ESS and R-hat run on
the tree are compared with smile_ref.diagnostics, which implements the same algorithm (Vehtari et al.
2021), to a relative 1e-9 (rounding only).
"""
from __future__ import annotations

import re
import sys

import numpy as np
import pytest

pytest.importorskip("arviz_base")
pytest.importorskip("xarray")

import smile_ref as sr  # noqa: E402
from smile_ref.diagnostics import ess, rhat  # noqa: E402
from smile_ref.run.arviz import chains_to_datatree  # noqa: E402
from smile_ref.targets import Gaussian, from_callable  # noqa: E402


def _arviz_stats():
    """arviz_stats with its top-level API (which needs arviz-stats' xarray extra: xarray-einstats)."""
    azs = pytest.importorskip("arviz_stats")
    if not hasattr(azs, "summary"):
        pytest.skip("arviz_stats' ess/rhat/summary need arviz-stats' xarray extra (xarray-einstats)")
    return azs


def _run(**kw):
    g = Gaussian(np.array([1.0, -2.0, 0.5]), np.diag([1.0, 4.0, 0.25]))
    args = dict(n_chains=3, n_steps=23, burn_in=7, thinning=4, seed=5, step_size=0.2, progress=False)
    args.update(kw)
    sampler = args.pop("sampler", "smile")
    return sr.run_chains(sampler, g, **args)


def test_posterior_layout_and_values():
    res = _run()
    dt = res.to_arviz()
    post = dt["posterior"]
    assert set(dt.children) == {"posterior", "sample_stats", "warmup_sample_stats"}
    assert post["x"].dims == ("chain", "draw", "x_dim_0")
    assert dict(post.sizes) == {"chain": 3, "draw": 5, "x_dim_0": 3}  # 23 // 4 draws
    np.testing.assert_array_equal(post["chain"].values, np.arange(3))
    np.testing.assert_array_equal(post["draw"].values, np.arange(5))
    np.testing.assert_array_equal(post["x_dim_0"].values, np.arange(3))
    assert np.array_equal(post["x"].values, res.samples)
    assert post.attrs["inference_library"] == "smile_ref" and post.attrs["sampler"] == "smile"
    assert post.attrs["thinning"] == 4 and post.attrs["n_warmup"] == 7
    f32 = _run(dtype="float32").to_arviz()
    assert f32["posterior"]["x"].dtype == np.float32


def test_sample_stats_aligned_to_thinned_draws():
    """sample_stats[k][c, s] = info[k][n_warmup + (s + 1) thinning - 1, c] (per-step info="all" rows)."""
    res = _run(info="all")
    dt = res.to_arviz()
    ss, ws = dt["sample_stats"], dt["warmup_sample_stats"]
    rows = 7 + (np.arange(5) + 1) * 4 - 1
    assert {"step_size", "energy_error", "lp", "diverging", "nonfinite", "n_rejected", "n_nonfinite"} <= set(ss.data_vars)
    for key, name in (("step_size", "step_size"), ("energy_error", "energy_error"), ("logdensity", "lp"),
                      ("rejected", "diverging"), ("kinetic_change", "kinetic_change")):
        assert ss[name].dims == ("chain", "draw")
        assert np.array_equal(ss[name].values, res.info[key][rows].T), key
        assert np.array_equal(ws[name].values, res.info[key][:7].T), key
    assert dict(ws.sizes) == {"chain": 3, "draw": 7}
    assert "warmup_posterior" not in dt.children
    # the recorded draw is the position whose log-density is lp: check with the target itself
    g = Gaussian(np.array([1.0, -2.0, 0.5]), np.diag([1.0, 4.0, 0.25]))
    lp = g.logdensity(res.samples.reshape(-1, 3)).reshape(3, 5)
    np.testing.assert_allclose(ss["lp"].values, lp, rtol=1e-12)
    assert set(res.to_arviz(save_warmup=False).children) == {"posterior", "sample_stats"}
    assert set(_run(burn_in=0).to_arviz().children) == {"posterior", "sample_stats"}


def test_thinned_info_gives_the_same_sample_stats():
    """The default thinned rows (plus their window aggregates) convert to exactly the per-step run's groups."""
    full = _run(info="all").to_arviz()
    res = _run()  # info="thinned", warmup_info="all": same seed, same draws
    thin = res.to_arviz()
    for group in ("sample_stats", "warmup_sample_stats"):
        a, b = full[group], thin[group]
        assert set(a.data_vars) == set(b.data_vars), group
        for name in a.data_vars:
            assert a[name].dtype == b[name].dtype and np.array_equal(a[name].values, b[name].values), (group, name)
    ss = thin["sample_stats"]
    assert "max_abs_energy_error" in ss.data_vars
    for key, name in (("step_size", "step_size"), ("logdensity", "lp"), ("rejected", "diverging"),
                      ("n_rejected", "n_rejected"), ("max_abs_energy_error", "max_abs_energy_error")):
        assert np.array_equal(ss[name].values, res.sampling_info(key).T), key
    # thinned warm-up: its rows (steps 3 and 6 of 7 warm-up steps, thinning 4) with their window aggregates
    tw = _run(warmup_info="thinned")
    assert tw.info_steps[:tw.n_warmup_rows].tolist() == [3, 6]
    ws = tw.to_arviz()["warmup_sample_stats"]
    assert dict(ws.sizes) == {"chain": 3, "draw": 2} and "n_rejected" in ws.data_vars
    assert np.array_equal(ws["step_size"].values, tw.warmup_info("step_size").T)
    assert np.array_equal(tw.to_arviz()["sample_stats"]["n_rejected"].values, ss["n_rejected"].values)
    assert set(_run(warmup_info="summary").to_arviz().children) == {"posterior", "sample_stats"}
    assert set(_run(info="summary").to_arviz().children) == {"posterior", "warmup_sample_stats"}


def test_counts_over_thinning_windows():
    """n_rejected counts the rejected steps of each window of `thinning` steps ending at a draw."""
    W, k, n_draws, C = 3, 4, 5, 2
    T = W + k * n_draws + 2  # two trailing steps after the last draw belong to no draw
    rej = np.zeros((T, C), bool)
    rej[[0, 3, 4, 6, 7, 20, 21, 22, 23], 0] = True  # steps 3..6 -> window 0, 7..10 -> 1, 19..22 -> 4
    rej[[2, 5, 24], 1] = True
    info = {"rejected": rej, "logdensity": np.arange(T * C, dtype=float).reshape(T, C)}
    dt = chains_to_datatree(np.zeros((C, n_draws, 2)), info, n_warmup=W, thinning=k)
    ss = dt["sample_stats"]
    np.testing.assert_array_equal(ss["n_rejected"].values, [[3, 1, 0, 0, 3], [1, 0, 0, 0, 0]])
    np.testing.assert_array_equal(ss["diverging"].values[0], rej[W + k - 1::k][:n_draws, 0])
    np.testing.assert_array_equal(ss["lp"].values, info["logdensity"][W + k - 1::k][:n_draws].T)
    np.testing.assert_array_equal(dt["warmup_sample_stats"]["diverging"].values, rej[:W].T)
    assert "n_rejected" not in dt["warmup_sample_stats"]
    with pytest.raises(ValueError, match=r"info\['rejected'\] must have shape"):
        chains_to_datatree(np.zeros((C, n_draws, 2)), {"rejected": rej[:10]}, n_warmup=W, thinning=k)
    with pytest.raises(ValueError, match="samples must have shape"):
        chains_to_datatree(np.zeros((C, n_draws)))


def test_many_chains_few_draws_without_warning():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dt = chains_to_datatree(np.zeros((64, 3, 2)), {"rejected": np.zeros((5, 64), bool)}, n_warmup=2)
    assert dict(dt["posterior"].sizes) == {"chain": 64, "draw": 3, "x_dim_0": 2}


def test_named_parameters():
    res = _run()
    dt = res.to_arviz(var_names=["mu", "sigma", "tau"])
    post = dt["posterior"]
    assert set(post.data_vars) == {"mu", "sigma", "tau"}
    assert post["sigma"].dims == ("chain", "draw")
    assert np.array_equal(post["sigma"].values, res.samples[:, :, 1])
    with pytest.raises(ValueError, match="var_names must hold 3"):
        res.to_arviz(var_names=["a", "b"])
    # a callable target's names are picked up from describe()
    t = from_callable(lambda x: -0.5 * np.sum(x * x, axis=1), lambda x: -x, 2, names=["alpha", "beta"])
    r = sr.run_chains("sgld", t, n_chains=2, n_steps=10, seed=0, step_size=0.1, progress=False)
    assert set(r.to_arviz()["posterior"].data_vars) == {"alpha", "beta"}


def test_arviz_stats_ess_rhat_match_smile_ref():
    """arviz-stats on the tree = smile_ref.diagnostics on the samples (same algorithm; rtol 1e-9)."""
    azs = _arviz_stats()
    az_ess, az_rhat = azs.ess, azs.rhat
    res = _run(sampler="sgld", n_chains=4, n_steps=1600, burn_in=100, thinning=4, step_size=0.05)
    dt = res.to_arviz()
    np.testing.assert_allclose(az_ess(dt, method="bulk")["x"].values, ess(res.samples, "bulk"), rtol=1e-9)
    np.testing.assert_allclose(az_ess(dt, method="mean")["x"].values, ess(res.samples, "basic"), rtol=1e-9)
    np.testing.assert_allclose(az_rhat(dt, method="rank")["x"].values, rhat(res.samples), rtol=1e-9)
    named = res.to_arviz(var_names=["a", "b", "c"])
    np.testing.assert_allclose([float(az_ess(named)[n]) for n in "abc"], ess(res.samples, "bulk"), rtol=1e-9)


def test_arviz_stats_summary_runs():
    summary = _arviz_stats().summary
    res = _run(sampler="sgld", n_chains=4, n_steps=800, burn_in=100, thinning=2, step_size=0.05)
    tab = summary(res.to_arviz(), round_to="none")
    assert list(tab.index) == ["x[0]", "x[1]", "x[2]"]
    np.testing.assert_allclose(tab["mean"].to_numpy(dtype=float), res.samples.mean(axis=(0, 1)), rtol=1e-12)
    np.testing.assert_allclose(tab["ess_bulk"].to_numpy(dtype=float), ess(res.samples, "bulk"), rtol=1e-9)
    np.testing.assert_allclose(tab["r_hat"].to_numpy(dtype=float), rhat(res.samples), rtol=1e-9)


def test_array_api_strict_run():
    res = _run(backend="array_api_strict")
    assert res.backend != "numpy"
    dt = res.to_arviz()
    assert isinstance(dt["posterior"]["x"].values, np.ndarray)
    assert np.array_equal(dt["posterior"]["x"].values, res.samples)
    assert dt["posterior"].attrs["backend"] == res.backend


def test_ensemble_members_as_chains(tmp_path):
    from smile_ref.data import make_split
    from smile_ref.ensembles import EnsembleConfig, run_ensemble

    rs = np.random.default_rng(0)
    X = rs.standard_normal((120, 2))
    y = np.sin(X[:, 0]) + 0.1 * rs.standard_normal(120)
    data = make_split(X, y, seed=0, name="synthetic")
    cfg = EnsembleConfig.tiny()
    r = run_ensemble(data, "sgld", config=cfg, seed=0, hidden=(3,), out_dir=tmp_path / "run")
    dt = r.to_arviz()
    post = dt["posterior"]
    n_draws = cfg.n_samples // cfg.thinning
    assert post["x"].shape[:2] == (cfg.n_members, n_draws)
    np.testing.assert_array_equal(post["chain"].values, np.arange(cfg.n_members))
    for m in range(cfg.n_members):
        with np.load(tmp_path / "run" / "members" / f"member_{m:03d}.npz") as z:
            assert np.array_equal(post["x"].values[m], z["samples"])
            rows = np.searchsorted(z["info_steps"], cfg.n_warmup + (np.arange(n_draws) + 1) * cfg.thinning - 1)
            assert np.array_equal(z["info_steps"][rows], cfg.n_warmup + (np.arange(n_draws) + 1) * cfg.thinning - 1)
            assert np.array_equal(dt["sample_stats"]["step_size"].values[m], z["info/step_size"][rows])
    assert dict(dt["warmup_sample_stats"].sizes) == {"chain": cfg.n_members, "draw": cfg.n_warmup}
    no_dir = run_ensemble(data, "sgld", config=cfg, seed=0, hidden=(3,))
    with pytest.raises(ValueError, match="out_dir"):
        no_dir.to_arviz()


def test_missing_arviz_base_message(monkeypatch):
    res = _run()
    monkeypatch.setitem(sys.modules, "arviz_base", None)
    with pytest.raises(ImportError, match=re.escape("pip install 'smile_ref[arviz]'")):
        res.to_arviz()
