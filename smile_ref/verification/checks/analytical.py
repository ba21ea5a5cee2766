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
from ..registry import check, measure
from ._common import have_matplotlib, savefig


@check("analytical_bias_quick", group="smile", seeds=(QUICK_CONFIG["seed"],),
       description="Analytical benchmark (quick): b^2 of SMILE-naive, pSMILE-naive and SGLD under isotropic, "
                   "anisotropic and correlated noise, next to the Monte-Carlo noise level (measurements).")
def analytical_bias_quick(outdir, quick):
    """Analytical benchmark (quick): isotropic noise unbiased; anisotropic noise biases SMILE, pSMILE removes most."""
    res = run_benchmark(dict(QUICK_CONFIG, progress=False, theory=False))
    rows = []
    for k, rec in enumerate(res["records"]):
        label = f"{rec['sampler']} {rec['noise']} eps={rec['step_size']:.3g}: b^2"
        rows.append(measure("analytical_bias_quick", label, rec["b2_mean"], rec["b2_se"],
                            reference=rec["noise_mean"], reference_label="MC noise level",
                            notes="" if k else "4 replicate groups: too few degrees of freedom for a z-test; the "
                                               "claims are tested by the d=2 checks and tests/test_validation_analytical.py"))
    if have_matplotlib() and rows:
        import matplotlib.pyplot as plt

        recs_all = res["records"]
        noises = [n for n in ("iso", "aniso", "corr") if any(r["noise"] == n for r in recs_all)]
        noises += sorted({r["noise"] for r in recs_all} - set(noises))
        titles = {"iso": "isotropic noise", "aniso": "anisotropic noise", "corr": "correlated noise"}
        samplers = sorted({r["sampler"] for r in recs_all})
        with plt.rc_context({"font.size": 11}):
            fig, axes = plt.subplots(1, len(noises), figsize=(4.4 * len(noises), 4.6), sharey=True, squeeze=False)
            for ax, noise in zip(axes[0], noises):
                for i, sampler in enumerate(samplers):
                    recs = sorted((r for r in recs_all if r["noise"] == noise and r["sampler"] == sampler),
                                  key=lambda r: r["step_size"])
                    eps = [r["step_size"] for r in recs]
                    ax.errorbar(eps, [r["b2_mean"] for r in recs], yerr=[r["b2_se"] for r in recs], marker="o",
                                capsize=3, color=f"C{i}", label=f"{sampler} (b² ± SE)")
                    ax.plot(eps, [r["noise_mean"] for r in recs], ls=":", color=f"C{i}", lw=1.5)
                ax.set_xscale("log")
                ax.set_yscale("log")
                ax.set_title(titles.get(noise, noise))
                ax.set_xlabel("step size ε (target time units)")
                ax.grid(True, which="major", alpha=0.3)
            axes[0][0].set_ylabel("b² (dimensionless)")
            handles, labels = axes[0][0].get_legend_handles_labels()
            handles.append(plt.Line2D([], [], color="grey", ls=":", lw=1.5))
            labels.append("Monte-Carlo noise level of b² (dotted, same colour)")
            fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=10)
            fig.suptitle("Analytical benchmark (quick; N(0, I), d = 10): "
                         "b² = mean over i of (Ê[x_i²] − E[x_i²])² / Var[x_i²]")
            fig.tight_layout(rect=(0, 0.08, 1, 1))
            rows[0].plot = savefig(fig, outdir, "analytical_bias_quick.png")
    return rows
