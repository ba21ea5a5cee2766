"""Every public sampler and target documents itself with an ``Examples`` section, and every example runs.

The examples are doctests: their printed shapes, health flags and moment checks are compared literally, so
an example that stops working (or starts warning about run health) fails here instead of rotting silently.
"""
from __future__ import annotations

import doctest
import importlib
import inspect
import warnings

import pytest

import smile_ref
from smile_ref import samplers, targets

SAMPLER_MODULES = sorted({inspect.getmodule(samplers.get(n)).__name__ for n in samplers.available()})
TARGET_MODULES = sorted({inspect.getmodule(getattr(targets, n)).__name__ for n in targets.__all__})


def _kernel_class(name):
    """The kernel class a registered builder returns (its return annotation)."""
    builder = samplers.get(name)
    module = inspect.getmodule(builder)
    ret = builder.__annotations__.get("return")
    return getattr(module, ret) if isinstance(ret, str) else ret


@pytest.mark.parametrize("name", samplers.available())
def test_every_registered_sampler_has_examples(name):
    cls = _kernel_class(name)
    assert inspect.isclass(cls), f"{name}: builder has no kernel-class return annotation"
    doc = inspect.getdoc(cls) or ""
    assert "Examples\n--------" in doc, f"{cls.__qualname__} (sampler {name!r}) has no Examples section"
    assert f'run_chains("{name}"' in doc, f"{cls.__qualname__}: no example runs sampler {name!r}"


@pytest.mark.parametrize("name", targets.__all__)
def test_every_public_target_has_examples(name):
    obj = getattr(targets, name)
    doc = inspect.getdoc(obj) or ""
    assert "Examples\n--------" in doc, f"smile_ref.targets.{name} has no Examples section"


@pytest.mark.parametrize("module", SAMPLER_MODULES + TARGET_MODULES)
def test_examples_run(module):
    if module == "smile_ref.targets.callable":
        pytest.importorskip("jax", reason="the from_jax example needs JAX")
    mod = importlib.import_module(module)
    with warnings.catch_warnings():
        warnings.simplefilter("error", smile_ref.errors.SmileRefWarning)
        res = doctest.testmod(mod, optionflags=doctest.NORMALIZE_WHITESPACE, raise_on_error=False, verbose=False)
    assert res.attempted > 0, f"{module}: no examples"
    assert res.failed == 0, f"{module}: {res.failed} of {res.attempted} example lines failed (see output above)"
