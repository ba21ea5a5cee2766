"""Backend layer: namespaces, dtype/device preservation, random sources, validation."""
import json

import numpy as np
import pytest

from smile_ref.backend import HostRandom, get_backend, to_numpy, backend_of, make_random
from smile_ref.backend import validate as V

from .conftest import assert_backend


def test_random_draws_keep_backend(backend):
    r = HostRandom(3, backend)
    assert_backend(r.normal((4, 5)), backend, (4, 5))
    assert_backend(r.uniform((2,)), backend, (2,))
    i = r.integers(7, (3, 2))
    assert tuple(i.shape) == (3, 2)
    assert np.all((to_numpy(i) >= 0) & (to_numpy(i) < 7))


def test_same_seed_same_numbers_across_backends():
    ref = to_numpy(HostRandom(11, get_backend("numpy")).normal((3, 3)))
    strict = to_numpy(HostRandom(11, get_backend("array_api_strict", device="device1")).normal((3, 3)))
    np.testing.assert_array_equal(ref, strict)


def test_state_roundtrip_is_bit_identical():
    b = get_backend("numpy")
    r = HostRandom(5, b)
    r.normal((10,))
    state = json.loads(json.dumps(r.get_state()))
    a = to_numpy(r.normal((8,)))
    r2 = HostRandom(999, b)
    r2.set_state(state)
    np.testing.assert_array_equal(a, to_numpy(r2.normal((8,))))


def test_float32_drawn_in_float32():
    b = get_backend("numpy", "float32")
    z = HostRandom(0, b).normal((1000,))
    assert z.dtype == np.float32
    assert abs(float(np.mean(z))) < 0.2


def test_backend_of_roundtrip(backend):
    x = backend.zeros((2, 3))
    assert backend_of(x) == backend


@pytest.mark.parametrize(
    "call, exc, msg",
    [
        (lambda: V.check_positive_int(-1, "n_chains"), ValueError, "n_chains must be a positive integer"),
        (lambda: V.check_positive_int(2.5, "n_steps"), TypeError, "n_steps"),
        (lambda: V.check_positive_float(float("nan"), "step_size"), ValueError, "step_size must be finite"),
        (lambda: V.check_spd([[1.0, 2.0], [2.0, 1.0]], "cov"), ValueError, "cov must be positive definite"),
        (lambda: V.check_spd([[1.0, 0.5], [0.0, 1.0]], "cov"), ValueError, "cov must be symmetric"),
        (lambda: V.check_host_vector(np.ones((2, 2)), "mean", 2), ValueError, r"mean must have shape \(2,\)"),
        (lambda: V.check_host_vector([1.0, np.inf], "mean"), ValueError, "mean must be finite"),
        (lambda: V.check_choice("x", "kind", ("a", "b")), ValueError, "kind must be one of"),
        (lambda: get_backend("torch"), ValueError, "backend must be one of"),
        (lambda: get_backend("numpy", "float16"), ValueError, "dtype must be"),
        (lambda: HostRandom(-3, get_backend()), ValueError, "seed must be non-negative"),
        (lambda: make_random(0, get_backend(), "device"), ValueError, "needs the cupy backend"),
    ],
)
def test_validation_messages(call, exc, msg):
    with pytest.raises(exc, match=msg):
        call()


def test_check_positions_names_argument(backend):
    x = backend.zeros((3, 4))
    with pytest.raises(ValueError, match=r"x must have shape \(n, 5\)"):
        V.check_positions(x, 5)
    with pytest.raises(TypeError, match="real floating"):
        V.check_positions(backend.xp.zeros((3, 5), dtype=backend.xp.int64, device=backend.device), 5)
