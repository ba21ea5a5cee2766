"""BNN ensembles on UCI regression (Sommer et al. 2026, Sec. 5), quick budget.

``validation/uci_benchmark.py --quick`` in miniature: for each data set (seed 0) a deep ensemble is pre-trained and
each method samples from its members under :meth:`~smile_ref.ensembles.EnsembleConfig.quick` (4 members, 2,000
warm-up + 1,000 sampling steps; full-batch MILE is left out on bikesharing, where its 12,165-example gradients
make it take minutes).  The paper's numbers need 10 members and 30x the sampling budget, so the LPPD
rows are measurements next to the paper's best value, not claims; the one claim is that every method of the
pipeline runs end to end and yields finite metrics.  Full tables: docs/results/uci-benchmark.md.
"""
from __future__ import annotations

import math
import tempfile

from ..registry import check, exact, measure
from ..uci import PAPER_BEST_LPPD, run_uci
from ._common import have_matplotlib

_KEYS = ("lppd", "rmse", "coverage_80", "coverage_90", "coverage_95", "val_lppd")


def _notes(k: int, row: dict) -> str:
    parts = [] if k else ["quick budget (4 members, 1,000 sampling steps) against the paper's 10 members and 30x "
                          "the budget: not comparable, no claim"]
    sick = row.get("unhealthy_members") or {}
    if sick:
        parts.append(f"run health: {len(sick)} member(s) flagged: " +
                     "; ".join(f"member {m}: {', '.join(p)}" for m, p in sorted(sick.items())))
    return "; ".join(parts)


@check("uci_ensembles_quick", group="ensembles", seeds=(0,))
def uci_ensembles_quick(outdir, quick):
    """UCI ensembles (quick budget): DE, SMILE, pSMILE, SGLD, SGHMC, MILE end to end; LPPD next to the paper's."""
    import os

    with tempfile.TemporaryDirectory() as work:
        rows = run_uci(seeds=(0,), out_dir=work, progress=False, skip=(("bikesharing", "mclmc"),),
                       log=lambda *a: None)
    n_bad = sum(1 for r in rows for k in _KEYS if not math.isfinite(r[k]))
    out = [exact("uci_ensembles_quick", f"non-finite metrics over {len(rows)} runs", 0.0, float(n_bad), 0.0)]
    for k, r in enumerate(rows):
        out.append(measure("uci_ensembles_quick", f"{r['dataset']} {r['method']}: test LPPD (RMSE {r['rmse']:.3f}, "
                           f"cov90 {r['coverage_90']:.2f}, {r['grad_evals']:.0f} grads, {r['wall_time']:.0f} s)",
                           r["lppd"], None, reference=PAPER_BEST_LPPD[r["dataset"]], reference_label="paper best",
                           notes=_notes(k, r)))
    if have_matplotlib():
        from ..uci import plot_intervals

        plot_intervals(rows, "airfoil", os.path.join(outdir, "uci_intervals_airfoil.png"))
        out[0].plot = "uci_intervals_airfoil.png"
    return out
