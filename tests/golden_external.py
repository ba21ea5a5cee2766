"""An independent plain-NumPy implementation of the golden-file samplers, written from
docs/golden-format.md and the sidecar alone (no smile_ref imports).

It plays the role of an "external implementation" for ``smile-ref golden check
--step-fn tests.golden_external:step``: it rebuilds the target from
``spec["target"]`` (Gaussian mean/cov, or LinearRegression data in
``target/X``, ``target/y``), consumes the recorded random inputs and writes out
the per-step state.  It implements the velocity update in the cosh/sinh form of
Steeg & Galstyan (2021) rather than smile_ref's ``zeta`` form, so agreement to
1e-12 checks the format and the kernels, not shared code.

Limitations: no MCLMC/SGLD/SGHMC guardrail rejections (the shipped files
have none); SMILE's reset *decision* depends on its tuner's state and is read
from the recorded ``rejected`` array (its consequences are implemented); the
step size and pSMILE's preconditioner are taken from the recorded ``inputs``
(the tuners are not re-implemented).
"""
from __future__ import annotations

import math

import numpy as np


# ----------------------------------------------------------------------------- target and estimator
def _target(golden):
    spec, arrays = golden.spec["target"], golden.arrays
    p = spec["params"]
    if spec["class"] == "Gaussian":
        m, C = np.asarray(p["mean"]), np.asarray(p["cov"])
        P = np.linalg.inv(C)
        d = m.shape[0]
        logz = -0.5 * (d * math.log(2 * math.pi) + np.linalg.slogdet(C)[1])

        def full(x):
            r = x - m
            return -0.5 * np.einsum("ni,ij,nj->n", r, P, r) + logz, -r @ P

        return full, None
    assert spec["class"] == "LinearRegression", spec["class"]
    X, y = arrays["target/X"], arrays["target/y"]
    s2, n2 = p["prior_scale"] ** 2, p["noise_scale"] ** 2
    N, dim = X.shape

    def prior(x):
        return -0.5 * np.sum(x * x, axis=1) / s2 - 0.5 * dim * math.log(2 * math.pi * s2), -x / s2

    def lik(x, Xb, yb, scale):  # Xb (n, b, p), yb (n, b)
        r = yb - np.einsum("nbp,np->nb", Xb, x)
        ll = -0.5 * r * r / n2 - 0.5 * math.log(2 * math.pi * n2)
        return scale * ll.sum(axis=1), scale * np.einsum("nb,nbp->np", r / n2, Xb)

    def full(x):
        lp, gp = prior(x)
        ll, gl = lik(x, np.broadcast_to(X, (x.shape[0], N, dim)), np.broadcast_to(y, (x.shape[0], N)), 1.0)
        return lp + ll, gp + gl

    def batch(x, idx):
        lp, gp = prior(x)
        ll, gl = lik(x, X[idx], y[idx], N / idx.shape[1])
        return lp + ll, gp + gl

    return full, batch


def _estimate(golden, x, batch):
    """``(logp_hat, g_hat)`` of the recorded gradient estimator for the recorded ``batch``."""
    full, by_index = _target(golden)
    cls = golden.spec["gradient"]["class"]
    if cls == "Exact":
        return full(x)
    if cls == "MiniBatch":
        return by_index(x, batch)
    assert cls == "AdditiveNoise", cls
    lp, g = full(x)
    return lp + np.sum(batch * x, axis=1), g + batch


# ----------------------------------------------------------------------------- isokinetic pieces
def _b_update(u, g, tau, S):
    """Velocity flow for time ``tau`` (cosh/sinh form), normalised; returns ``(u', dK)``."""
    d = u.shape[1]
    gs = g if S is None else S * g
    norm = np.linalg.norm(gs, axis=1, keepdims=True)
    e = gs / norm
    delta = tau[:, None] * norm / (d - 1)
    c = np.sum(u * e, axis=1, keepdims=True)
    w = u + e * (np.sinh(delta) + c * (np.cosh(delta) - 1.0))
    den = np.cosh(delta) + c * np.sinh(delta)
    return w / np.linalg.norm(w, axis=1, keepdims=True), (d - 1) * np.log(den[:, 0])


def _refresh(u, tau, L, z):
    nu = np.sqrt(np.expm1(2.0 * tau / L) / u.shape[1])[:, None]
    w = u + nu * z
    return w / np.linalg.norm(w, axis=1, keepdims=True)


def _isokinetic(golden, x, u, g, eps, S, batch):
    dK = np.zeros(x.shape[0])
    lp = None
    for i, c in enumerate(golden.spec["integrator"]["coefficients"]):
        if i % 2 == 0:
            u, k = _b_update(u, g, c * eps, S)
            dK += k
        else:
            x = x + (c * eps)[:, None] * (u if S is None else S * u)
            lp, g = _estimate(golden, x, batch)
    return x, u, lp, g, dK


def _first_grad(state, golden):
    if "grad" not in state:
        init_batch = state["init_batch"][0] if "init_batch" in state else None
        state["grad"] = _estimate(golden, state["position"], init_batch)[1]
    return state


# ----------------------------------------------------------------------------- samplers
def _mclmc(t, state, inputs, golden):
    state = _first_grad(state, golden)
    opts = golden.spec["sampler"]["options"]
    eps = inputs["step_size"]
    L = np.full_like(eps, opts["L"])
    z2, z1 = inputs["sampler_normals"]
    S = inputs.get("sqrt_diag")
    batch = inputs["batch"][0] if "batch" in inputs else None
    u = _refresh(state["velocity"], eps / 2, L, z1)
    x, u, lp, g, dK = _isokinetic(golden, state["position"], u, state["grad"], eps, S, batch)
    dE = dK - (lp - state["logdensity"])
    u = _refresh(u, eps / 2, L, z2)
    return {"position": x, "velocity": u, "logdensity": lp, "grad": g, "energy_error": dE,
            "rejected": np.zeros(x.shape[0])}


def _smile(t, state, inputs, golden):
    state = _first_grad(state, golden)
    opts = golden.spec["sampler"]["options"]
    assert not opts.get("refresh", False) and opts.get("energy_error", "same_batch") == "same_batch"
    eps, S, batch = inputs["step_size"], inputs.get("sqrt_diag"), inputs["batch"][0]
    x0 = state["position"]
    x, u, lp, g, dK = _isokinetic(golden, x0, state["velocity"], state["grad"], eps, S, batch)
    lp_old = _estimate(golden, x0, batch)[0]  # same batch for both log-densities
    dE = dK - (lp - lp_old)
    # reset: the *decision* (Gamma-quantile test of the tuner) is read from the record, its consequences are
    # implemented here: position, stored log-density and gradient restored, velocity set to zero
    reset = golden.arrays["rejected"][t].astype(bool)[:, None]
    x, lp = np.where(reset, x0, x), np.where(reset[:, 0], state["logdensity"], lp)
    g, u = np.where(reset, state["grad"], g), np.where(reset, 0.0, u)
    return {"position": x, "velocity": u, "logdensity": lp, "grad": g, "energy_error": dE,
            "rejected": reset[:, 0].astype(float)}


def _sgld(t, state, inputs, golden):
    # the gradient at x_t was evaluated on the batch drawn at the end of the previous step (init/batch for
    # t = 0); this step's batch is for the gradient at the new position
    state = _first_grad(state, golden)
    h = inputs["step_size"][:, None]
    x = state["position"]
    x = x + h * state["grad"] + np.sqrt(2.0 * h) * inputs["sampler_normals"][0]
    g = _estimate(golden, x, inputs["batch"][0])[1]
    return {"position": x, "logdensity": _target(golden)[0](x)[0], "grad": g, "rejected": np.zeros(x.shape[0])}


def _sghmc(t, state, inputs, golden):
    opts = golden.spec["sampler"]["options"]
    alpha, beta = opts.get("alpha", 0.01), opts.get("beta_hat", 0.0)
    eta = inputs["step_size"][:, None]
    state = _first_grad(state, golden)  # gradient at x_t: evaluated with the previous step's (or init's) draw
    x, v = state["position"], state["velocity"]
    v = (1.0 - alpha) * v + eta * state["grad"] + np.sqrt(2.0 * (alpha - beta) * eta) * inputs["sampler_normals"][0]
    x = x + v
    g = _estimate(golden, x, inputs["batch"][0])[1]
    return {"position": x, "velocity": v, "logdensity": _target(golden)[0](x)[0], "grad": g,
            "rejected": np.zeros(x.shape[0])}


STEPS = {"mclmc": _mclmc, "smile": _smile, "psmile": _smile, "sgld": _sgld, "sghmc": _sghmc}


def step(t, state, inputs, golden):
    """The documented step-function signature (smile_ref.crosscheck.replay)."""
    return STEPS[golden.spec["sampler"]["name"]](t, state, inputs, golden)


def perturbed_step(t, state, inputs, golden):
    """:func:`step` with a 1e-9 kick to the position at step 4 (detection test)."""
    out = step(t, state, inputs, golden)
    if t == 4:
        out = dict(out, position=out["position"] + 1e-9)
    return out
