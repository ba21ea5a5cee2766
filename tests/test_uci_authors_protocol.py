"""The SMILE authors' UCI protocol: pre-training with sigma fixed, member-spread DE metric, the cells, the CLI."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from smile_ref.backend import get_backend, to_numpy
from smile_ref.data import load_uci_authors
from smile_ref.ensembles import EnsembleConfig, pretrain_ensemble
from smile_ref.ensembles.authors_protocol import authors_config, cells_table, run_authors_uci, summarise_cells
from smile_ref.ensembles.pipeline import _pretrain_description
from smile_ref.ensembles.predict import member_spread_metrics
from smile_ref.targets import MLP

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = ["-m", "validation.uci_benchmark"]  # run from ROOT, as documented


@pytest.fixture(scope="module")
def energy():
    return load_uci_authors("energy", 1)


def test_pretrain_fixed_log_sigma_is_mse_training(energy):
    target = MLP(energy.X_train, energy.y_train, hidden=(8,))
    pre = pretrain_ensemble(target, energy.X_val, energy.y_val, n_members=3, seed=0, max_epochs=4, patience=2,
                            fix_log_sigma=0.0, drop_last=True, progress=False)
    P = np.asarray(to_numpy(pre.params))
    assert np.all(P[:, -1] == 0.0)  # log sigma pinned: the chains start at log sigma = 0
    mean, _ = target.predict(P, energy.X_val)
    mse = np.mean((np.asarray(to_numpy(mean)) - energy.y_val[None, :]) ** 2, axis=1)
    # validation loss = Gaussian NLL with sigma = 1 = MSE / 2 + log(2 pi) / 2
    np.testing.assert_allclose(pre.best_val_loss, 0.5 * mse + 0.5 * math.log(2 * math.pi), rtol=1e-10)
    # drop_last: 537 training points, batches of 64 -> 8 full batches = 512 points per epoch
    np.testing.assert_allclose(pre.n_gradient_evals, pre.n_epochs * 512 / 537, rtol=1e-12)
    free = pretrain_ensemble(target, energy.X_val, energy.y_val, n_members=3, seed=0, max_epochs=4, patience=2,
                             progress=False)
    assert np.any(np.asarray(to_numpy(free.params))[:, -1] != 0.0)  # learned otherwise
    with pytest.raises(TypeError, match="fix_log_sigma"):
        pretrain_ensemble(target, energy.X_val, energy.y_val, n_members=2, fix_log_sigma="a", progress=False)
    with pytest.raises(TypeError, match="drop_last"):
        pretrain_ensemble(target, energy.X_val, energy.y_val, n_members=2, drop_last=1, progress=False)


@pytest.mark.parametrize("name, dtype, device", [("numpy", "float64", None), ("array_api_strict", "float64", None),
                                                 ("array_api_strict", "float32", "device1")])
def test_member_spread_metrics_against_direct_formula(energy, name, dtype, device):
    target = MLP(energy.X_train, energy.y_train, hidden=(8,))
    P = target.init_params(np.random.default_rng(3), 4)
    bk = get_backend(name, dtype, device)
    m = member_spread_metrics(target, bk.asarray(P), energy.X_test, energy.y_test)
    # direct: per point the mixture of N(mu_m, s^2) with s the population std of the member means
    H = energy.X_test
    mu = np.stack([np.asarray(to_numpy(target.predict(P[j:j + 1], H)[0]))[0] for j in range(4)])
    s = np.clip(mu.std(axis=0), 1e-6, 1e6)
    logp = -0.5 * ((energy.y_test - mu) / s) ** 2 - np.log(s) - 0.5 * math.log(2 * math.pi)
    mx = logp.max(0)
    lppd = float(np.mean(mx + np.log(np.mean(np.exp(logp - mx), axis=0))))
    tol = 1e-4 if dtype == "float32" else 1e-10
    assert m["lppd"] == pytest.approx(lppd, rel=tol, abs=tol)
    assert m["rmse"] == pytest.approx(float(np.sqrt(np.mean((mu.mean(0) - energy.y_test) ** 2))), rel=tol)
    with pytest.raises(ValueError, match="M >= 2"):
        member_spread_metrics(target, bk.asarray(P[:1]), energy.X_test, energy.y_test)


def test_authors_config_and_description_compatibility():
    base = EnsembleConfig.paper()
    cfg = authors_config(base, 1052, "epoch")  # airfoil: 4 batches of 256 per epoch
    assert (cfg.n_warmup, cfg.n_samples, cfg.thinning) == (200_000, 40_000, 40)
    assert cfg.minibatch_options == {"scale": "floor", "schedule": "authors"}
    assert cfg.pretrain_fix_log_sigma == 0.0 and cfg.pretrain_drop_last
    assert authors_config(base, 537, "step").n_warmup == 50_000
    with pytest.raises(ValueError, match="mode"):
        authors_config(base, 537, "batch")
    # the default config describes itself as before the protocol fields existed (old run directories resume)
    d = base.to_dict()
    assert not {"minibatch_options", "pretrain_drop_last", "pretrain_fix_log_sigma"} & set(d)
    assert {"minibatch_options", "pretrain_drop_last", "pretrain_fix_log_sigma"} <= set(cfg.to_dict())
    split = load_uci_authors("energy", 1)
    model = {"hidden": [16], "activation": "relu", "task": "regression", "prior_scale": 1.0}
    assert sorted(_pretrain_description(base, 0, model, split, "numpy", "float64")["config"]) == sorted(
        ["n_members", "pretrain_lr", "pretrain_weight_decay", "pretrain_batch_size", "pretrain_max_epochs",
         "pretrain_patience"])
    with pytest.raises(TypeError, match="minibatch_options"):
        EnsembleConfig(minibatch_options=["floor"])
    with pytest.raises(TypeError, match="pretrain_drop_last"):
        EnsembleConfig(pretrain_drop_last="yes")


def test_run_authors_uci_tiny_end_to_end_and_resume(tmp_path):
    cfg = EnsembleConfig.tiny(batch_size=256)
    kw = dict(modes=("step",), eps_grid=(1e-3,), config=cfg, out_dir=tmp_path, log=lambda *a: None)
    rows = run_authors_uci(["energy"], [1], ["de", "smile", "psmile", "sghmc_adaptive"], **kw)
    assert [(r["method"], r["eps"]) for r in rows] == [("de", None), ("smile", 1e-3), ("psmile", 1e-3),
                                                       ("sghmc_adaptive", 1e-3)]
    for r in rows:
        assert r["n_test"] == 154 and all(math.isfinite(r[k]) for k in ("lppd", "rmse", "coverage_90", "val_lppd"))
    pre = np.load(tmp_path / "energy" / "seed1" / "pretrain.npz")
    assert np.all(pre["params"][:, -1] == 0.0)
    run = json.loads((tmp_path / "energy" / "seed1" / "smile" / "step_eps0.001" / "run.json").read_text())
    assert run["sampler_setup"]["options"]["preset"] == "authors" and run["sampler_setup"]["options"]["tuner"] is None
    assert run["config"]["minibatch_options"] == {"scale": "floor", "schedule": "authors"}
    sg = json.loads((tmp_path / "energy" / "seed1" / "sghmc_adaptive" / "step_eps0.001" / "run.json").read_text())
    assert sg["sampler_setup"]["step_size"] == pytest.approx(1e-6)  # eta = eps^2
    again = run_authors_uci(["energy"], [1], ["de", "smile", "psmile", "sghmc_adaptive"], **kw)  # resumed
    assert [r["lppd"] for r in again] == [r["lppd"] for r in rows]
    table = cells_table(summarise_cells(rows))
    assert table.count("\n") == 5 and "| energy | psmile | step | 0.001 | 1 |" in table
    with pytest.raises(ValueError, match="methods"):
        run_authors_uci(["energy"], [1], ["sgld"], **kw)
    with pytest.raises(ValueError, match="seeds"):
        run_authors_uci(["energy"], [0], ["de"], **kw)
    with pytest.raises(ValueError, match="step sizes"):
        run_authors_uci(["energy"], [1], ["smile"], modes=("step",), eps_grid=(-1e-3,), config=cfg, out_dir=tmp_path)


def test_script_protocol_authors(tmp_path):
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, *SCRIPT, "--protocol", "authors", "--budget", "tiny", "--datasets", "energy",
                        "--members", "2", "--n-warmup", "10", "--n-samples", "10", "--thinning", "2",
                        "--methods", "de", "psmile", "--eps", "1e-3", "--modes", "step", "epoch", "--out", str(out)],
                       capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stderr
    res = json.loads((out / "results.json").read_text())
    assert res["protocol"] == "authors" and "n_warmup=10" in res["budget"]
    assert [(x["method"], x["mode"]) for x in res["records"]] == [("de", "-"), ("psmile", "step"), ("psmile", "epoch")]
    assert "| energy | psmile | epoch | 0.001 |" in (out / "table.md").read_text()


@pytest.mark.parametrize("args, match", [
    (["--protocol", "authors", "--methods", "sgld"], "not a method of --protocol authors"),
    (["--protocol", "authors", "--seeds", "0"], "seeds 1, 2, 3"),
    (["--protocol", "authors", "--eps", "0"], "positive"),
    (["--protocol", "authors", "--eps", "abc"], "positive"),
    (["--protocol", "authors", "--modes", "batch"], "invalid choice"),
    (["--protocol", "authors", "--n-samples", "0"], "positive integer"),
    (["--protocol", "authors", "--n-warmup=-5"], "non-negative integer"),
    (["--protocol", "authors", "--grid"], "--grid"),
    (["--protocol", "pytorch"], "invalid choice"),
    (["--eps", "1e-3"], "for --protocol authors"),
    (["--methods", "sghmc_adaptive"], "not a method of --protocol smile_ref"),
    (["--n-samples", "10", "--thinning", "20"], "thinning"),
])
def test_script_bad_input(args, match, capsys):
    from validation import uci_benchmark

    with pytest.raises(SystemExit) as exc:
        uci_benchmark.main(["--budget", "tiny", "--datasets", "energy", "--out", "/nonexistent/never"] + args)
    assert exc.value.code == 2
    assert match in capsys.readouterr().err
