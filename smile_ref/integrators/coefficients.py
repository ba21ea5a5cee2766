"""Coefficients of the palindromic two-operator splitting schemes.

An isokinetic step of size ``eps`` alternates the two exactly solvable flows of
the ESH / isokinetic dynamics (Robnik et al. 2023, arXiv 2212.08549;
``docs/derivations/esh-velocity-update.md``):

* ``B(tau)``: velocity flow ``du/dt = P(u) g / (d - 1)`` with the gradient ``g``
  held fixed (closed form, :func:`~smile_ref.integrators.isokinetic.esh_velocity_update`);
* ``A(tau)``: position flow ``dx/dt = S u`` with ``u`` held fixed.

A scheme is the palindromic sequence ``[b1, a1, b2, a2, ..., a1, b1]`` (B first,
in units of ``eps``): ``B(b1 eps) A(a1 eps) B(b2 eps) ... B(b1 eps)``.  The B
coefficients and the A coefficients each sum to 1 (consistency), and
palindromy makes the step time-reversible and of even order.  Each A sub-step
is followed by one gradient evaluation, so ``n_grad`` = number of A
coefficients (the first B reuses the gradient stored from the previous step).

Schemes (values as in BlackJAX ``blackjax/mcmc/integrators.py``):

``leapfrog`` / ``velocity_verlet``
    ``[1/2, 1, 1/2]``; order 2, 1 gradient.
``mclachlan`` / ``minimal_norm``
    ``[b1, 1/2, 1 - 2 b1, 1/2, b1]``, ``b1 = 0.1931833275037836``
    (McLachlan 1995, minimal error norm two-stage scheme); order 2, 2
    gradients.  Default of BlackJAX MCLMC and of every SMILE kernel.
``yoshida``
    ``[b1, a1, 1/2 - b1, 1 - 2 a1, 1/2 - b1, a1, b1]``,
    ``b1 = 0.11888010966548``, ``a1 = 0.29619504261126`` (McLachlan 1995
    three-stage scheme with stability interval ~4.67; BlackJAX calls it
    ``yoshida``).  Order 2 (it is *not* Yoshida's 4th-order triple jump), 3
    gradients.
``omelyan``
    ``[b1, a1, b2, a2, b3, a3, b3, a2, b2, a1, b1]`` with
    ``b1 = 0.08398315262876693``, ``a1 = 0.2539785108410595``,
    ``b2 = 0.6822365335719091``, ``a2 = -0.03230286765269967``,
    ``b3 = 1/2 - b1 - b2``, ``a3 = 1 - 2 (a1 + a2)`` (Omelyan, Mryglod & Folk
    2003, 11-coefficient force-gradient-free scheme; BlackJAX
    ``isokinetic_omelyan``).  Order 4, 5 gradients.
``omelyan_4grad``
    ``[xi, lam, chi, 1/2 - lam, 1 - 2 (chi + xi), 1/2 - lam, chi, lam, xi]``
    with ``xi = 0.1720865590295143``, ``lam = 0.5915620307551568``,
    ``chi = -0.1616217622107222`` (Omelyan, Mryglod & Folk 2002, Comput. Phys.
    Commun. 146, 188: 4th-order velocity-type scheme with 4 force
    evaluations).  Order 4, 4 gradients.  Not in BlackJAX.  The placement of
    ``lam`` was fixed by the order test: the variant with ``1/2 - lam`` as the
    first A coefficient is only 2nd order.

Orders are checked numerically (energy-error scaling) in
``tests/test_integrators.py``.
"""
from __future__ import annotations

from typing import NamedTuple

__all__ = [
    "IntegratorCoefficients",
    "LEAPFROG",
    "MCLACHLAN",
    "YOSHIDA_3STAGE",
    "OMELYAN",
    "OMELYAN_4GRAD",
    "INTEGRATORS",
    "get_integrator",
]


class IntegratorCoefficients(NamedTuple):
    """A palindromic B-A-...-B scheme.

    Attributes
    ----------
    name : str
    coefficients : tuple of float
        ``[b1, a1, b2, a2, ..., b1]`` in units of the step size; even indices
        are velocity (B) sub-steps, odd indices position (A) sub-steps.
    order : int
        Declared order of the scheme (global error ``O(eps^order)``).
    n_grad : int
        Gradient evaluations per step (number of A sub-steps).
    """

    name: str
    coefficients: tuple
    order: int
    n_grad: int


def _make(name: str, coefficients, order: int) -> IntegratorCoefficients:
    coefficients = tuple(float(c) for c in coefficients)
    if len(coefficients) % 2 == 0:
        raise ValueError(f"{name}: a B-first palindromic scheme has an odd number of coefficients")
    if any(abs(a - b) > 1e-15 for a, b in zip(coefficients, coefficients[::-1])):
        raise ValueError(f"{name}: coefficients must be palindromic")
    if abs(sum(coefficients[0::2]) - 1.0) > 1e-14 or abs(sum(coefficients[1::2]) - 1.0) > 1e-14:
        raise ValueError(f"{name}: B and A coefficients must each sum to 1")
    return IntegratorCoefficients(name, coefficients, order, len(coefficients) // 2)


LEAPFROG = _make("leapfrog", [0.5, 1.0, 0.5], 2)

_b1 = 0.1931833275037836
MCLACHLAN = _make("mclachlan", [_b1, 0.5, 1.0 - 2.0 * _b1, 0.5, _b1], 2)

_b1, _a1 = 0.11888010966548, 0.29619504261126
YOSHIDA_3STAGE = _make("yoshida", [_b1, _a1, 0.5 - _b1, 1.0 - 2.0 * _a1, 0.5 - _b1, _a1, _b1], 2)

_b1, _a1, _b2, _a2 = 0.08398315262876693, 0.2539785108410595, 0.6822365335719091, -0.03230286765269967
_b3, _a3 = 0.5 - _b1 - _b2, 1.0 - 2.0 * (_a1 + _a2)
OMELYAN = _make("omelyan", [_b1, _a1, _b2, _a2, _b3, _a3, _b3, _a2, _b2, _a1, _b1], 4)

_xi, _lam, _chi = 0.1720865590295143, 0.5915620307551568, -0.1616217622107222
OMELYAN_4GRAD = _make(
    "omelyan_4grad",
    [_xi, _lam, _chi, 0.5 - _lam, 1.0 - 2.0 * (_chi + _xi), 0.5 - _lam, _chi, _lam, _xi],
    4,
)
del _b1, _a1, _b2, _a2, _b3, _a3, _xi, _lam, _chi

INTEGRATORS = {
    "leapfrog": LEAPFROG,
    "velocity_verlet": LEAPFROG,
    "mclachlan": MCLACHLAN,
    "minimal_norm": MCLACHLAN,
    "yoshida": YOSHIDA_3STAGE,
    "omelyan": OMELYAN,
    "omelyan_4grad": OMELYAN_4GRAD,
}


def get_integrator(name) -> IntegratorCoefficients:
    """Scheme by name (``IntegratorCoefficients`` instances are passed through).

    Parameters
    ----------
    name : {"leapfrog", "velocity_verlet", "mclachlan", "minimal_norm", "yoshida", "omelyan", "omelyan_4grad"}
    """
    if isinstance(name, IntegratorCoefficients):
        return name
    if not isinstance(name, str) or name not in INTEGRATORS:
        raise ValueError(f"integrator must be one of {sorted(INTEGRATORS)}, got {name!r}")
    return INTEGRATORS[name]
