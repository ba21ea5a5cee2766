"""The SMILE paper's analytical bias benchmark, quick variant (``validation/analytical_bias.py`` runs it in full).

Quick setting (N(0, I_10) instead of the ICG so that chains mix within a minute; gradient noise of covariance
256 * C_y, isotropic / anisotropic / correlated; SMILE-naive, pSMILE-naive, SGLD; 3 step sizes; 4 replicate
groups of 32 chains): b^2 per cell is reported as a measurement next to its pure-Monte-Carlo noise level.  With
only 4 replicates the SEs have 3 degrees of freedom, too few for a normal-quantile test, so the claims are tested
elsewhere: isotropic noise unbiased (report check smile_isotropic_noise_unbiased; Student-t test in
tests/test_validation_analytical.py), anisotropic bias and its removal by pSMILE (the d=2 checks above; Welch test
in the same test file).  The full tables are in docs/results/analytical-bias.md.
"""
from __future__ import annotations

import numpy as np

from ..analytical import QUICK_CONFIG, run_benchmark
from ..report import check, measure
from ._common import have_matplotlib, savefig


@check("analytical_bias_quick", group="smile")
def analytical_bias_quick(outdir, quick):
    """Analytical benchmark (quick): isotropic noise unbiased; anisotropic noise biases SMILE, pSMILE removes most."""
    res = run_benchmark(dict(QUICK_CONFIG, progress=False, theory=False))
    rows = []
    for rec in res["records"]:
        label = f"{rec['sampler']} {rec['noise']} eps={rec['step_size']:.3g}: b^2"
        rows.append(measure("analytical_bias_quick", label, rec["noise_mean"], rec["b2_mean"], rec["b2_se"],
                            notes="reference column: pure Monte-Carlo level of b^2"))
    if have_matplotlib() and rows:
        import matplotlib.pyplot as plt

        noises = sorted({r["noise"] for r in res["records"]})
        fig, axes = plt.subplots(1, len(noises), figsize=(4 * len(noises), 3.4), sharey=True)
        for ax, noise in zip(np.atleast_1d(axes), noises):
            for sampler in sorted({r["sampler"] for r in res["records"]}):
                recs = sorted((r for r in res["records"] if r["noise"] == noise and r["sampler"] == sampler),
                              key=lambda r: r["step_size"])
                eps = [r["step_size"] for r in recs]
                ax.errorbar(eps, [r["b2_mean"] for r in recs], yerr=[r["b2_se"] for r in recs], marker="o",
                            capsize=3, label=sampler)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_title(f"{noise} noise", fontsize=9)
            ax.set_xlabel("step size")
        np.atleast_1d(axes)[0].set_ylabel("b^2")
        np.atleast_1d(axes)[0].legend(fontsize=8)
        rows[0].plot = savefig(fig, outdir, "analytical_bias_quick.png")
    return rows
