"""Helpers shared by the report checks (host-side; checks run on NumPy)."""
from __future__ import annotations

import os

import numpy as np

from ...diagnostics import mean_and_se


def ratio_second_moments(samples: np.ndarray, second_moment: np.ndarray):
    """Mean and SE of ``q = mean_i x_i^2 / E[x_i^2]`` (predicted 1 when unbiased).

    ``q`` is computed per draw, so correlations between coordinates are accounted for.  The SE comes from
    the spread of the independent chains' means (one batch per chain): short batches underestimate the SE
    when the slowest direction's autocorrelation time is long (seen on the ICG at small step sizes).
    """
    q = np.mean(samples**2 / second_moment, axis=-1)
    m, se = mean_and_se(q, n_batches=1)
    return float(m), float(se)


def savefig(fig, outdir: str, name: str) -> str:
    path = os.path.join(outdir, name)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return name


def have_matplotlib() -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        return True
    except ImportError:
        return False
