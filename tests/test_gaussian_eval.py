"""The Gaussian target's evaluation equals the textbook arithmetic bit for bit.

``_logdensity_and_grad`` multiplies by a cached ``-P`` and skips ``x - m`` when the mean is exactly
``+0``; both are exact rewrites (negation is exact, IEEE products are sign-symmetric, ``x - 0.0 == x``),
so the result must equal ``g = -((x - m) P)``, ``logp = (x - m) . g / 2 + log Z`` in every bit
(deterministic: failure probability 0).  A mean of ``-0.0`` keeps the subtraction (``-0.0 - (-0.0)``
is ``+0.0``, not ``-0.0``).
"""
import numpy as np
import pytest

from smile_ref import targets
from smile_ref.backend import get_backend, to_numpy


def _reference(t, x):
    r = x - t.mean
    g = -(r * (1.0 / t.variances)) if t.is_diagonal else -(r @ t.precision)
    return 0.5 * np.sum(r * g, axis=1) + t.log_normalizer, g


CASES = {
    "zero mean, diagonal": lambda: targets.Gaussian.diagonal(np.array([0.5, 2.0, 3.0])),
    "mean, diagonal": lambda: targets.Gaussian.diagonal(np.array([0.5, 2.0, 3.0]), mean=np.array([1.0, -2.0, 0.3])),
    "-0.0 mean, diagonal": lambda: targets.Gaussian.diagonal(np.array([0.5, 2.0, 3.0]), mean=np.array([-0.0, 0.0, -0.0])),
    "zero mean, dense": lambda: targets.Gaussian(np.zeros(3), np.array([[2.0, 0.3, 0.1], [0.3, 1.0, 0.2], [0.1, 0.2, 0.5]])),
    "mean, dense": lambda: targets.Gaussian(np.array([0.1, 0.0, -1.0]),
                                            np.array([[2.0, 0.3, 0.1], [0.3, 1.0, 0.2], [0.1, 0.2, 0.5]])),
}


@pytest.mark.parametrize("backend_name", ["numpy", "array_api_strict"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_gaussian_evaluation_is_the_textbook_arithmetic(case, backend_name):
    t = CASES[case]()
    x = np.random.default_rng(1).normal(size=(5, 3))
    x[0] = [-0.0, 0.0, -0.0]
    be = get_backend(backend_name, "float64")
    for _ in range(2):  # the second call reads the cache
        lp, g = t.logdensity_and_grad(be.asarray(x))
        ref_lp, ref_g = _reference(t, x)
        assert to_numpy(g).tobytes() == ref_g.tobytes() and to_numpy(lp).tobytes() == ref_lp.tobytes()
