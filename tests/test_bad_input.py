"""Table-driven bad-input suite over the public API: every case must raise a clear exception naming the argument.

Each row is ``(id, call, exception type, argument name)``: ``call()`` must raise the exception type (or a
subclass) with a message that contains the argument name.  The table is data: the categories are

* ``shape``   -- wrong number of dimensions or sizes that do not match;
* ``type``    -- a bool, string, complex, object or None where a number/array/flag is expected;
* ``range``   -- a value of the right type outside its domain (negative, zero, > 1, unknown choice);
* ``finite``  -- NaN or inf where a finite value is expected;
* ``file``    -- damaged, foreign or unwritable files (checkpoints, golden files, ensemble stores).

The case ids start with the category, so ``pytest -k shape`` selects one; :data:`COUNTS` holds the count
per category (printed by ``python -m tests.test_bad_input``).
"""
from __future__ import annotations

import json
import os
import zipfile
from collections import Counter

import numpy as np
import pytest

import smile_ref
from smile_ref import data as sdata
from smile_ref import gradients, targets
from smile_ref.crosscheck import golden
from smile_ref.ensembles import EnsembleConfig, run_ensemble
from smile_ref.ensembles.store import RunStore
from smile_ref.errors import CorruptFileError, ResumeMismatchError
from smile_ref.vi import fit_vi

NAN, INF = float("nan"), float("inf")
G3 = targets.Gaussian.diagonal([1.0, 2.0, 3.0])
RNG = np.random.default_rng(0)
X = RNG.standard_normal((30, 2))
Y = X @ np.array([1.0, -0.5]) + 0.1 * RNG.standard_normal(30)
LAB = (Y > 0).astype(float)
LOGREG = targets.LogisticRegression(X, LAB)
LINREG = targets.LinearRegression(X, Y)
MLPT = targets.MLP(X, Y, hidden=(3,))
SPLIT = sdata.make_split(RNG.standard_normal((60, 2)), RNG.standard_normal(60), seed=0)


def rc(sampler="mclmc", target=G3, **kw):
    """run_chains with tiny defaults (overridable)."""
    base = dict(n_chains=2, n_steps=2, seed=0, progress=False)
    if sampler not in ("mclmc",):
        base["step_size"] = 1e-2
    if sampler == "constant_sgd":
        base["n_data"] = 1
    base.update(kw)
    return lambda: smile_ref.run_chains(sampler, target, **base)


def with_nan(a, idx=0):
    a = np.array(a, dtype=float)
    a.flat[idx] = NAN
    return a


CASES: list[tuple] = []


def add(cid, call, exc, arg):
    CASES.append((cid, call, exc, arg))


# ----------------------------------------------------------------------------------------- targets
for cid, val, exc in [("type-str", "abc", TypeError), ("type-complex", np.array([1 + 1j, 2.0]), TypeError),
                      ("type-bool", np.array([True, False]), TypeError), ("type-object", np.array([1, "a"], dtype=object), TypeError),
                      ("type-none", None, TypeError), ("shape-2d", np.zeros((2, 2)), ValueError),
                      ("finite-nan", [0.0, NAN], ValueError), ("finite-inf", [INF, 0.0], ValueError)]:
    add(f"{cid.split('-')[0]}-Gaussian-mean-{cid}", lambda v=val: targets.Gaussian(v, np.eye(2)), exc, "mean")
add("shape-Gaussian-cov-mismatch", lambda: targets.Gaussian([0.0, 0.0], np.eye(3)), ValueError, "cov")
add("range-Gaussian-cov-asym", lambda: targets.Gaussian([0.0, 0.0], [[1.0, 0.5], [0.0, 1.0]]), ValueError, "cov")
add("range-Gaussian-cov-indef", lambda: targets.Gaussian([0.0, 0.0], [[1.0, 2.0], [2.0, 1.0]]), ValueError, "cov")
add("finite-Gaussian-cov-nan", lambda: targets.Gaussian([0.0, 0.0], with_nan(np.eye(2))), ValueError, "cov")
add("type-Gaussian-cov-complex", lambda: targets.Gaussian([0.0, 0.0], np.eye(2) * (1 + 1j)), TypeError, "cov")
add("type-Gaussian-cov-str", lambda: targets.Gaussian([0.0, 0.0], "eye"), TypeError, "cov")
add("range-isotropic-dim0", lambda: targets.Gaussian.isotropic(0), ValueError, "dim")
add("type-isotropic-dim-float", lambda: targets.Gaussian.isotropic(2.0), TypeError, "dim")
add("type-isotropic-dim-bool", lambda: targets.Gaussian.isotropic(True), TypeError, "dim")
add("type-isotropic-dim-str", lambda: targets.Gaussian.isotropic("3"), TypeError, "dim")
add("range-isotropic-scale-neg", lambda: targets.Gaussian.isotropic(2, scale=-1.0), ValueError, "scale")
add("finite-isotropic-scale-inf", lambda: targets.Gaussian.isotropic(2, scale=INF), ValueError, "scale")
add("type-isotropic-scale-str", lambda: targets.Gaussian.isotropic(2, scale="1"), TypeError, "scale")
add("shape-isotropic-mean", lambda: targets.Gaussian.isotropic(2, mean=[0.0, 0.0, 0.0]), ValueError, "mean")
add("range-diagonal-variances-zero", lambda: targets.Gaussian.diagonal([1.0, 0.0]), ValueError, "variances")
add("finite-diagonal-variances-nan", lambda: targets.Gaussian.diagonal([1.0, NAN]), ValueError, "variances")
add("type-diagonal-variances-complex", lambda: targets.Gaussian.diagonal([1.0, 1j]), TypeError, "variances")
add("shape-diagonal-variances-2d", lambda: targets.Gaussian.diagonal(np.ones((2, 2))), ValueError, "variances")
add("shape-diagonal-mean", lambda: targets.Gaussian.diagonal([1.0, 2.0], mean=[0.0]), ValueError, "mean")
add("range-icg-dim", lambda: targets.ill_conditioned_gaussian(0), ValueError, "dim")
add("range-icg-seed-neg", lambda: targets.ill_conditioned_gaussian(4, seed=-1), ValueError, "seed")
add("type-icg-seed-float", lambda: targets.ill_conditioned_gaussian(4, seed=1.5), TypeError, "seed")
add("type-icg-seed-str", lambda: targets.ill_conditioned_gaussian(4, seed="0"), TypeError, "seed")
add("range-icg-cmin", lambda: targets.ill_conditioned_gaussian(4, c_min=-1.0), ValueError, "c_min")
add("range-icg-cmin-gt-cmax", lambda: targets.ill_conditioned_gaussian(4, c_min=10.0, c_max=1.0), ValueError, "c_min")
add("finite-icg-cmax", lambda: targets.ill_conditioned_gaussian(4, c_max=INF), ValueError, "c_max")
add("range-dgc-condition", lambda: targets.diagonal_gaussian_condition(4, 0.5), ValueError, "condition")
add("type-dgc-condition-str", lambda: targets.diagonal_gaussian_condition(4, "10"), TypeError, "condition")
add("range-dgc-dim1", lambda: targets.diagonal_gaussian_condition(1, 10.0), ValueError, "condition")
add("range-funnel-dim1", lambda: targets.Funnel(1), ValueError, "dim")
add("type-funnel-dim-float", lambda: targets.Funnel(3.0), TypeError, "dim")
add("range-funnel-scale", lambda: targets.Funnel(3, theta_scale=0.0), ValueError, "theta_scale")
add("finite-funnel-scale", lambda: targets.Funnel(3, theta_scale=NAN), ValueError, "theta_scale")
add("type-funnel-scale-complex", lambda: targets.Funnel(3, theta_scale=1j), TypeError, "theta_scale")
add("range-rosenbrock-odd", lambda: targets.Rosenbrock(3), ValueError, "dim")
add("type-rosenbrock-a-str", lambda: targets.Rosenbrock(4, a="1"), TypeError, "a")
add("type-rosenbrock-a-bool", lambda: targets.Rosenbrock(4, a=True), TypeError, "a")
add("finite-rosenbrock-a", lambda: targets.Rosenbrock(4, a=INF), ValueError, "a")
add("range-rosenbrock-Q", lambda: targets.Rosenbrock(4, Q=-0.1), ValueError, "Q")
for cls, yy in ((targets.LinearRegression, Y), (targets.LogisticRegression, LAB)):
    nm = cls.__name__
    add(f"shape-{nm}-X-1d", lambda c=cls, yy=yy: c(X[:, 0], yy), ValueError, "X")
    add(f"shape-{nm}-X-3d", lambda c=cls, yy=yy: c(X[None], yy), ValueError, "X")
    add(f"type-{nm}-X-complex", lambda c=cls, yy=yy: c(X + 1j, yy), TypeError, "X")
    add(f"type-{nm}-X-str", lambda c=cls, yy=yy: c(X.astype(str), yy), TypeError, "X")
    add(f"type-{nm}-X-bool", lambda c=cls, yy=yy: c(X > 0, yy), TypeError, "X")
    add(f"finite-{nm}-X-nan", lambda c=cls, yy=yy: c(with_nan(X), yy), ValueError, "X")
    add(f"shape-{nm}-y-len", lambda c=cls, yy=yy: c(X, yy[:-1]), ValueError, "y")
    add(f"shape-{nm}-y-2d", lambda c=cls, yy=yy: c(X, yy[:, None]), ValueError, "y")
    add(f"finite-{nm}-y-inf", lambda c=cls, yy=yy: c(X, np.where(np.arange(30) == 0, INF, yy)), ValueError, "y")
    add(f"type-{nm}-y-complex", lambda c=cls, yy=yy: c(X, yy + 0j), TypeError, "y")
    add(f"range-{nm}-prior", lambda c=cls, yy=yy: c(X, yy, prior_scale=0.0), ValueError, "prior_scale")
    add(f"type-{nm}-prior-str", lambda c=cls, yy=yy: c(X, yy, prior_scale="1"), TypeError, "prior_scale")
    add(f"finite-{nm}-prior-nan", lambda c=cls, yy=yy: c(X, yy, prior_scale=NAN), ValueError, "prior_scale")
add("range-LinearRegression-noise", lambda: targets.LinearRegression(X, Y, noise_scale=-1.0), ValueError, "noise_scale")
add("type-LinearRegression-noise-bool", lambda: targets.LinearRegression(X, Y, noise_scale=True), TypeError, "noise_scale")
add("range-LogisticRegression-labels", lambda: targets.LogisticRegression(X, LAB + 0.5), ValueError, "y")
add("type-MLP-hidden-str", lambda: targets.MLP(X, Y, hidden="16"), TypeError, "hidden")
add("type-MLP-hidden-int", lambda: targets.MLP(X, Y, hidden=16), TypeError, "hidden")
add("type-MLP-hidden-float", lambda: targets.MLP(X, Y, hidden=(4.0,)), TypeError, "hidden")
add("type-MLP-hidden-bool", lambda: targets.MLP(X, Y, hidden=(True,)), TypeError, "hidden")
add("range-MLP-hidden-zero", lambda: targets.MLP(X, Y, hidden=(0,)), ValueError, "hidden")
add("type-MLP-X-complex", lambda: targets.MLP(X + 1j, Y, hidden=(2,)), TypeError, "X")
add("type-MLP-X-str", lambda: targets.MLP(X.astype(str), Y, hidden=(2,)), TypeError, "X")
add("finite-MLP-X-nan", lambda: targets.MLP(with_nan(X), Y, hidden=(2,)), ValueError, "X")
add("shape-MLP-X-1d", lambda: targets.MLP(X[:, 0], Y, hidden=(2,)), ValueError, "X")
add("shape-MLP-y", lambda: targets.MLP(X, Y[:5], hidden=(2,)), ValueError, "y")
add("range-MLP-activation", lambda: targets.MLP(X, Y, hidden=(2,), activation="sigmoid"), ValueError, "activation")
add("type-MLP-activation-list", lambda: targets.MLP(X, Y, hidden=(2,), activation=["relu"]), ValueError, "activation")
add("range-MLP-task", lambda: targets.MLP(X, Y, hidden=(2,), task="ranking"), ValueError, "task")
add("range-MLP-prior", lambda: targets.MLP(X, Y, hidden=(2,), prior_scale=-1.0), ValueError, "prior_scale")
add("range-MLP-labels", lambda: targets.MLP(X, Y, hidden=(2,), task="classification"), ValueError, "y")
add("type-MLP-n_classes-float", lambda: targets.MLP(X, LAB, hidden=(2,), task="classification", n_classes=2.0),
    TypeError, "n_classes")
add("range-MLP-n_classes-1", lambda: targets.MLP(X, LAB * 0, hidden=(2,), task="classification", n_classes=1),
    ValueError, "n_classes")
add("shape-target-logdensity-x", lambda: G3.logdensity(np.zeros((2, 4))), ValueError, "x")
add("type-target-logdensity-int", lambda: G3.logdensity(np.zeros((2, 3), dtype=int)), TypeError, "x")
add("type-target-logdensity-list", lambda: G3.logdensity([[0.0, 0.0, 0.0]]), TypeError, "x")
add("range-exact_sample-n", lambda: G3.exact_sample(np.random.default_rng(0), 0), ValueError, "n")

# ----------------------------------------------------------------------------------------- gradients
add("type-Exact-target", lambda: gradients.Exact(object()), TypeError, "target")
add("type-MiniBatch-target", lambda: gradients.MiniBatch(G3, 4), TypeError, "target")
add("range-MiniBatch-b0", lambda: gradients.MiniBatch(LOGREG, 0), ValueError, "batch_size")
add("range-MiniBatch-b-gt-N", lambda: gradients.MiniBatch(LOGREG, 31), ValueError, "batch_size")
add("type-MiniBatch-b-float", lambda: gradients.MiniBatch(LOGREG, 4.0), TypeError, "batch_size")
add("type-MiniBatch-b-str", lambda: gradients.MiniBatch(LOGREG, "4"), TypeError, "batch_size")
add("type-MiniBatch-replace-str", lambda: gradients.MiniBatch(LOGREG, 4, replace="no"), TypeError, "replace")
add("type-MiniBatch-replace-int", lambda: gradients.MiniBatch(LOGREG, 4, replace=1), TypeError, "replace")
add("type-AdditiveNoise-target", lambda: gradients.AdditiveNoise(object(), 1.0), TypeError, "target")
add("range-AdditiveNoise-cov-neg", lambda: gradients.AdditiveNoise(G3, -1.0), ValueError, "cov")
add("finite-AdditiveNoise-cov-nan", lambda: gradients.AdditiveNoise(G3, NAN), ValueError, "cov")
add("type-AdditiveNoise-cov-str", lambda: gradients.AdditiveNoise(G3, "1.0"), TypeError, "cov")
add("type-AdditiveNoise-cov-bool", lambda: gradients.AdditiveNoise(G3, True), TypeError, "cov")
add("type-AdditiveNoise-cov-complex", lambda: gradients.AdditiveNoise(G3, 1j), TypeError, "cov")
add("type-AdditiveNoise-cov-complex0d", lambda: gradients.AdditiveNoise(G3, np.asarray(1 + 1j)), TypeError, "cov")
add("shape-AdditiveNoise-cov-vec", lambda: gradients.AdditiveNoise(G3, [1.0, 1.0]), ValueError, "cov")
add("range-AdditiveNoise-cov-vec-neg", lambda: gradients.AdditiveNoise(G3, [1.0, -1.0, 1.0]), ValueError, "cov")
add("shape-AdditiveNoise-cov-mat", lambda: gradients.AdditiveNoise(G3, np.eye(2)), ValueError, "cov")
add("range-AdditiveNoise-cov-indef", lambda: gradients.AdditiveNoise(G3, -np.eye(3)), ValueError, "cov")
add("shape-AdditiveNoise-cov-3d", lambda: gradients.AdditiveNoise(G3, np.ones((3, 3, 3))), ValueError, "cov")
add("range-AdditiveNoise-dist", lambda: gradients.AdditiveNoise(G3, 1.0, distribution="cauchy"), ValueError,
    "distribution")
add("range-AdditiveNoise-df-missing", lambda: gradients.AdditiveNoise(G3, 1.0, distribution="student_t"), ValueError,
    "df")
add("range-AdditiveNoise-df-2", lambda: gradients.AdditiveNoise(G3, 1.0, distribution="student_t", df=2.0),
    ValueError, "df")
add("type-AdditiveNoise-df-str", lambda: gradients.AdditiveNoise(G3, 1.0, distribution="student_t", df="5"),
    TypeError, "df")
add("range-AdditiveNoise-df-unused", lambda: gradients.AdditiveNoise(G3, 1.0, df=5.0), ValueError, "df")
add("range-AdditiveNoise-sigma-missing", lambda: gradients.AdditiveNoise(G3, 1.0, distribution="lognormal"),
    ValueError, "sigma")
add("range-AdditiveNoise-sigma-neg", lambda: gradients.AdditiveNoise(G3, 1.0, distribution="lognormal", sigma=-1.0),
    ValueError, "sigma")
add("type-AdditiveNoise-spatial", lambda: gradients.AdditiveNoise(G3, 1.0, spatial=3.0), TypeError, "spatial")
add("range-AdditiveNoise-spatial-coord", lambda: gradients.AdditiveNoise(G3, 1.0, spatial=gradients.exp_spatial(5, 1.0)),
    ValueError, "coord")
add("range-AdditiveNoise-mode", lambda: gradients.AdditiveNoise(G3, 1.0, spatial_mode="both"), ValueError,
    "spatial_mode")
add("range-exp_spatial-coord", lambda: gradients.exp_spatial(-1, 1.0), ValueError, "coord")
add("type-exp_spatial-coord-float", lambda: gradients.exp_spatial(1.0, 1.0), TypeError, "coord")
add("range-exp_spatial-length", lambda: gradients.exp_spatial(0, 0.0), ValueError, "length")
add("shape-noise_covariance-2d", lambda: gradients.noise_covariance(np.zeros((3, 4))), ValueError, "per_example_grads")
add("type-noise_covariance-int", lambda: gradients.noise_covariance(np.zeros((2, 3, 4), dtype=int)), TypeError,
    "per_example_grads")
add("range-noise_covariance-kind", lambda: gradients.noise_covariance(np.zeros((2, 3, 4)), kind="full"), ValueError,
    "kind")
add("range-minibatch_covariance_factor-b", lambda: gradients.minibatch_covariance_factor(0, 10), ValueError, "batch_size")
add("range-minibatch_covariance_factor-N", lambda: gradients.minibatch_covariance_factor(2, 1), ValueError, "n_data")

# ----------------------------------------------------------------------------------------- run_chains (driver)
add("range-run_chains-sampler", rc("nope"), ValueError, "sampler")
add("type-run_chains-sampler-int", rc(3), TypeError, "sampler")
add("type-run_chains-target", lambda: smile_ref.run_chains("mclmc", object(), n_chains=2, n_steps=2, seed=0),
    TypeError, "target")
add("type-run_chains-gradient", rc(gradient="exact"), TypeError, "gradient")
for arg, bad in [("n_chains", 0), ("n_steps", -1), ("thinning", 0), ("burn_in", -1), ("block_size", 0),
                 ("checkpoint_every", 0)]:
    add(f"range-run_chains-{arg}", rc(**{arg: bad}, **({"checkpoint": "/tmp/_unused.npz"} if arg == "checkpoint_every" else {})),
        ValueError, arg)
for arg in ("n_chains", "n_steps", "thinning", "burn_in", "block_size"):
    add(f"type-run_chains-{arg}-float", rc(**{arg: 2.0}), TypeError, arg)
    add(f"type-run_chains-{arg}-bool", rc(**{arg: True}), TypeError, arg)
    add(f"type-run_chains-{arg}-str", rc(**{arg: "2"}), TypeError, arg)
add("range-run_chains-thinning-gt-n_steps", rc(n_steps=4, thinning=5), ValueError, "thinning")
add("range-run_chains-n_steps-0", rc(n_steps=0, burn_in=5), ValueError, "n_steps")
add("type-run_chains-resume-str", rc(resume="yes", checkpoint="/tmp/_unused.npz"), TypeError, "resume")
add("type-run_chains-progress-str", rc(progress="no"), TypeError, "progress")
add("range-run_chains-resume-no-path", rc(resume=True), ValueError, "resume")
add("range-run_chains-every-no-path", rc(checkpoint_every=2), ValueError, "checkpoint")
add("type-run_chains-checkpoint-int", rc(checkpoint=3), TypeError, "checkpoint")
add("type-run_chains-seed-float", rc(seed=1.5), TypeError, "seed")
add("type-run_chains-seed-str", rc(seed="0"), TypeError, "seed")
add("range-run_chains-seed-neg", rc(seed=-1), ValueError, "seed")
add("range-run_chains-dtype", rc(dtype="float16"), ValueError, "dtype")
add("range-run_chains-rng", rc(rng="gpu"), ValueError, "rng")
for arg in ("info", "warmup_info"):
    add(f"range-run_chains-{arg}-unknown", rc(**{arg: "thin"}), ValueError, arg)
    add(f"range-run_chains-{arg}-case", rc(**{arg: "All"}), ValueError, arg)
    add(f"type-run_chains-{arg}-none", rc(**{arg: None}), TypeError, arg)
    add(f"type-run_chains-{arg}-bool", rc(**{arg: True}), TypeError, arg)
    add(f"type-run_chains-{arg}-int", rc(**{arg: 10}), TypeError, arg)
add("shape-run_chains-x0-dim", rc(initial_position=np.zeros((2, 4))), ValueError, "initial_position")
add("shape-run_chains-x0-chains", rc(initial_position=np.zeros((3, 3))), ValueError, "initial_position")
add("shape-run_chains-x0-1d", rc(initial_position=np.zeros(3)), ValueError, "initial_position")
add("finite-run_chains-x0-nan", rc(initial_position=with_nan(np.zeros((2, 3)))), ValueError, "initial_position")
add("finite-run_chains-x0-inf", rc(initial_position=np.full((2, 3), INF)), ValueError, "initial_position")
add("type-run_chains-x0-int", rc(initial_position=np.zeros((2, 3), dtype=int)), TypeError, "initial_position")
add("type-run_chains-x0-complex", rc(initial_position=np.zeros((2, 3), dtype=complex)), TypeError, "initial_position")
add("type-run_chains-x0-list-str", rc(initial_position=[["a", "b", "c"]] * 2), TypeError, "initial_position")
add("type-run_chains-x0-list-complex", rc(initial_position=[[1j, 0.0, 0.0]] * 2), TypeError, "initial_position")
add("type-run_chains-x0-str", rc(initial_position="zeros"), TypeError, "initial_position")
add("type-run_chains-unknown-option", rc(stepsize=0.1), TypeError, "stepsize")

# ----------------------------------------------------------------------------------------- sampler options
MB = gradients.MiniBatch(LOGREG, 5)
for s in ("mclmc", "smile", "psmile", "sgld", "psgld", "sghmc", "bnp_sgld", "constant_sgd"):
    tgt = LOGREG
    kw = {"gradient": MB} if s not in ("mclmc",) else {}
    if s == "constant_sgd":
        kw["n_data"] = 30
    add(f"range-{s}-step_size-neg", rc(s, tgt, step_size=-1e-2, **kw), ValueError,
        "learning_rate" if s == "constant_sgd" else "step_size")
    add(f"finite-{s}-step_size-nan", rc(s, tgt, step_size=NAN, **kw), ValueError,
        "learning_rate" if s == "constant_sgd" else "step_size")
    add(f"finite-{s}-step_size-inf", rc(s, tgt, step_size=INF, **kw), ValueError,
        "learning_rate" if s == "constant_sgd" else "step_size")
    add(f"type-{s}-step_size-str", rc(s, tgt, step_size="0.1", **kw), TypeError, "step_size")
    add(f"type-{s}-step_size-bool", rc(s, tgt, step_size=True, **kw), TypeError, "step_size")
    add(f"type-{s}-step_size-complex", rc(s, tgt, step_size=0.1j, **kw), TypeError, "step_size")
    add(f"type-{s}-step_size-array", rc(s, tgt, step_size=np.array([0.1, 0.2]), **kw), TypeError, "step_size")
for s in ("smile", "psmile"):
    for flag in ("refresh", "adapt_during_sampling", "reset_keeps_rejected_gradient", "freeze_preconditioner"):
        add(f"type-{s}-{flag}-str", rc(s, **{flag: "no"}), TypeError, flag)
    add(f"range-{s}-tuner", rc(s, tuner="gamma"), ValueError, "tuner")
    add(f"range-{s}-energy_error", rc(s, energy_error="batch"), ValueError, "energy_error")
    add(f"range-{s}-integrator", rc(s, integrator="rk4"), ValueError, "integrator")
    add(f"range-{s}-gradient_clip", rc(s, gradient_clip=0.0), ValueError, "gradient_clip")
    add(f"range-{s}-L", rc(s, L=-1.0), ValueError, "L")
    add(f"range-{s}-refresh-no-L", rc(s, refresh=True), ValueError, "L")
    add(f"range-{s}-max_energy_error", rc(s, max_energy_error=-1.0), ValueError, "max_energy_error")
    add(f"range-{s}-step_size-missing", rc(s, step_size=None), ValueError, "step_size")
add("range-psmile-preconditioner", rc("psmile", preconditioner="full"), ValueError, "preconditioner")
for flag in ("refresh", "diagonal_preconditioning"):
    add(f"type-mclmc-{flag}-str", rc("mclmc", **{flag: "no"}), TypeError, flag)
    add(f"type-mclmc-{flag}-int", rc("mclmc", **{flag: 1}), TypeError, flag)
add("range-mclmc-tuner", rc("mclmc", tuner="nuts"), ValueError, "tuner")
add("range-mclmc-tuner-none-no-step", rc("mclmc", tuner=None), ValueError, "step_size")
add("range-mclmc-L", rc("mclmc", L=0.0), ValueError, "L")
add("shape-mclmc-sqrt_diag", rc("mclmc", sqrt_diag=[1.0, 1.0]), ValueError, "sqrt_diag")
add("range-mclmc-sqrt_diag-neg", rc("mclmc", sqrt_diag=[1.0, -1.0, 1.0]), ValueError, "sqrt_diag")
add("finite-mclmc-sqrt_diag-nan", rc("mclmc", sqrt_diag=[1.0, NAN, 1.0]), ValueError, "sqrt_diag")
add("type-mclmc-sqrt_diag-complex", rc("mclmc", sqrt_diag=[1.0, 1j, 1.0]), TypeError, "sqrt_diag")
add("range-mclmc-desired_energy_var", rc("mclmc", desired_energy_var=0.0), ValueError, "desired_energy_var")
add("range-sgld-variant", rc("sgld", variant="nosgld"), ValueError, "variant")
add("range-sgld-msgld-no-C", rc("sgld", variant="msgld"), ValueError, "noise_correction")
add("range-sgld-schedule", rc("sgld", schedule="cosine"), ValueError, "schedule")
add("range-sgld-schedule-a", rc("sgld", schedule=("polynomial", -1.0, 1.0, 0.5)), ValueError, "schedule a")
add("range-sgld-noise_correction-big", rc("sgld", noise_correction=1e4), ValueError, "noise_correction")
add("shape-sgld-noise_correction", rc("sgld", noise_correction=np.eye(2)), ValueError, "noise_correction")
add("range-psgld-alpha", rc("psgld", alpha=1.0), ValueError, "alpha")
add("range-psgld-lam", rc("psgld", lam=0.0), ValueError, "lam")
add("type-psgld-gamma_correction", rc("psgld", gamma_correction="yes"), TypeError, "gamma_correction")
add("type-psgld-preconditioner", rc("psgld", preconditioner=3), TypeError, "preconditioner")
add("range-sghmc-alpha", rc("sghmc", alpha=0.0), ValueError, "alpha")
add("type-sghmc-alpha-str", rc("sghmc", alpha="0.1"), TypeError, "alpha")
add("range-sghmc-beta_hat", rc("sghmc", beta_hat=-1.0), ValueError, "beta_hat")
add("range-sghmc-beta_hat-gt-alpha", rc("sghmc", alpha=0.01, beta_hat=0.5), ValueError, "beta_hat")
add("range-constant_sgd-momentum", rc("constant_sgd", momentum=1.0), ValueError, "momentum")
add("type-constant_sgd-iasg", rc("constant_sgd", iasg="yes"), TypeError, "iasg")
add("range-constant_sgd-window", rc("constant_sgd", iasg=True, window=0), ValueError, "window")
add("range-constant_sgd-n_data", rc("constant_sgd", n_data=0), ValueError, "n_data")
add("range-bnp_sgld-rho", rc("bnp_sgld", LOGREG, gradient=MB, rho=1.0), ValueError, "rho")
add("range-bnp_sgld-eps2", rc("bnp_sgld", LOGREG, gradient=MB, eps2=0.0), ValueError, "eps2")
add("range-bnp_sgld-bias_column", rc("bnp_sgld", LOGREG, gradient=MB, bias_column=7), ValueError, "bias_column")
add("type-bnp_sgld-target", rc("bnp_sgld", G3), TypeError, "bnp_sgld")

# ----------------------------------------------------------------------------------------- data
add("range-load_uci-name", lambda: sdata.load_uci("nope"), ValueError, "nope")
add("type-load_uci-name-int", lambda: sdata.load_uci(3), TypeError, "name")
add("type-load_uci-seed-str", lambda: sdata.load_uci("energy", seed="1"), TypeError, "seed")
add("type-load_uci-seed-float", lambda: sdata.load_uci("energy", seed=1.5), TypeError, "seed")
add("range-load_uci-seed-neg", lambda: sdata.load_uci("energy", seed=-1), ValueError, "seed")
add("type-load_uci-target_column-str", lambda: sdata.load_uci("energy", target_column="2"), TypeError, "target_column")
add("range-load_uci-target_column", lambda: sdata.load_uci("energy", target_column=99), ValueError, "target_column")
add("type-load_uci-drop_constant-str", lambda: sdata.load_uci("energy", drop_constant="no"), TypeError, "drop_constant")
add("range-load_sklearn-name", lambda: sdata.load_sklearn("iris"), ValueError, "iris")
add("type-make_split-X-complex", lambda: sdata.make_split(X + 1j, Y), TypeError, "X")
add("type-make_split-y-str", lambda: sdata.make_split(X, Y.astype(str)), TypeError, "y")
add("shape-make_split-X-1d", lambda: sdata.make_split(Y, Y), ValueError, "X")
add("finite-make_split-X-nan", lambda: sdata.make_split(with_nan(X), Y), ValueError, "NaN")
add("range-make_split-task", lambda: sdata.make_split(X, Y, task="clustering"), ValueError, "task")
add("range-make_split-fractions", lambda: sdata.make_split(X, Y, fractions=(0.5, 0.5, 0.5)), ValueError, "fractions")
add("type-make_split-fractions-str", lambda: sdata.make_split(X, Y, fractions="0.7"), TypeError, "fractions")
add("range-make_split-constant", lambda: sdata.make_split(np.ones((30, 2)), Y), ValueError, "constant")

# ----------------------------------------------------------------------------------------- VI
def vi(**kw):
    base = dict(method="score_vi", target=G3, n_iter=2, n_samples=4, seed=0)
    base.update(kw)
    return lambda: fit_vi(base.pop("method"), base.pop("target"), **base)


add("range-fit_vi-method", vi(method="svgd"), ValueError, "method")
add("range-fit_vi-family", vi(family="mixture"), ValueError, "family")
add("range-fit_vi-n_iter", vi(n_iter=0), ValueError, "n_iter")
add("type-fit_vi-n_iter-float", vi(n_iter=2.0), TypeError, "n_iter")
add("range-fit_vi-n_samples-1", vi(n_samples=1), ValueError, "n_samples")
add("type-fit_vi-n_samples-str", vi(n_samples="4"), TypeError, "n_samples")
add("type-fit_vi-target", vi(target=object()), TypeError, "target")
add("range-fit_vi-beta", vi(beta=-1.0), ValueError, "beta")
add("range-fit_vi-on_invalid", vi(on_invalid="ignore"), ValueError, "on_invalid")
add("shape-fit_vi-init_mean", vi(init_mean=[0.0, 0.0]), ValueError, "init_mean")
add("type-fit_vi-init_mean-complex", vi(init_mean=[0.0, 1j, 0.0]), TypeError, "init_mean")
add("finite-fit_vi-init_mean-nan", vi(init_mean=[0.0, NAN, 0.0]), ValueError, "init_mean")
add("shape-fit_vi-init_cov", vi(init_cov=np.eye(2)), ValueError, "init_cov")
add("type-fit_vi-init_cov-str", vi(init_cov="eye"), TypeError, "init_cov")
add("range-fit_vi-init_cov-diag", vi(init_cov=-np.eye(3)), ValueError, "init_cov")
add("range-fit_vi-gsm-diag", vi(method="gsm"), ValueError, "full_gaussian")
add("range-fit_vi-flow-advi", vi(method="advi", family="sinh_arcsinh_flow"), ValueError, "family")
add("type-fit_vi-flow_seed-str", vi(family="sinh_arcsinh_flow", flow_seed="0"), TypeError, "flow_seed")
add("range-fit_vi-n_layers", vi(family="sinh_arcsinh_flow", n_layers=0), ValueError, "n_layers")

# ----------------------------------------------------------------------------------------- ensembles
for arg, bad, exc in [("n_members", 0, ValueError), ("n_members", 2.0, TypeError), ("batch_size", -1, ValueError),
                      ("n_warmup", -1, ValueError), ("n_warmup", True, TypeError), ("n_warmup", 1.5, TypeError),
                      ("n_samples", 0, ValueError), ("thinning", "10", TypeError), ("pretrain_lr", 0.0, ValueError),
                      ("pretrain_lr", NAN, ValueError), ("pretrain_weight_decay", -1.0, ValueError),
                      ("pretrain_weight_decay", "0.1", TypeError), ("step_size", -1.0, ValueError),
                      ("step_size", "1e-3", TypeError), ("checkpoint_every", 0, ValueError),
                      ("sampler_options", "tuner=mclmc", TypeError), ("sampler_options", [("tuner", "x")], TypeError),
                      ("pretrain_patience", 0, ValueError), ("pretrain_max_epochs", 1.0, TypeError)]:
    add(f"{'type' if exc is TypeError else ('finite' if bad != bad else 'range')}-EnsembleConfig-{arg}-{bad!r}",
        lambda a=arg, b=bad: EnsembleConfig.tiny(**{a: b}), exc, arg)
add("range-EnsembleConfig-thinning-gt-n_samples", lambda: EnsembleConfig.tiny(thinning=50), ValueError, "thinning")
TINY = EnsembleConfig.tiny(n_members=1, pretrain_max_epochs=1, n_warmup=2, n_samples=5, thinning=5)
add("type-run_ensemble-data", lambda: run_ensemble((X, Y), "smile", config=TINY), TypeError, "data")
add("type-run_ensemble-config", lambda: run_ensemble(SPLIT, "smile", config={"n_members": 1}), TypeError, "config")
add("range-run_ensemble-sampler", lambda: run_ensemble(SPLIT, "nuts", config=TINY), ValueError, "sampler")
add("type-run_ensemble-sampler-int", lambda: run_ensemble(SPLIT, 3, config=TINY), TypeError, "sampler")
add("type-run_ensemble-hidden-str", lambda: run_ensemble(SPLIT, "de", config=TINY, hidden="16"), TypeError, "hidden")
add("range-run_ensemble-hidden-0", lambda: run_ensemble(SPLIT, "de", config=TINY, hidden=(0,)), ValueError, "hidden")
add("type-run_ensemble-prior-str", lambda: run_ensemble(SPLIT, "de", config=TINY, prior_scale="1"), TypeError,
    "prior_scale")
add("type-run_ensemble-seed-float", lambda: run_ensemble(SPLIT, "de", config=TINY, seed=0.5), TypeError, "seed")
add("range-run_ensemble-activation", lambda: run_ensemble(SPLIT, "de", config=TINY, activation="sin"), ValueError,
    "activation")
add("range-run_ensemble-dtype", lambda: run_ensemble(SPLIT, "de", config=TINY, dtype="float16"), ValueError, "dtype")
add("type-run_ensemble-option-typo",
    lambda: run_ensemble(SPLIT, "smile", config=TINY.__class__.tiny(sampler_options={"tunr": "mclmc"})), TypeError,
    "sampler_options")
add("range-run_ensemble-option-value",
    lambda: run_ensemble(SPLIT, "smile", config=TINY.__class__.tiny(sampler_options={"tuner": "gamma"})), ValueError,
    "sampler_options")
add("type-run_ensemble-out_dir", lambda: run_ensemble(SPLIT, "de", config=TINY, out_dir=3), TypeError, "out_dir")

add("type-run_ensemble-out_dir-file", lambda: run_ensemble(SPLIT, "de", config=TINY, out_dir=__file__),
    NotADirectoryError, "out_dir")
COUNTS = Counter(c[0].split("-")[0] for c in CASES)


@pytest.mark.parametrize("cid, call, exc, arg", CASES, ids=[c[0] for c in CASES])
def test_bad_input_raises_naming_the_argument(cid, call, exc, arg):
    with pytest.raises(exc) as info:
        call()
    assert arg in str(info.value), f"{cid}: message does not name {arg!r}: {info.value}"


def test_case_counts():
    """The suite keeps at least 200 argument cases (file cases are counted below)."""
    assert len(CASES) >= 200, COUNTS


# ----------------------------------------------------------------------------------------- files
def _ck(tmp_path, **kw):
    path = tmp_path / "c.npz"
    smile_ref.run_chains("mclmc", G3, n_chains=2, n_steps=6, seed=0, progress=False, checkpoint=path,
                         checkpoint_every=2, **kw)
    return path


def _rewrite(path, edit):
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    edit(arrays)
    np.savez(path, **arrays)


def _resume(path, **kw):
    return smile_ref.run_chains("mclmc", G3, n_chains=2, n_steps=6, seed=0, progress=False, checkpoint=path,
                                checkpoint_every=2, resume=True, **kw)


def _truncate(p):
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])


def _flip_byte(p):
    data = bytearray(p.read_bytes())
    data[len(data) // 3] ^= 0xFF
    p.write_bytes(bytes(data))


FILE_DAMAGE = {
    "file-checkpoint-truncated": _truncate,
    "file-checkpoint-flipped-byte": _flip_byte,
    "file-checkpoint-text": lambda p: p.write_text("hello"),
    "file-checkpoint-empty": lambda p: p.write_bytes(b""),
    "file-checkpoint-npy": lambda p: np.save(open(p, "wb"), np.zeros(3)),
    "file-checkpoint-pickled": lambda p: np.savez(p, meta=np.array([{"a": 1}], dtype=object)),
    "file-checkpoint-no-meta": lambda p: np.savez(p, samples=np.zeros(3)),
    "file-checkpoint-meta-not-json": lambda p: _rewrite(p, lambda a: a.update(meta=np.asarray("{not json"))),
    "file-checkpoint-nan-samples": lambda p: _rewrite(p, lambda a: a["samples"].__setitem__((0, 0, 0), NAN)),
    "file-checkpoint-nan-state": lambda p: _rewrite(
        p, lambda a: a["state/integrator/position"].__setitem__((0, 0), NAN)),
    "file-checkpoint-dropped-entry": lambda p: _rewrite(p, lambda a: a.pop("state/integrator/position")),
}


@pytest.mark.parametrize("damage", list(FILE_DAMAGE), ids=list(FILE_DAMAGE))
def test_damaged_checkpoint_raises_corrupt_file_error(tmp_path, damage):
    path = _ck(tmp_path)
    FILE_DAMAGE[damage](path)
    with pytest.raises(CorruptFileError, match="c.npz"):
        _resume(path)


def _resave_consistently(path, edit_meta=None, edit_arrays=None):
    """Rewrite a checkpoint with updated checksums (a consistent but altered file)."""
    from smile_ref.io import atomic_save_npz
    from smile_ref.run.checkpoint import _crc, load_checkpoint

    meta, arrays = load_checkpoint(path)
    if edit_meta:
        edit_meta(meta)
    if edit_arrays:
        edit_arrays(arrays)
    arrays["meta"] = np.asarray(json.dumps(meta, sort_keys=True))
    arrays["checksums"] = np.asarray(json.dumps({k: _crc(np.asarray(v)) for k, v in sorted(arrays.items())}))
    atomic_save_npz(path, arrays)


def test_nan_samples_with_recomputed_checksums_never_reach_samples(tmp_path):
    """Even a consistently rewritten checkpoint (checksums updated) with NaN draws is refused."""
    path = _ck(tmp_path)
    _resave_consistently(path, edit_arrays=lambda a: a["samples"].__setitem__((0, 0, 0), NAN))
    with pytest.raises(CorruptFileError, match="NaN"):
        _resume(path)


def test_foreign_checkpoint_without_identity_is_refused(tmp_path):
    path = _ck(tmp_path)
    _resave_consistently(path, edit_meta=lambda m: m.pop("format"))
    with pytest.raises(ResumeMismatchError, match="identity"):
        _resume(path)


def test_unwritable_checkpoint_fails_before_the_first_step(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    calls = {"n": 0}

    class Counting(gradients.Exact):
        def evaluate(self, x, batch):
            calls["n"] += 1
            return super().evaluate(x, batch)

    with pytest.raises(OSError, match="checkpoint"):
        smile_ref.run_chains("mclmc", G3, n_chains=2, n_steps=5, seed=0, progress=False, gradient=Counting(G3),
                             checkpoint=blocker / "sub" / "c.npz")
    assert calls["n"] == 0
    with pytest.raises(IsADirectoryError, match="checkpoint"):
        smile_ref.run_chains("mclmc", G3, n_chains=2, n_steps=5, seed=0, progress=False, checkpoint=tmp_path)


GOLDEN_DAMAGE = {
    "npz-truncated": lambda npz, js: _truncate(npz),
    "npz-text": lambda npz, js: npz.write_text("x"),
    "json-invalid": lambda npz, js: js.write_text("{"),
    "json-binary": lambda npz, js: js.write_bytes(b"\xff\xfe\x00"),
    "json-list": lambda npz, js: js.write_text("[]"),
    "json-bad-n_steps": lambda npz, js: js.write_text(json.dumps(dict(json.loads(js.read_text()), n_steps="3"))),
    "npz-nan-positions": lambda npz, js: _rewrite(npz, lambda a: a["positions"].__setitem__((0, 0, 0), NAN)),
}


@pytest.mark.parametrize("damage", list(GOLDEN_DAMAGE), ids=list(GOLDEN_DAMAGE))
def test_damaged_golden_file_raises_corrupt_file_error(tmp_path, damage):
    npz, js = golden.export(tmp_path / "g", "mclmc", G3, n_chains=2, n_steps=3, seed=0)
    GOLDEN_DAMAGE[damage](npz, js)
    with pytest.raises(CorruptFileError, match="g.npz|g.json"):
        golden.load(tmp_path / "g")


def test_golden_export_is_atomic_and_leaves_no_temporaries(tmp_path):
    npz, js = golden.export(tmp_path / "g", "mclmc", G3, n_chains=2, n_steps=3, seed=0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.json", "g.npz"]


def test_damaged_ensemble_store_files(tmp_path):
    store = RunStore(tmp_path)
    (tmp_path / "run.json").write_text("{ broken")
    with pytest.raises(CorruptFileError, match="run.json"):
        store.claim({"a": 1})
    store.member_path(0).write_bytes(b"PK\x03\x04 garbage")
    with pytest.raises(CorruptFileError, match="member_000"):
        store.load_member(0)
    np.savez(store.member_path(1), samples=np.full((2, 2), NAN), meta=np.asarray("{}"))
    with pytest.raises(CorruptFileError, match="member_001"):
        store.load_member(1)


def test_ensemble_option_typo_does_not_lock_out_dir(tmp_path):
    """A typo in sampler_options fails before out_dir is written; the corrected call then runs."""
    out = tmp_path / "run"
    bad = EnsembleConfig.tiny(n_members=1, pretrain_max_epochs=1, n_warmup=2, n_samples=5, thinning=5,
                              sampler_options={"tunr": "mclmc"})
    with pytest.raises(TypeError, match="sampler_options"):
        run_ensemble(SPLIT, "smile", config=bad, hidden=(2,), out_dir=out)
    assert not out.exists()
    good = EnsembleConfig.tiny(n_members=1, pretrain_max_epochs=1, n_warmup=2, n_samples=5, thinning=5,
                               sampler_options={"tuner": "mclmc"})
    run_ensemble(SPLIT, "smile", config=good, hidden=(2,), out_dir=out)
    with pytest.raises(ResumeMismatchError, match="delete"):
        run_ensemble(SPLIT, "smile", config=good, hidden=(2,), seed=1, out_dir=out)


if __name__ == "__main__":  # pragma: no cover
    print(dict(COUNTS), "total", len(CASES))
