"""The UCI benchmark core (smile_ref.verification.uci) and its command-line script, on a tiny budget."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest

from smile_ref.ensembles import EnsembleConfig
from smile_ref.verification.uci import PAPER_BEST_LPPD, markdown_table, run_uci, summarise

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_run_uci_tiny_two_seeds(tmp_path):
    cfg = EnsembleConfig.tiny()
    rows = run_uci(["energy"], [0, 1], ["de", "sgld"], config=cfg, out_dir=tmp_path, log=lambda *a: None)
    assert [(r["seed"], r["method"]) for r in rows] == [(0, "de"), (0, "sgld"), (1, "de"), (1, "sgld")]
    for r in rows:
        assert all(math.isfinite(r[k]) for k in ("lppd", "rmse", "coverage_90", "val_lppd", "grad_evals"))
    # one pre-training per (data set, seed), shared by the methods
    assert sorted(p.name for p in (tmp_path / "energy").iterdir()) == ["seed0", "seed1"]
    assert (tmp_path / "energy" / "seed0" / "pretrain.npz").exists()
    de0 = [r for r in rows if r["seed"] == 0 and r["method"] == "de"][0]
    sg0 = [r for r in rows if r["seed"] == 0 and r["method"] == "sgld"][0]
    assert sg0["grad_evals"] > de0["grad_evals"]  # sampling cost adds to the shared pre-training cost
    summ = summarise(rows)
    assert [(s["dataset"], s["method"], s["n_seeds"]) for s in summ] == [("energy", "de", 2), ("energy", "sgld", 2)]
    s_de = summ[0]
    lp = [r["lppd"] for r in rows if r["method"] == "de"]
    assert s_de["lppd"] == pytest.approx(sum(lp) / 2)
    assert s_de["lppd_se"] == pytest.approx(abs(lp[0] - lp[1]) / 2)  # SE of the mean of two values
    table = markdown_table(summ)
    assert table.count("\n") == 3 and f"| {PAPER_BEST_LPPD['energy']} |" in table


def test_skip_pairs(tmp_path):
    rows = run_uci(["energy"], [0], ["de", "sgld"], config=EnsembleConfig.tiny(), out_dir=tmp_path,
                   skip=(("energy", "sgld"),), log=lambda *a: None)
    assert [r["method"] for r in rows] == ["de"]


def test_script_writes_outputs(tmp_path):
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, "-m", "validation.uci_benchmark", "--budget", "tiny",
                        "--datasets", "energy", "--seeds", "0", "--methods", "de", "smile", "--out", str(out)],
                       capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stderr
    res = json.loads((out / "results.json").read_text())
    assert [rec["method"] for rec in res["records"]] == ["de", "smile"]
    assert "| energy | smile |" in (out / "table.md").read_text()
    pytest.importorskip("matplotlib")
    assert (out / "intervals_energy.png").exists() and (out / "lppd_vs_cost.png").exists()


def test_grid_keeps_best_validation_lppd(tmp_path):
    rows = run_uci(["energy"], [0], ["sgld"], config=EnsembleConfig.tiny(), out_dir=tmp_path, grid=True,
                   log=lambda *a: None)
    (r,) = rows
    assert len(r["grid"]) == 3
    best = max(r["grid"], key=lambda c: c["val_lppd"])
    assert r["step_size"] == best["step_size"] and r["lppd"] == best["lppd"]
    assert r["grid_grad_evals"] == pytest.approx(sum(c["grad_evals"] for c in r["grid"]))
    # --collect --grid reads the finished candidates back and picks the same run
    (c,) = run_uci(["energy"], [0], ["sgld"], config=EnsembleConfig.tiny(), out_dir=tmp_path, grid=True,
                   collect=True, log=lambda *a: None)
    assert c["step_size"] == r["step_size"] and c["lppd"] == r["lppd"]
    assert run_uci(["energy"], [0], ["sgld"], config=EnsembleConfig.tiny(), out_dir=tmp_path / "none", grid=True,
                   collect=True, log=lambda *a: None) == []


@pytest.mark.filterwarnings("ignore::smile_ref.errors.RunHealthWarning")  # the tiny config collapses the Gamma tuner
def test_gamma_variant_runs_smile_with_the_energy_error_tuner(tmp_path):
    """``smile_gamma`` = registered ``"smile"`` with the Gamma tuner; ``"smile"`` in the pipeline uses the
    Var[dE]/d tuner.  Both are recorded in run.json, so a run made under other defaults is not resumed."""
    rows = run_uci(["energy"], [0], ["smile", "smile_gamma"], config=EnsembleConfig.tiny(), out_dir=tmp_path,
                   log=lambda *a: None)
    assert [r["method"] for r in rows] == ["smile", "smile_gamma"]
    setups = {m: json.loads((tmp_path / "energy" / "seed0" / m / "run.json").read_text())["sampler_setup"]
              for m in ("smile", "smile_gamma")}
    assert setups["smile"]["options"]["tuner"] == "mclmc"
    assert setups["smile_gamma"]["options"]["tuner"] == "energy_error"
    assert all(json.loads((tmp_path / "energy" / "seed0" / m / "run.json").read_text())["sampler"] == "smile"
               for m in setups)
    summ = summarise(rows)
    assert [s["method"] for s in summ] == ["smile", "smile_gamma"]


def test_collect_reads_finished_runs_only(tmp_path):
    cfg = EnsembleConfig.tiny()
    first = run_uci(["energy"], [0], ["de", "sgld"], config=cfg, out_dir=tmp_path, log=lambda *a: None)
    rows = run_uci(["energy"], [0, 1], ["de", "sgld", "sghmc"], config=cfg, out_dir=tmp_path, collect=True,
                   log=lambda *a: None)
    assert [(r["seed"], r["method"]) for r in rows] == [(0, "de"), (0, "sgld")]
    assert not (tmp_path / "energy" / "seed0" / "sghmc").exists() and not (tmp_path / "energy" / "seed1").exists()
    for a, b in zip(first, rows):
        assert a["lppd"] == b["lppd"] and a["grad_evals"] == b["grad_evals"]
    # the collected sgld row reports the sampling time stored with its members, not the time of this call
    import numpy as np

    with np.load(tmp_path / "energy" / "seed0" / "sgld" / "members" / "member_000.npz") as z:
        stored = json.loads(str(z["meta"]))["wall_time"]
    assert rows[1]["wall_time"] >= stored > 0.0
