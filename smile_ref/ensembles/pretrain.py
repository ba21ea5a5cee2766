"""Deep-ensemble pre-training: AdamW with early stopping, all members in one batched evaluation.

The deep-ensemble members of Sommer et al. 2026 (Sec. 5 and the appendix's configurations; the
same recipe as MILE, Sommer et al. 2025): each member ``j = 1..M`` starts from its own random
initialisation and minimises the mean negative log-likelihood of its mini-batch,

    L_j(theta) = -(1/b) sum_{i in B_j} log p(y_i | x_i, theta),

with AdamW (lr 0.01, weight decay 0.005, :mod:`smile_ref.ensembles.adamw`); there is no prior
term, the decoupled weight decay plays its role.  Batches of ``b = 64`` examples, at most 200
epochs, early stopping with patience 10 on the validation loss.

Conventions (choices the paper leaves open, fixed here):

* **Batches.** Every epoch each member draws its own permutation of the ``N`` training examples
  (host PCG64 generator seeded by ``SeedSequence(seed).spawn(2)[1]``, one ``(M, N)`` draw per
  epoch for all members, whether stopped or not) and visits them in ``ceil(N / b)`` batches; the
  last, incomplete batch of ``N mod b`` examples is *included* (as PyTorch's ``DataLoader`` with
  ``drop_last=False``), with its loss averaged over its own size.  An epoch is therefore exactly one
  full-data gradient equivalent.  ``b > N`` is clipped to ``N`` (one full batch per epoch).
* **Validation loss** after each epoch: ``V_j = -(1/N_val) sum_i log p(y_i^val | x_i^val, theta_j)``
  (mean NLL, including the learned noise scale for regression).  ``V_j`` of the initial parameters
  is recorded as epoch 0 and is the first "best" value.
* **Early stopping** (Keras ``EarlyStopping`` with ``min_delta = 0``): epoch ``e`` improves member
  ``j`` when ``V_j(e) < min_{e' < e} V_j(e')`` (NaN never improves); after ``patience``
  consecutive epochs without improvement the member is frozen (AdamW ``mask``: no update, moments
  and step count kept) and its best parameters (lowest ``V_j``, possibly the initial ones,
  ``best_epoch = 0``) are returned.  The loop ends when every member has stopped or after
  ``max_epochs`` epochs.  Frozen members are still evaluated in the batched forward/backward pass
  (their results are discarded), so a member's trajectory does not depend on when the others stop.
* ``drop_last=True`` (the SMILE authors' loader) visits only the ``floor(N / b)`` full batches of each
  epoch's permutation (the last ``N mod b`` permuted examples are skipped that epoch).
* ``fix_log_sigma=c`` (regression only; the authors' mean-regression pre-training, ``c = 0``): the noise scale
  is not learned, ``log sigma`` (the last parameter) is set to ``c`` and its gradient is zeroed, so the loss is
  the Gaussian NLL with ``sigma = e^c`` (``c = 0``: half the mean squared error plus a constant) and the
  returned members carry ``log sigma = c``, where the chains then start.
* ``n_gradient_evals[j]`` counts training gradients in full-data equivalents, ``sum b_k / N`` over
  the member's steps (= its number of epochs); validation forward passes are not counted.

``target`` is a :class:`smile_ref.targets.MLP` or any data target with the same methods:
``init_params(rng, n)``, ``loglik(x, Xb, yb)``, ``loglik_and_grad(x, Xb, yb)``, ``gather``,
``n_data``, ``dim`` and ``X``.
"""
from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import dataclass, field

import numpy as np

from ..backend import Backend, HostRandom, array_namespace, backend_of, get_backend, to_numpy
from ..backend.validate import (check_bool, check_host_matrix, check_host_vector, check_positive_float,
                                check_positive_int, check_real)
from .adamw import adamw

__all__ = ["PretrainResult", "pretrain_ensemble"]


@dataclass
class PretrainResult:
    """Deep-ensemble members after pre-training.

    Attributes
    ----------
    params : array (M, dim)
        Best (lowest validation loss) parameters per member, in the run's namespace/dtype/device.
    best_val_loss, best_epoch, n_epochs : np.ndarray (M,)
        Lowest validation mean NLL, the epoch reaching it (0 = initial parameters) and the number
        of epochs trained.
    init_val_loss : np.ndarray (M,)
        Validation mean NLL of the initial parameters.
    history : dict of np.ndarray (E, M)
        ``train_loss`` (mean NLL over the epoch's batches, at the parameters of each step) and
        ``val_loss`` after each epoch; NaN once a member has stopped.  ``E`` = epochs run.
    n_gradient_evals : np.ndarray (M,)
        Full-data gradient equivalents spent on training.
    wall_time : float
        Seconds (initialisation, training and validation).
    """

    params: object
    best_val_loss: np.ndarray
    best_epoch: np.ndarray
    n_epochs: np.ndarray
    init_val_loss: np.ndarray
    history: dict = field(default_factory=dict)
    n_gradient_evals: np.ndarray | None = None
    wall_time: float = 0.0


def _progress_enabled(progress) -> bool:
    """Same rule as ``smile_ref.run.driver``: explicit value, else a TTY without ``CI`` set."""
    if progress is not None:
        return bool(progress)
    return sys.stderr.isatty() and not os.environ.get("CI")


def _resolve_backend(backend, dtype, device, init) -> Backend:
    if dtype is not None and dtype not in ("float64", "float32"):
        raise ValueError(f"dtype must be 'float64' or 'float32', got {dtype!r}")
    if isinstance(backend, Backend):
        bk = backend
    elif backend is None and init is not None and hasattr(init, "shape") and not isinstance(init, np.ndarray):
        bk = backend_of(init)
    else:
        return get_backend(backend or "numpy", dtype or "float64", device)
    return Backend(bk.xp, bk.device, getattr(bk.xp, dtype)) if dtype is not None else bk


def _check_target(target):
    for attr in ("dim", "n_data", "X", "loglik", "loglik_and_grad", "gather"):
        if not hasattr(target, attr):
            raise TypeError(f"target must be a data target with {attr!r} (e.g. smile_ref.targets.MLP), "
                            f"got {type(target).__name__}")


def _check_val(target, X_val, y_val):
    p = int(target.X.shape[1])
    Xv = check_host_matrix(X_val, "X_val", (None, p))
    if Xv.shape[0] < 1:
        raise ValueError(f"X_val must have shape (N_val, {p}) with N_val >= 1, got {Xv.shape}")
    yv = check_host_vector(y_val, "y_val", Xv.shape[0])
    k = getattr(target, "n_classes", None)
    if getattr(target, "task", "regression") == "classification" and k is not None:
        if not np.all(yv == np.round(yv)) or yv.min() < 0 or yv.max() >= k:
            raise ValueError(f"y_val must contain integer class labels 0..{k - 1}")
    return Xv, yv


def _initial(target, init, bk, n_members, ss_init):
    xp = bk.xp
    if init is None:
        if not hasattr(target, "init_params"):
            raise TypeError("target has no init_params(rng, n); pass init=(n_members, dim) parameters")
        return bk.asarray(np.asarray(target.init_params(np.random.default_rng(ss_init), n_members), np.float64))
    shape = (n_members, int(target.dim))
    if isinstance(init, (np.ndarray, list, tuple)):
        theta = bk.asarray(check_host_matrix(init, "init", shape))
    else:
        if array_namespace(init).__name__ != xp.__name__:
            raise TypeError(f"init must be a host array or an array of {xp.__name__}, "
                            f"got {array_namespace(init).__name__}")
        if tuple(init.shape) != shape:
            raise ValueError(f"init must have shape {shape}, got {tuple(init.shape)}")
        theta = xp.astype(init, bk.dtype, copy=True)
        if not bool(xp.all(xp.isfinite(theta))):
            raise ValueError("init must be finite")
    return theta


def pretrain_ensemble(target, X_val, y_val, *, n_members: int = 10, seed=0, learning_rate: float = 0.01,
                      weight_decay: float = 0.005, batch_size: int = 64, max_epochs: int = 200,
                      patience: int = 10, backend=None, dtype: str | None = None, device=None, init=None,
                      progress: bool | None = None, drop_last: bool = False,
                      fix_log_sigma: float | None = None) -> PretrainResult:
    """Train ``n_members`` deep-ensemble members with AdamW and per-member early stopping.

    Parameters
    ----------
    target : MLP
        Data target holding the (standardised) training split.
    X_val : array-like (N_val, p)
    y_val : array-like (N_val,)
        Validation split (targets or integer labels).
    n_members : int
        ``M``.
    seed : int or numpy.random.SeedSequence
        ``SeedSequence(seed).spawn(2)`` seeds the initialisation and the permutations.
    learning_rate, weight_decay : float
        AdamW ``lr`` and ``wd`` (decay ``lr * wd * theta`` per step, optax/torch convention).
    batch_size, max_epochs, patience : int
        ``b`` (clipped to ``N``), maximum epochs, early-stopping patience in epochs.
    backend, dtype, device
        ``"numpy"``/``"array_api_strict"``/``"cupy"`` or a :class:`~smile_ref.backend.Backend`;
        ``"float64"``/``"float32"``; device.  Default: the backend of ``init`` if it is a device
        array, else NumPy float64.
    init : array (M, dim), optional
        Initial parameters (default ``target.init_params(rng, M)``).
    progress : bool, optional
        tqdm bar over epochs (default: on for a TTY unless ``CI`` is set).
    drop_last : bool
        Skip each epoch's last, incomplete batch (default ``False``: it is included).
    fix_log_sigma : float, optional
        Regression only: pin ``log sigma`` at this value instead of learning it (see the module docstring).

    Returns
    -------
    PretrainResult
    """
    t0 = time.perf_counter()
    _check_target(target)
    n_members = check_positive_int(n_members, "n_members")
    batch_size = check_positive_int(batch_size, "batch_size")
    max_epochs = check_positive_int(max_epochs, "max_epochs")
    patience = check_positive_int(patience, "patience")
    learning_rate = check_positive_float(learning_rate, "learning_rate")
    weight_decay = check_positive_float(weight_decay, "weight_decay", allow_zero=True)
    if isinstance(seed, (bool, float)) or not isinstance(seed, (int, np.integer, np.random.SeedSequence)):
        raise TypeError(f"seed must be an int or a numpy SeedSequence, got {seed!r}")
    if not isinstance(seed, np.random.SeedSequence) and seed < 0:
        raise ValueError(f"seed must be non-negative, got {seed}")
    Xv_h, yv_h = _check_val(target, X_val, y_val)
    drop_last = check_bool(drop_last, "drop_last")
    if fix_log_sigma is not None:
        if getattr(target, "task", "regression") != "regression":
            raise ValueError(f"fix_log_sigma is for regression targets (log sigma is their last parameter), got "
                             f"task={getattr(target, 'task', None)!r}")
        fix_log_sigma = check_real(fix_log_sigma, "fix_log_sigma")
    bk = _resolve_backend(backend, dtype, device, init)
    xp = bk.xp
    ss = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(int(seed))
    ss_init, ss_perm = ss.spawn(2)
    theta = _initial(target, init, bk, n_members, ss_init)
    free = None
    if fix_log_sigma is not None:
        free_h = np.ones(int(target.dim))
        free_h[-1] = 0.0
        free = bk.asarray(free_h)[None, :]
        theta = theta * free + (1.0 - free) * float(fix_log_sigma)

    M, N, n_val = n_members, int(target.n_data), int(Xv_h.shape[0])
    b = min(batch_size, N)
    n_batches = N // b if drop_last else math.ceil(N / b)
    Xv = bk.asarray(np.ascontiguousarray(Xv_h))[None, ...]
    yv = bk.asarray(yv_h)[None, :]
    opt = adamw(learning_rate, weight_decay)
    state = opt.init(theta)
    perm_rng = HostRandom(ss_perm, bk)

    def val_loss(th):
        return to_numpy(-target.loglik(th, Xv, yv)).astype(np.float64) / n_val

    init_val = val_loss(theta)
    best = theta
    best_val = init_val.copy()
    best_epoch = np.zeros(M, dtype=np.int64)
    n_epochs = np.zeros(M, dtype=np.int64)
    wait = np.zeros(M, dtype=np.int64)
    n_grad = np.zeros(M)
    active = np.ones(M, dtype=bool)
    hist_train = np.full((max_epochs, M), np.nan)
    hist_val = np.full((max_epochs, M), np.nan)

    bar = None
    if _progress_enabled(progress):
        from tqdm.auto import tqdm

        bar = tqdm(total=max_epochs, desc="pretrain", unit="epoch", dynamic_ncols=True)
    epoch = 0
    try:
        while epoch < max_epochs and active.any():
            epoch += 1
            perm = bk.asarray(perm_rng.permutations_host(N, M), dtype=xp.int64)
            mask = xp.asarray(np.ascontiguousarray(active), device=bk.device)
            train_sum = xp.zeros((M,), dtype=bk.dtype, device=bk.device)
            seen = 0
            for k in range(n_batches):
                idx = perm[:, k * b:min((k + 1) * b, N)]
                Xb, yb = target.gather(xp, theta, idx)
                ll, g = target.loglik_and_grad(theta, Xb, yb)
                train_sum = train_sum - ll
                seen += int(idx.shape[1])
                if free is not None:
                    g = g * free
                updates, state = opt.update(g * (-1.0 / idx.shape[1]), state, theta, mask)
                theta = theta + updates
                if free is not None:  # decoupled weight decay would shrink a non-zero pinned value
                    theta = theta * free + (1.0 - free) * float(fix_log_sigma)
            tl = to_numpy(train_sum).astype(np.float64) / max(seen, 1)
            vl = val_loss(theta)
            row = epoch - 1
            hist_train[row, active] = tl[active]
            hist_val[row, active] = vl[active]
            improved = active & (vl < best_val)
            if improved.any():
                best = xp.where(xp.asarray(np.ascontiguousarray(improved), device=bk.device)[:, None], theta, best)
                best_val[improved] = vl[improved]
                best_epoch[improved] = epoch
            wait[improved] = 0
            wait[active & ~improved] += 1
            n_epochs[active] += 1
            n_grad[active] += seen / N
            active &= wait < patience
            if bar is not None:
                bar.update(1)
                bar.set_postfix(active=int(active.sum()), best_val=f"{np.nanmin(best_val):.4g}")
    finally:
        if bar is not None:
            bar.close()
    return PretrainResult(
        params=best, best_val_loss=best_val, best_epoch=best_epoch, n_epochs=n_epochs, init_val_loss=init_val,
        history={"train_loss": hist_train[:epoch], "val_loss": hist_val[:epoch]},
        n_gradient_evals=n_grad,
        wall_time=time.perf_counter() - t0)
