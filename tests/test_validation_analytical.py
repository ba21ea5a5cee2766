"""Tests of the analytical bias benchmark (``smile_ref/verification/analytical.py``, ``validation/analytical_bias.py``).

One tiny run of :func:`run_benchmark` (module fixture, ~10 s): target ``N(0, I)``
in d = 10 (the ICG family with ``icg_scales = (1, 1)``, so that chains mix in
~10^3 steps; the paper's ICG needs ~10^5), gradient noise ``256 C_y`` (paper
scale) with ``C_y = I`` (iso) or ``diag(c^2)``, ``c = logspace(-1, 1, 10)``
(aniso), SMILE-naive and pSMILE-naive at ``eps = 0.1``, chains started at exact
target draws, R = 8 independent replicates (chain groups) of 16 chains.
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats

from smile_ref.verification.analytical import noise_covariance, run_benchmark, theory_b2

R = 8
TINY = dict(targets=["icg"], noises=["iso", "aniso"], samplers=["smile", "psmile"],
            step_sizes={"smile": [0.1], "psmile": [0.1]}, icg_scales=[1.0, 1.0], n_replicates=R,
            chains_per_replicate=16, n_steps=1200, burn_in=300, thinning=5, init="exact", seed=3,
            workers=1, theory=False, progress=False)


@pytest.fixture(scope="module")
def tiny():
    return run_benchmark(TINY)


def _rec(result, noise, sampler):
    (rec,) = [r for r in result["records"] if r["noise"] == noise and r["sampler"] == sampler]
    return rec


def test_structure_and_finiteness(tiny):
    assert set(tiny) >= {"config", "records", "runtime_s"}
    assert len(tiny["records"]) == 2 * 2 * 1
    json.dumps(tiny)  # plain Python, serialisable
    for r in tiny["records"]:
        assert r["target"] == "icg" and r["step_size"] == 0.1 and r["scaling"] == "fixed_sigma"
        assert len(r["replicates"]) == R
        assert r["n_nonfinite_chains"] == 0
        for key in ("b2_mean", "b2_se", "noise_mean", "b2_pooled", "noise_mean_pooled"):
            assert math.isfinite(r[key]) and r[key] >= 0.0, key
        for rep in r["replicates"]:
            assert len(rep["m2"]) == 10 and all(math.isfinite(v) for v in rep["m2"])
        # b2_mean is the mean of the replicate b^2 (not computed by bias_metric_se directly)
        assert r["b2_mean"] == pytest.approx(np.mean([rep["b2"] for rep in r["replicates"]]), rel=1e-12)
        assert r["noise_cov_trace"] == pytest.approx(256.0 * (10.0 if r["noise"] == "iso" else np.sum(np.logspace(-1, 1, 10) ** 2)))


def test_isotropic_noise_consistent_with_monte_carlo_noise(tiny):
    """Isotropic noise: no continuous-time bias (notes Sec. 2.2), so E[x_i^2] = 1 up to O(eps^2) discretisation.

    Per coordinate, the R replicate estimates Ehat[x_i^2] are i.i.d.; their mean minus 1 divided
    by (sd / sqrt(R)) is Student-t with R - 1 = 7 d.o.f. under H0 (normality of the replicate
    means: each averages 16 chains x 240 draws).  Two-sided test at level 1e-4 per coordinate,
    Bonferroni over d = 10 coordinates and both samplers: failure probability < 2e-3 if unbiased.
    """
    tcrit = stats.t.ppf(1 - 0.5e-4, R - 1)
    for sampler in ("smile", "psmile"):
        rec = _rec(tiny, "iso", sampler)
        m2 = np.array([rep["m2"] for rep in rec["replicates"]])  # (R, d)
        z = (m2.mean(0) - np.asarray(rec["second_moment"])) / (m2.std(0, ddof=1) / math.sqrt(R))
        assert np.all(np.abs(z) < tcrit), (sampler, z, tcrit)


def test_anisotropic_noise_smile_biased_psmile_removes_most(tiny):
    """Anisotropic noise: SMILE-naive's b^2 exceeds pSMILE-naive's (and its own isotropic value).

    Welch t-test on log b^2 of the R = 8 replicates per sampler (log: the replicate b^2 are
    right-skewed, their logs close to normal), one-sided at level 1e-5 (Welch-Satterthwaite
    d.o.f.): failure probability < 1e-5 per comparison if the effect is real; the effect here
    is b^2 ~ 1-3 (SMILE, aniso) vs ~ 0.01 (pSMILE aniso; SMILE iso), i.e. ~5 in log b^2 with a
    replicate sd ~ 0.5.
    Also: pSMILE removes most of the bias, b^2_p < b^2_s / 4 (a 4x margin on a ~100x effect).
    """
    s = np.array([rep["b2"] for rep in _rec(tiny, "aniso", "smile")["replicates"]])
    p = np.array([rep["b2"] for rep in _rec(tiny, "aniso", "psmile")["replicates"]])
    iso = np.array([rep["b2"] for rep in _rec(tiny, "iso", "smile")["replicates"]])
    for other in (p, iso):
        res = stats.ttest_ind(np.log(s), np.log(other), equal_var=False, alternative="greater")
        assert res.pvalue < 1e-5, (s, other, res)
    assert p.mean() < s.mean() / 4


def test_theory_b2_isotropic_and_regime_ratio():
    """Isotropic noise: continuous-time prediction b^2 = 0 exactly.

    Regime ratio r = (slowest axis decorrelation rate) x sigma_min(Sigma_t); for Sigma = s2 I in d dimensions
    the axis rate is (kappa2/2) s2 [d^2/(d+2) + (d-2)/(d+2)] = (kappa2/2) s2 (d - 1), kappa2 = eps/(d-1)^2,
    so r = eps s2 / (2 (d-1)) * sigma_min = 0.01 * 256 / 18 * 0.1 for the ICG (sigma_min = 0.1)."""
    cov = noise_covariance("iso")
    b2, r = theory_b2("icg", "iso", "smile", 0.01, cov)
    assert b2 == 0.0
    assert r == pytest.approx(0.01 * 256.0 / 18.0 * 0.1, rel=1e-9)
    assert theory_b2("funnel", "iso", "smile", 0.01, cov) == (None, None)
    assert theory_b2("icg", "spatial", "sgld", 0.01, cov) == (None, None)


def test_theory_b2_sgld_closed_form():
    """SGLD on N(0, I) with noise s2 I: S = (1-h)^2 S + h^2 s2 + 2h, i.e. S = (2 + h s2) / (2 - h) per coordinate."""
    h, s2 = 1e-3, 256.0
    S = (2 + h * s2) / (2 - h)
    b2, r = theory_b2("icg", "iso", "sgld", h, noise_covariance("iso"), icg_scales=(1.0, 1.0))
    assert r is None
    assert b2 == pytest.approx((S - 1) ** 2 / 2, rel=1e-9)


def test_bad_config_messages():
    with pytest.raises(ValueError, match="unknown config keys"):
        run_benchmark(dict(TINY, n_chainz=3))
    with pytest.raises(ValueError, match="noises"):
        run_benchmark(dict(TINY, noises=["pink"]))
    with pytest.raises(ValueError, match="n_replicates must be >= 2"):
        run_benchmark(dict(TINY, n_replicates=1))


def test_cli_replot_writes_outputs(tiny, tmp_path):
    """The CLI's --replot path writes results.json, table.md and one PNG per target atomically."""
    pytest.importorskip("matplotlib")
    src = tmp_path / "in.json"
    src.write_text(json.dumps(tiny))
    out = tmp_path / "out"
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, MPLBACKEND="Agg")
    subprocess.run([sys.executable, "-m", "validation.analytical_bias", "--replot", str(src), "--out", str(out)],
                   check=True, env=env, cwd=root, capture_output=True, timeout=120)
    names = sorted(os.listdir(out))
    assert names == ["b2_icg.png", "results.json", "table.md"]
    table = (out / "table.md").read_text()
    assert "| icg | aniso | SMILE-naive |" in table and "pSMILE-naive" in table
