"""Replay a given sequence of random inputs through a user function (cross-checks).

:class:`Replay` turns a host function ``fn(x, batch) -> (logdensity, grad)`` and
a finite sequence ``batches`` into a gradient estimator: the ``k``-th call of
``draw`` (``k = 0, 1, ...``) returns ``batches[k]`` and ``evaluate`` calls
``fn`` on it.  A sampler that evaluates the gradient at ``init`` draws there
too, so that evaluation consumes ``batches[0]``; every later draw (one per
SMILE step, one per SGLD step, ...) takes the next element.  This is how an
external implementation (e.g. the SMILE authors' JAX code) and smile_ref are
driven with identical mini-batches or noise draws, step for step.

``fn`` works on host NumPy arrays: ``x`` of shape ``(n, d)`` arrives as a
NumPy array of the run's dtype and ``fn`` must return a NumPy array ``(n,)``
and one ``(n, d)``; they are copied back to the namespace, device and dtype of
the sampler's position.  Each evaluation therefore moves ``x`` to the host and
the result back: this estimator is for verification, not for speed.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ..backend import backend_of, to_numpy
from ..backend.validate import check_positive_float
from ..errors import SmileRefError
from .base import GradientEstimator

__all__ = ["Replay", "ReplayExhausted"]


class ReplayExhausted(SmileRefError, IndexError):
    """A :class:`Replay` estimator was asked for more draws than its sequence holds."""


class Replay(GradientEstimator):
    """Gradient estimator that replays ``batches`` in order through ``fn``.

    Parameters
    ----------
    fn : callable
        ``fn(x, batch) -> (logdensity, grad)`` with ``x`` a host NumPy array
        ``(n, d)`` and ``batch`` one element of ``batches``; returns NumPy
        arrays of shapes ``(n,)`` and ``(n, d)``.  It must be deterministic
        given ``(x, batch)`` (SMILE evaluates several positions on one batch).
    batches : sequence
        The random inputs, one per draw: ``batches[k]`` is the input of the
        ``k``-th draw, the evaluation at ``init`` (if the sampler makes one)
        being draw 0.  Any objects ``fn`` accepts (index arrays ``(n, b)``,
        noise arrays ``(n, d)``, tuples of data arrays, ...).
    cost : float
        Cost of one evaluation in full-data gradients (``b / N`` for a
        mini-batch; default 1).
    stochastic : bool
        Whether the evaluations are noisy (default ``True``; samplers use it,
        e.g. SMILE's ``energy_error="same_batch"`` makes one extra log-density
        evaluation only for stochastic estimators).

    Raises
    ------
    ReplayExhausted
        From ``draw`` when all ``len(batches)`` draws are used.
    TypeError, ValueError
        From ``evaluate`` when ``fn`` does not return two NumPy arrays of
        shapes ``(n,)`` and ``(n, d)``.

    Notes
    -----
    The state is ``{"k": int, "n_chains": int}``, ``k`` the number of draws
    made so far.  ``draw`` does not mutate its input state; a checkpoint
    therefore resumes at the right element.

    Examples
    --------
    Replaying a mini-batch estimator's batches reproduces it exactly:

    >>> import numpy as np
    >>> from smile_ref.gradients import MiniBatch, Replay
    >>> from smile_ref.targets import LogisticRegression
    >>> rs = np.random.default_rng(0)
    >>> t = LogisticRegression(rs.standard_normal((50, 2)), (rs.random(50) < 0.5).astype(float))
    >>> idx = [rs.choice(50, (3, 10)) for _ in range(4)]
    >>> est = Replay(lambda x, b: t.logdensity_and_grad_batch(x, b), idx, cost=10 / 50)
    >>> state = est.init(3, None)
    >>> batch, state = est.draw(state, None, np.zeros((3, 2)))
    >>> lp, g = est.evaluate(np.zeros((3, 2)), batch)
    >>> lp.shape, g.shape, state["k"]
    ((3,), (3, 2), 1)
    """

    def __init__(self, fn: Callable, batches: Sequence, cost: float = 1.0, stochastic: bool = True):
        if not callable(fn):
            raise TypeError(f"fn must be callable as fn(x, batch) -> (logdensity, grad), got {type(fn).__name__}")
        if isinstance(batches, (str, bytes)) or not hasattr(batches, "__len__") or not hasattr(batches, "__getitem__"):
            raise TypeError(f"batches must be a sequence (list, tuple or array) with one element per draw, "
                            f"got {type(batches).__name__}")
        if not isinstance(stochastic, (bool, np.bool_)):
            raise TypeError(f"stochastic must be a bool, got {stochastic!r}")
        self.fn = fn
        self.batches = batches
        self.cost = check_positive_float(cost, "cost")
        self.stochastic = bool(stochastic)
        self.target = None

    def __len__(self) -> int:
        return len(self.batches)

    def init(self, n_chains: int, rng) -> dict:
        return {"k": 0, "n_chains": int(n_chains)}

    def draw(self, state: dict, rng, x) -> tuple:
        """``batches[state["k"]]`` and the state with ``k + 1``."""
        k = int(state["k"])
        if k >= len(self.batches):
            raise ReplayExhausted(
                f"Replay: draw {k} requested but batches holds only {len(self.batches)} elements "
                f"(the evaluation at init, if any, is draw 0; each step draws once per mini-batch)")
        return self.batches[k], {"k": k + 1, "n_chains": int(state["n_chains"])}

    def evaluate(self, x, batch):
        """``fn(host x, batch)`` copied back to the namespace, device and dtype of ``x``."""
        be = backend_of(x)
        n, d = (int(s) for s in x.shape)
        out = self.fn(to_numpy(x), batch)
        if not isinstance(out, tuple) or len(out) != 2:
            raise TypeError(f"fn must return a tuple (logdensity, grad), got {type(out).__name__}")
        lp, g = out
        for name, a, shape in (("logdensity", lp, (n,)), ("grad", g, (n, d))):
            if not isinstance(a, np.ndarray):
                raise TypeError(f"fn must return NumPy arrays; its {name} is a {type(a).__name__}")
            if tuple(a.shape) != shape:
                raise ValueError(f"fn returned {name} of shape {tuple(a.shape)}, expected {shape} for x of shape {(n, d)}")
            if not np.issubdtype(a.dtype, np.floating):
                raise TypeError(f"fn must return floating arrays; its {name} has dtype {a.dtype}")
        xp = be.xp
        return (xp.asarray(lp, dtype=x.dtype, device=be.device), xp.asarray(g, dtype=x.dtype, device=be.device))

    def describe(self) -> dict:
        return {"name": "Replay", "cost": float(self.cost), "n_batches": len(self.batches),
                "stochastic": self.stochastic}
