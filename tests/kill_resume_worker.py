"""Worker process of ``tests/test_kill_resume.py``: run or resume one checkpointed case.

``python -m tests.kill_resume_worker CASE CHECKPOINT SIGNAL`` runs ``CASE`` with a checkpoint every
``EVERY`` steps; once the first checkpoint exists the gradient estimator writes ``SIGNAL`` and slows
down, and the parent SIGKILLs the process.  The parent resumes in its own process.
"""
from __future__ import annotations

import os
import sys
import time

import numpy as np

import smile_ref
from smile_ref import gradients, targets

EVERY = 7
N_STEPS, BURN_IN = 60, 40


def case(name: str):
    """``(sampler, target, gradient, options)`` of each case (NumPy float64)."""
    if name == "mclmc":
        t = targets.Gaussian.diagonal(np.linspace(0.5, 2.0, 5))
        return "mclmc", t, gradients.Exact(t), {}
    if name == "smile":
        t = targets.Gaussian.diagonal(np.linspace(0.5, 2.0, 5))
        return "smile", t, gradients.AdditiveNoise(t, 0.5), {"step_size": 0.1}
    rng = np.random.default_rng(1)
    X = rng.standard_normal((50, 3))
    y = (X @ np.array([1.0, -1.0, 0.5]) + rng.standard_normal(50) > 0).astype(float)
    t = targets.LogisticRegression(X, y)
    if name == "psmile":
        return "psmile", t, gradients.MiniBatch(t, 10), {"step_size": 0.05}
    if name == "sgld":
        return "sgld", t, gradients.MiniBatch(t, 10), {"step_size": 1e-3}
    raise ValueError(name)


class Slow(gradients.GradientEstimator):
    """Delegates to ``inner``; after the first checkpoint exists it signals the parent and slows down."""

    def __init__(self, inner, checkpoint, signal):
        self.inner, self.checkpoint, self.signal = inner, checkpoint, signal
        self.target, self.cost, self.stochastic = inner.target, inner.cost, inner.stochastic

    def resume_identity(self):
        return self.inner

    def describe(self):
        return self.inner.describe()

    def init(self, n, rng):
        return self.inner.init(n, rng)

    def draw(self, state, rng, x):
        return self.inner.draw(state, rng, x)

    def evaluate(self, x, batch):
        if os.path.exists(self.checkpoint):
            if not os.path.exists(self.signal):
                with open(self.signal, "w") as fh:
                    fh.write("ready")
            time.sleep(0.01)
        return self.inner.evaluate(x, batch)


COMMON = dict(n_chains=3, n_steps=N_STEPS, burn_in=BURN_IN, thinning=2, seed=2026, progress=False)


def main(argv):
    name, ck, signal = argv
    sampler, t, g, kw = case(name)
    kw.update(COMMON)
    smile_ref.run_chains(sampler, t, gradient=Slow(g, ck, signal), checkpoint=ck, checkpoint_every=EVERY, **kw)
    return 3  # the parent should have killed us before the end


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
