"""Budgets and per-sampler defaults of the BNN ensemble pipeline (Sommer et al. 2026, Sec. 5 / App.).

:class:`EnsembleConfig` collects every knob of :func:`smile_ref.ensembles.run_ensemble`.  Three
budgets are provided:

``EnsembleConfig.paper()``
    The paper's UCI settings (authors' configuration files): 10 members; deep-ensemble
    pre-training with AdamW (lr 1e-2, weight decay 5e-3, batch 64, <= 200 epochs, early stopping
    with patience 10 on validation NLL); then per member 50,000 warm-up and 10,000 sampling steps
    with mini-batches of 256, thinning 10 (1,000 draws per member, 10,000 in all).
``EnsembleConfig.quick()``
    A reduced budget that runs a UCI set in about a minute per method on 2 CPU cores (used by
    ``validation/uci_benchmark.py --quick`` and ``smile-ref verify --quick``): 4 members,
    <= 60 pre-training epochs, 2,000 warm-up and 1,000 sampling steps, thinning 10.
``EnsembleConfig.tiny()``
    Seconds; for tests only.

Step sizes follow each sampler's own convention (``docs/conventions.md``,
``docs/conventions-sgmcmc.md``): for the microcanonical samplers (``"smile"``, ``"psmile"``,
``"mclmc"``) it is the *initial* step size of the tuner (the paper searches {1e-2, 1e-3, 1e-4});
for the SG-MCMC baselines it is the fixed step ``h`` (SGLD, pSGLD, BNP-SGLD) or learning rate
``eta`` (SGHMC) applied to the gradient of the *whole-data* log posterior, so a value comparable to
the paper's per-example learning rate is that value divided by ``N_train``; the defaults below
were chosen that way and are searched over by the benchmark script's ``--grid``.

SMILE/pSMILE tuner on BNNs
--------------------------
In the pipeline ``"smile"`` and ``"psmile"`` tune their step size with the Var[dE]/d tuner
(``tuner="mclmc"``: :func:`smile_ref.tuners.mclmc.mclmc_tuner`, target 5e-4, held after warm-up)
(since made the samplers' default as well, ``docs/smile-defaults.md``; the pipeline passes it
explicitly) instead of the authors' Gamma energy-error tuner (``tuner="energy_error"``).  On
the UCI networks the Gamma tuner's step size drifts down for the whole run (airfoil, paper budget:
1e-3 -> 1e-8 in every member, 15k-40k rejected steps; the authors' cross-batch energy error only
slows the drift; ``docs/ensembles.md``), so the chains barely move and the ensemble stays at the
deep-ensemble's LPPD.  Pass ``sampler_options={"tuner": "energy_error"}`` for the Gamma tuner
(the UCI benchmark's methods ``"smile_gamma"``/``"psmile_gamma"``).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

from ..backend.validate import check_bool, check_nonneg_int, check_positive_float, check_positive_int, check_real

__all__ = ["EnsembleConfig", "SAMPLER_DEFAULTS", "STEP_SIZE_GRIDS", "sampler_setup"]

#: Default options and initial/fixed step size per registered sampler.  ``full_batch`` means the
#: sampler uses the exact gradient (MILE = full-batch MCLMC with MILE's tuning schedule).
SAMPLER_DEFAULTS: dict[str, dict] = {
    "smile": {"step_size": 1e-3, "options": {"tuner": "mclmc"}},
    "psmile": {"step_size": 1e-3, "options": {"tuner": "mclmc"}},
    "mclmc": {"step_size": 1e-2, "options": {"tuner": "mile"}, "full_batch": True},
    "sgld": {"step_size": 1e-6, "options": {}, "per_example_scale": True},
    "psgld": {"step_size": 1e-6, "options": {}, "per_example_scale": True},
    "bnp_sgld": {"step_size": 1e-6, "options": {}, "per_example_scale": True},
    "sghmc": {"step_size": 1e-6, "options": {"alpha": 0.05}, "per_example_scale": True},
    # the SMILE authors' UCI SGHMC: eps = 1e-3, mdecay 0.05, i.e. eta = eps^2 (samplers/sghmc_adaptive.py)
    "sghmc_adaptive": {"step_size": 1e-6, "options": {"alpha": 0.05}},
}

#: The grids searched by the benchmark for each sampler (validation LPPD picks the value).
STEP_SIZE_GRIDS: dict[str, tuple] = {
    "smile": (1e-2, 1e-3, 1e-4),
    "psmile": (1e-2, 1e-3, 1e-4),
    "mclmc": (1e-2, 1e-3, 1e-4),
    "sgld": (1e-5, 1e-6, 1e-7),
    "psgld": (1e-5, 1e-6, 1e-7),
    "bnp_sgld": (1e-5, 1e-6, 1e-7),
    "sghmc": (1e-5, 1e-6, 1e-7),
    "sghmc_adaptive": (1e-4, 1e-6, 1e-8),  # eps in {1e-2, 1e-3, 1e-4} of the authors' search
}


@dataclass(frozen=True)
class EnsembleConfig:
    """All budgets of one ensemble run (see the module docstring for the presets).

    Attributes
    ----------
    n_members : int
        Ensemble members = deep-ensemble networks = chains (one chain per member).
    pretrain_lr, pretrain_weight_decay, pretrain_batch_size, pretrain_max_epochs, pretrain_patience
        AdamW deep-ensemble training (:func:`smile_ref.ensembles.pretrain_ensemble`).
    batch_size : int
        Mini-batch size of the stochastic-gradient samplers (ignored by full-batch ``"mclmc"``).
    n_warmup, n_samples, thinning : int
        Warm-up steps (tuners adapt, nothing recorded), sampling steps, and recording interval:
        each member keeps ``n_samples // thinning`` draws.
    step_size : float or None
        Overrides :data:`SAMPLER_DEFAULTS` for the sampler run.
    sampler_options : dict
        Extra options passed to the sampler builder (merged over the defaults).
    checkpoint_every : int or None
        Steps between sampling checkpoints (atomic ``.npz``; ``None``: only at the end).
    minibatch_options : dict
        Options of the samplers' :class:`~smile_ref.gradients.MiniBatch` (e.g. the SMILE authors'
        ``{"scale": "floor", "schedule": "authors"}``).
    pretrain_drop_last : bool
        Pre-training skips each epoch's incomplete last batch (the authors' loader).
    pretrain_fix_log_sigma : float or None
        Pre-train with ``log sigma`` pinned at this value (the authors' mean regression: 0, i.e. MSE);
        the chains then start there.  ``None``: ``log sigma`` is learned.
    """

    n_members: int = 10
    pretrain_lr: float = 1e-2
    pretrain_weight_decay: float = 5e-3
    pretrain_batch_size: int = 64
    pretrain_max_epochs: int = 200
    pretrain_patience: int = 10
    batch_size: int = 256
    n_warmup: int = 50_000
    n_samples: int = 10_000
    thinning: int = 10
    step_size: float | None = None
    sampler_options: dict = field(default_factory=dict)
    checkpoint_every: int | None = 5_000
    minibatch_options: dict = field(default_factory=dict)
    pretrain_drop_last: bool = False
    pretrain_fix_log_sigma: float | None = None

    def __post_init__(self):
        for name in ("n_members", "pretrain_batch_size", "pretrain_max_epochs", "pretrain_patience",
                     "batch_size", "n_samples", "thinning"):
            check_positive_int(getattr(self, name), name)
        check_nonneg_int(self.n_warmup, "n_warmup")
        check_positive_float(self.pretrain_lr, "pretrain_lr")
        check_positive_float(self.pretrain_weight_decay, "pretrain_weight_decay", allow_zero=True)
        if not isinstance(self.sampler_options, dict) or not all(isinstance(k, str) for k in self.sampler_options):
            raise TypeError(f"sampler_options must be a dict of option names to values, got {self.sampler_options!r}")
        if self.step_size is not None:
            check_positive_float(self.step_size, "step_size")
        if self.thinning > self.n_samples:
            raise ValueError(f"thinning ({self.thinning}) must be <= n_samples ({self.n_samples}) "
                             "or no draw would be kept")
        if self.checkpoint_every is not None:
            check_positive_int(self.checkpoint_every, "checkpoint_every")
        if not isinstance(self.minibatch_options, dict) or not all(isinstance(k, str) for k in self.minibatch_options):
            raise TypeError(f"minibatch_options must be a dict of MiniBatch option names to values, got "
                            f"{self.minibatch_options!r}")
        check_bool(self.pretrain_drop_last, "pretrain_drop_last")
        if self.pretrain_fix_log_sigma is not None:
            check_real(self.pretrain_fix_log_sigma, "pretrain_fix_log_sigma")

    @classmethod
    def paper(cls, **overrides) -> "EnsembleConfig":
        """The paper's UCI budget (10 members, 50k + 10k steps, batch 256, thinning 10)."""
        return replace(cls(), **overrides)

    @classmethod
    def quick(cls, **overrides) -> "EnsembleConfig":
        """About a minute per method and data set on 2 CPU cores."""
        base = cls(n_members=4, pretrain_max_epochs=60, n_warmup=2_000, n_samples=1_000, thinning=10,
                   checkpoint_every=None)
        return replace(base, **overrides)

    @classmethod
    def tiny(cls, **overrides) -> "EnsembleConfig":
        """Seconds; for tests."""
        base = cls(n_members=2, pretrain_max_epochs=5, pretrain_patience=2, batch_size=32, n_warmup=20,
                   n_samples=20, thinning=5, checkpoint_every=None)
        return replace(base, **overrides)

    def to_dict(self) -> dict:
        """All fields; the protocol fields (``minibatch_options``, ``pretrain_drop_last``,
        ``pretrain_fix_log_sigma``) only when they differ from their defaults, so that the
        descriptions of runs made before they existed still match on resume."""
        d = asdict(self)
        for name in _PROTOCOL_FIELDS:
            if d[name] == _PROTOCOL_DEFAULTS[name]:
                del d[name]
        return d


_PROTOCOL_FIELDS = ("minibatch_options", "pretrain_drop_last", "pretrain_fix_log_sigma")
_PROTOCOL_DEFAULTS = {"minibatch_options": {}, "pretrain_drop_last": False, "pretrain_fix_log_sigma": None}


def sampler_setup(sampler: str, config: EnsembleConfig) -> tuple[float, dict, bool]:
    """``(step_size, options, full_batch)`` for ``sampler`` under ``config``."""
    if sampler not in SAMPLER_DEFAULTS:
        raise ValueError(f"sampler must be one of {sorted(SAMPLER_DEFAULTS)} (or 'de' for the deep "
                         f"ensemble alone), got {sampler!r}")
    d = SAMPLER_DEFAULTS[sampler]
    step = float(config.step_size) if config.step_size is not None else float(d["step_size"])
    opts = dict(d["options"])
    opts.update(config.sampler_options)
    return step, opts, bool(d.get("full_batch", False))
