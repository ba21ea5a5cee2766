"""Timing of sampler steps outside the driver: per-call wall times and a kernel at fixed parameters.

The benchmarks measure what one ``kernel.step`` costs, without :func:`~smile_ref.run_chains`'
recording, warm-up or tuning.  :class:`FixedStepper` builds a registered sampler with a fixed step
size, exact gradients (:class:`~smile_ref.gradients.Exact`) and ``tuner=None`` and advances all
chains by one step per call; :func:`time_calls` returns per-call wall times of any callable.

On a shared machine other jobs only ever add time, so the minimum over calls estimates the cost of
a call and the median shows how noisy the machine was.
"""
from __future__ import annotations

import datetime
import importlib.util
import os
import platform
import statistics
import time
from typing import Any, Callable

import numpy as np

from ..backend import get_backend, to_numpy
from ..backend.random import HostRandom
from ..backend.validate import check_nonneg_int, check_positive_float, check_positive_int
from ..gradients.exact import Exact
from ..samplers import base as registry

__all__ = ["time_calls", "FixedStepper", "run_header", "load_reference", "kernel_bar_workload"]


def time_calls(fn: Callable[[], Any], budget: float = 2.0, max_calls: int = 200, min_calls: int = 3) -> dict:
    """Per-call wall times (``time.perf_counter``) of ``fn()`` after one warm-up call.

    Calls ``fn`` at least ``min_calls`` times, then while fewer than ``budget`` seconds have passed
    and fewer than ``max_calls`` calls were made.

    Returns
    -------
    dict
        ``{"median": s, "min": s, "calls": k}``: median and minimum seconds per call, and the
        number of timed calls.

    Examples
    --------
    >>> t = time_calls(lambda: sum(range(100)), budget=0.0)
    >>> t["calls"], t["min"] <= t["median"]
    (3, True)
    """
    budget = float(budget)
    if not budget >= 0.0:
        raise ValueError(f"budget must be >= 0 seconds, got {budget!r}")
    max_calls, min_calls = check_positive_int(max_calls, "max_calls"), check_positive_int(min_calls, "min_calls")
    fn()
    times, start = [], time.perf_counter()
    while len(times) < min_calls or (time.perf_counter() - start < budget and len(times) < max_calls):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return {"median": statistics.median(times), "min": min(times), "calls": len(times)}


class FixedStepper:
    """A registered sampler stepped at a fixed step size (``tuner=None``, no warm-up), exact gradients.

    Parameters
    ----------
    sampler : str
        Registered sampler name (e.g. ``"mclmc"``, ``"smile"``).
    target : Target
        The density; positions start at ``N(0, I)`` draws of the random source.
    n_chains : int
    step_size : float
        The fixed step size ``eps``.
    L : float, optional
        Momentum-refresh length, for the samplers that take one (``"mclmc"``).
    seed : int
        Seed of the host random source (:class:`~smile_ref.backend.random.HostRandom`).
    backend : Backend, optional
        Defaults to NumPy float64.
    count_rejected : bool
        Sum ``info["rejected"]`` after every step into :attr:`rejected` (a host reduction over the
        chains; ``False`` times the bare ``kernel.step``).
    **options
        Further keyword arguments of the sampler's builder.

    Attributes
    ----------
    kernel, rng, state : the sampler, its random source and the current state of all chains.
    rejected : int, guardrail rejections summed over chains and steps so far (0 without ``count_rejected``).

    Examples
    --------
    >>> from smile_ref.targets import Gaussian
    >>> s = FixedStepper("mclmc", Gaussian.isotropic(3), n_chains=2, step_size=0.5, L=2.0)
    >>> s.step(); s.step()
    >>> s.state.position.shape, s.rejected
    ((2, 3), 0)
    """

    def __init__(self, sampler: str, target, n_chains: int, step_size: float, L: float | None = None,
                 seed: int = 0, backend=None, count_rejected: bool = True, **options):
        n_chains = check_positive_int(n_chains, "n_chains")
        step_size = check_positive_float(step_size, "step_size")
        seed = check_nonneg_int(seed, "seed")
        if L is not None:
            options["L"] = check_positive_float(L, "L")
        bk = get_backend("numpy", "float64") if backend is None else backend
        self.kernel = registry.get(sampler)(target, Exact(target), bk, step_size=step_size, n_warmup=0,
                                            tuner=None, **options)
        self.rng = HostRandom(seed, bk)
        self.state = self.kernel.init(self.rng.normal((n_chains, target.dim)), self.rng)
        self.rejected = 0
        self.count_rejected = bool(count_rejected)

    def step(self) -> None:
        """Advance every chain by one ``kernel.step`` (outside warm-up) and count its rejections."""
        self.state, info = self.kernel.step(self.state, self.rng, False)
        if self.count_rejected:
            r = info["rejected"]
            self.rejected += int(np.sum(r if isinstance(r, np.ndarray) else to_numpy(r)))


def run_header(**extra) -> dict:
    """Date, machine, ``OPENBLAS_NUM_THREADS`` and smile_ref version of a benchmark run (plus ``extra``)."""
    from .. import __version__

    return {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "machine": f"{platform.machine()} {platform.python_version()} numpy {np.__version__}",
            "openblas_threads": os.environ.get("OPENBLAS_NUM_THREADS"), "smile_ref": __version__, **extra}


def load_reference(path: str, name: str = "reference_loop"):
    """Import an external reference implementation (e.g. the 30-line NumPy loop) from its file."""
    if not os.path.isfile(path):
        raise SystemExit(f"reference loop not found at {path!r}; pass its path (--minimal PATH)")
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def kernel_bar_workload(d: int):
    """``(prec, chol)`` of the kernel bar: target ``N(0, diag(1/prec))`` with ``prec = 1/logspace(-0.5, 0.5, d)``
    and additive noise of standard deviations ``logspace(-0.5, 0.5, d)[::-1]`` (``chol`` diagonal)."""
    prec = 1.0 / np.logspace(-0.5, 0.5, d)
    return prec, np.diag(np.logspace(-0.5, 0.5, d)[::-1])
