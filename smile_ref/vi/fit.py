"""The one-call VI entry point :func:`fit_vi` and its result :class:`VIResult` (mirrors ``run_chains``)."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..backend import Backend, backend_of, get_backend, make_random, to_numpy
from ..backend.validate import check_nonneg_int, check_positive_int, check_real_array
from ..errors import VIDivergenceError
from ..gradients.exact import Exact
from ._common import check_on_invalid
from .advi import ADVI
from .bam import BaM
from .families import DiagGaussian, FullGaussian
from .gsm import GSM
from .flow import SinhArcsinhFlow
from .sinh_arcsinh import SinhArcsinh
from .score_vi import ScoreVI

__all__ = ["fit_vi", "VIResult", "METHODS", "FAMILIES", "FLOW_INNER_LR"]

#: ``score_vi``'s default inner Adam step for ``family="sinh_arcsinh_flow"`` (0.05, the mean-field default,
#: diverges on a correlated 4-d Gaussian; 0.01 converges: docs/derivations/score-vi.md).
FLOW_INNER_LR = 0.01

METHODS = {"score_vi": ScoreVI, "advi": ADVI, "gsm": GSM, "bam": BaM}
FAMILIES = ("diag_gaussian", "full_gaussian", "sinh_arcsinh", "sinh_arcsinh_flow")


@dataclass
class VIResult:
    """Output of :func:`fit_vi`.

    Attributes
    ----------
    family : DiagGaussian or FullGaussian
        The fitted member (arrays of the run's namespace/device/dtype).
    trace : numpy.ndarray (n_iter,)
        The method's objective per iteration (``score_vi``: ``J_t`` at the new iterate; ``advi``:
        negative ELBO estimate; ``gsm``/``bam``: score-matching loss at the current iterate).
    n_skipped : int
        Iterations skipped (non-finite scores, non-SPD or non-finite updates) plus, for
        ``score_vi``'s diagonal update, coordinates guarded for ``tau <= 0``.
    n_gradient_evals : float
        Score evaluations in full-data units: ``n_iter * n_samples * gradient.cost``.
    """

    family: Any
    trace: np.ndarray
    n_skipped: int
    n_gradient_evals: float
    method: str
    seed: Any
    backend: str
    wall_time: float
    meta: dict = field(default_factory=dict)

    @property
    def mean(self) -> np.ndarray:
        """Mean of the fitted family (exact for Gaussians; 200 000-draw Monte Carlo, seed 0, otherwise)."""
        if hasattr(self.family, "mean"):
            return to_numpy(self.family.mean)
        return self._mc().mean(axis=0)

    @property
    def cov(self) -> np.ndarray:
        """Covariance of the fitted family (exact for Gaussians; Monte Carlo as :attr:`mean` otherwise)."""
        if hasattr(self.family, "cov"):
            return to_numpy(self.family.cov)
        return np.atleast_2d(np.cov(self._mc().T))

    def _mc(self) -> np.ndarray:
        if "_mc_draws" not in self.meta:
            self.meta["_mc_draws"] = self.sample(200_000, seed=0)
        return self.meta["_mc_draws"]

    def sample(self, n: int, seed=0) -> np.ndarray:
        """``n`` draws from the fitted family as a host array ``(n, d)``."""
        n = check_positive_int(n, "n")
        return to_numpy(self.family.sample(make_random(seed, backend_of(self.family.loc)), n))


def _initial_family(family: str, bk: Backend, d: int, init_mean, init_cov, n_layers: int = 2, flow_seed: int = 0):
    m = bk.zeros((d,)) if init_mean is None else bk.asarray(check_real_array(init_mean, "init_mean"))
    if tuple(m.shape) != (d,):
        raise ValueError(f"init_mean must have shape ({d},), got {tuple(m.shape)}")
    if init_cov is None:
        c = np.eye(d)
    else:
        c = check_real_array(init_cov, "init_cov")
        if c.shape != (d, d):
            raise ValueError(f"init_cov must have shape ({d}, {d}), got {c.shape}")
    if family in ("diag_gaussian", "sinh_arcsinh", "sinh_arcsinh_flow"):
        if not np.all(np.diag(c) > 0):
            raise ValueError("init_cov must have a positive diagonal")
        if family == "sinh_arcsinh_flow":
            return SinhArcsinhFlow.init(m, bk.asarray(0.5 * np.log(np.diag(c))), n_layers, flow_seed)
        if family == "sinh_arcsinh":
            return SinhArcsinh(m, bk.asarray(0.5 * np.log(np.diag(c))), bk.zeros((d,)), bk.zeros((d,)))
        return DiagGaussian(m, bk.asarray(1.0 / np.diag(c)))
    return FullGaussian(m, bk.asarray(c))


def fit_vi(method: str, target, family: str = "diag_gaussian", *, n_iter: int, n_samples: int, seed,
           beta="auto", gradient=None, backend=None, dtype: str | None = None, device=None,
           init_mean=None, init_cov=None, on_invalid: str = "skip", callback=None, **options) -> VIResult:
    """Fit a Gaussian variational family to ``target`` with a registered VI method.

    Parameters
    ----------
    method : {"score_vi", "advi", "gsm", "bam"}
    target : Target
        Any ``smile_ref.targets`` object.
    family : {"diag_gaussian", "full_gaussian", "sinh_arcsinh", "sinh_arcsinh_flow"}
        ``gsm`` and ``bam`` need ``"full_gaussian"``; ``advi`` is mean-field or full-rank accordingly;
        ``"sinh_arcsinh"`` (mean-field, non-Gaussian; initial skew 0, tail 1) is fitted by ``score_vi`` only.
    n_iter, n_samples : int
        Iterations and samples ``M`` per iteration (``score_vi`` full family: ``M >= d + 1``).
    seed : int or numpy.random.SeedSequence
    beta : "auto" or float >= 0
        Proximal weight of ``score_vi`` (ignored by the other methods).  ``"auto"`` (default) starts
        at 0 and doubles ``beta`` from a precision scale whenever the iterates start to diverge
        (:class:`~smile_ref.vi.score_vi.ScoreVI`); a numeric ``beta`` is kept fixed and a divergence
        raises :class:`~smile_ref.errors.VIDivergenceError`.  The value used last is
        ``VIResult.meta["beta"]``.
    gradient : GradientEstimator, optional
        Score estimator (default :class:`~smile_ref.gradients.Exact`); a
        :class:`~smile_ref.gradients.MiniBatch` gives each sample its own batch.
    backend, dtype, device
        As in :func:`smile_ref.run_chains`.
    init_mean, init_cov : array-like, optional
        Initial member (default ``N(0, I)``).
    on_invalid : {"skip", "raise"}
        Policy for non-finite scores and invalid updates: keep the previous iterate and count it
        in ``n_skipped``, or raise ``FloatingPointError``.  No iterate is ever NaN.
    callback : callable, optional
        ``callback(t, q)`` after every iteration with the current family member (e.g. to record an error
        curve); its return value is ignored.
    **options
        Method options: ``n_inner``, ``inner_lr`` (score_vi; default 0.05, :data:`FLOW_INNER_LR` = 0.01 for
        ``family="sinh_arcsinh_flow"``), ``lr`` (advi), ``lam``, ``schedule`` (bam);
        ``n_layers`` (default 2) and ``flow_seed`` (seed of the fixed Haar rotations, default 0) for
        ``family="sinh_arcsinh_flow"`` (:class:`~smile_ref.vi.flow.SinhArcsinhFlow`, Gaussian-initialised).

    Returns
    -------
    VIResult
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {sorted(METHODS)}, got {method!r}")
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {FAMILIES}, got {family!r}")
    n_iter = check_positive_int(n_iter, "n_iter")
    n_samples = check_positive_int(n_samples, "n_samples")
    on_invalid = check_on_invalid(on_invalid)
    if not hasattr(target, "dim") or not hasattr(target, "logdensity_and_grad"):
        raise TypeError("target must provide dim and logdensity_and_grad (a smile_ref.targets object)")
    if n_samples < 2:
        raise ValueError(f"n_samples must be >= 2 (sample covariances are needed), got {n_samples}")
    bk = backend if isinstance(backend, Backend) else get_backend(backend or "numpy", dtype or "float64", device)
    if family in ("sinh_arcsinh", "sinh_arcsinh_flow") and method != "score_vi":
        raise ValueError(f"family={family!r} is fitted by method='score_vi' only, got method={method!r}")
    n_layers = check_positive_int(options.pop("n_layers", 2), "n_layers")
    flow_seed = check_nonneg_int(options.pop("flow_seed", 0), "flow_seed")
    if method == "score_vi":
        if family == "sinh_arcsinh_flow":  # the flow's inner Adam diverges at the mean-field default 0.05
            options.setdefault("inner_lr", FLOW_INNER_LR)
        algo = METHODS[method](beta=beta, on_invalid=on_invalid, **options)
    else:
        algo = METHODS[method](on_invalid=on_invalid, **options)
    gradient = Exact(target) if gradient is None else gradient
    random = make_random(seed, bk)
    d = int(target.dim)
    state = algo.init(_initial_family(family, bk, d, init_mean, init_cov, n_layers, flow_seed))
    gstate = gradient.init(n_samples, random)
    xp = bk.xp
    trace, n_skipped, last_skipped = [], 0, False
    t0 = time.perf_counter()
    for t in range(n_iter):
        theta, aux = algo.sample(state, random, n_samples)
        batch, gstate = gradient.draw(gstate, random, theta)
        logp, s = gradient.evaluate(theta, batch)
        if not (bool(xp.all(xp.isfinite(s))) and bool(xp.all(xp.isfinite(logp)))):
            if on_invalid == "raise":
                raise FloatingPointError(f"{method} iteration {t}: non-finite log-density or score at a sample of q_t "
                                         "(pass on_invalid='skip' to skip such iterations)")
            n_skipped += 1
            last_skipped = True
            trace.append(xp.asarray(math.nan, dtype=bk.dtype, device=bk.device))
            if hasattr(algo, "on_nonfinite_scores"):  # score_vi: divergence monitor (restart or raise)
                state = algo.on_nonfinite_scores(state, t)
        else:
            last_skipped = False
            state, objective, bad = algo.update(state, theta, aux, logp, s, t)
            n_skipped += bad
            trace.append(objective)
        if callback is not None:
            callback(t, algo.family(state))
    wall = time.perf_counter() - t0
    fitted = algo.family(state)
    _check_converged(fitted, last_skipped, method, family, algo)
    cost = float(getattr(gradient, "cost", 1.0))
    return VIResult(
        family=fitted, trace=to_numpy(xp.stack(trace)), n_skipped=n_skipped,
        n_gradient_evals=cost * n_iter * n_samples, method=method, seed=seed, backend=bk.name, wall_time=wall,
        meta={"family": family, "beta": float(getattr(algo, "beta_used", 0.0)) if method == "score_vi" else None,
              "beta_option": beta if isinstance(beta, str) else float(beta),
              "n_restarts": int(getattr(algo, "n_restarts", 0)), "n_iter": n_iter, "n_samples": n_samples,
              "options": {k: repr(v) for k, v in sorted(options.items())},
              "target": target.describe() if hasattr(target, "describe") else repr(target)},
    )


def _check_converged(fitted, last_skipped: bool, method: str, family: str, algo) -> None:
    """Raise :class:`~smile_ref.errors.VIDivergenceError` when the fit ends where it cannot be used: its last
    iteration met non-finite values at samples of ``q``, or the family's exact moments are not finite."""
    moments = [getattr(fitted, k) for k in ("mean", "cov") if hasattr(fitted, k)]
    finite = all(bool(np.all(np.isfinite(to_numpy(m)))) for m in moments)
    if finite and not last_skipped:
        return
    what = "the last iteration met non-finite values at samples of q" if last_skipped else \
        "the fitted family has non-finite moments"
    settings = ""
    if method == "score_vi":
        settings = f" (beta={float(getattr(algo, 'beta_used', algo.beta)):g}, inner_lr={algo.inner_lr:g})"
    raise VIDivergenceError(f"{method} with family={family!r} diverged: {what}{settings}; lower inner_lr / lr, "
                            "or give a fixed larger beta (score_vi)")
