"""Content digests that decide whether a checkpoint may be resumed.

A checkpoint records, next to the sampler state, a SHA-256 digest of everything that decides the
rest of the chain: the target, the gradient estimator, every sampler option (tuner objects
included) and the initial positions.  ``run_chains(..., resume=True)`` recomputes them and refuses
(:class:`~smile_ref.errors.ResumeMismatchError`, naming the field) on any difference.

What a digest covers (:func:`digest`)
-------------------------------------
The digest walks the object's *content*, not its ``repr`` (which holds memory addresses):

* numbers, strings, ``None``: type and exact value (floats by their shortest round-trip ``repr``);
* arrays (NumPy, array_api_strict, CuPy, anything with ``__array__``): dtype, shape and bytes;
* ``dict``/``list``/``tuple``/``set``, ``NamedTuple`` and dataclass instances: class and items;
* functions and closures (tuners are ``NamedTuple``s of closures): module, qualified name,
  defaults and the values captured by the closure (so ``energy_error_tuner(alpha=0.2)`` and
  ``energy_error_tuner(alpha=0.1)`` differ, two calls with the same arguments agree);
* other objects: class and every instance attribute (``vars(obj)``), except cache attributes
  (names starting with ``_cache``, and those listed in a class attribute ``_digest_exclude``).

For classes and functions defined outside smile_ref (a user's ``Target`` subclass, a user tuner)
the digest also covers the *code* of their methods and their class-level attributes, so editing
the density between two runs refuses the resume.  Module-level globals that a function reads are
not covered.

An object may define ``resume_identity()`` returning any digestible value that stands for it
(e.g. a wrapper that only instruments another estimator returns the wrapped one).  An object
that cannot be digested (an open file, a lock, a C extension object without ``__dict__``) makes
the run non-resumable: the checkpoint is still written, and resuming it raises
:class:`~smile_ref.errors.ResumeMismatchError` explaining which object blocked the digest.

Examples
--------
>>> from smile_ref import targets
>>> digest(targets.Gaussian.isotropic(3)) == digest(targets.Gaussian.isotropic(3))
True
>>> digest(targets.Gaussian.isotropic(3)) == digest(targets.Gaussian.isotropic(3, scale=2.0))
False
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import math
import os
import sys
import sysconfig
import types
from typing import Any

import numpy as np

from ..errors import ResumeMismatchError

__all__ = ["UndigestibleError", "digest", "try_digest", "run_identity", "check_identity", "IDENTITY_VERSION"]

#: Version of the digest encoding (stored in checkpoints; a change refuses old checkpoints).
IDENTITY_VERSION = 1

_MAX_DEPTH = 64


class UndigestibleError(TypeError):
    """An object reachable from a run's inputs has no stable content digest."""


def _is_ours(module: str | None) -> bool:
    return bool(module) and (module == "smile_ref" or module.startswith("smile_ref."))


_TRUSTED_MODULES = ("numpy", "scipy", "builtins", "math", "functools", "typing", "collections", "array_api_strict",
                    "cupy", "abc", "enum")


@functools.lru_cache(maxsize=None)
def _is_library(module: str | None) -> bool:
    """smile_ref itself, the standard library and installed packages (their code is not digested)."""
    if not module:
        return False
    root = module.split(".")[0]
    if _is_ours(module) or root in _TRUSTED_MODULES or root in sys.builtin_module_names:
        return True
    mod = sys.modules.get(root)
    path = getattr(mod, "__file__", None)
    if not path:
        return False
    path = os.path.realpath(path)
    return any(path.startswith(os.path.realpath(p) + os.sep) for p in _library_dirs())


@functools.lru_cache(maxsize=1)
def _library_dirs() -> tuple:
    paths = sysconfig.get_paths()
    return tuple({paths[k] for k in ("stdlib", "platstdlib", "purelib", "platlib") if k in paths})


class _Digester:
    def __init__(self):
        self.memo: dict[int, bytes] = {}
        self.active: dict[int, int] = {}
        self.keep: list = []  # keep memoised objects alive so that their ids are not reused

    def __call__(self, obj, path: str, depth: int = 0) -> bytes:
        if depth > _MAX_DEPTH:
            raise UndigestibleError(f"{path}: nesting deeper than {_MAX_DEPTH} levels")
        key = id(obj)
        if key in self.memo:
            return self.memo[key]
        if key in self.active:
            return b"cycle:%d" % (depth - self.active[key])
        simple = self._simple(obj)
        if simple is not None:
            return simple
        hook = getattr(type(obj), "resume_identity", None)
        if hook is not None and callable(hook) and not isinstance(obj, type):
            stand_in = obj.resume_identity()
            if stand_in is obj:
                raise UndigestibleError(f"{path}: resume_identity() returned the object itself")
            self.active[key] = depth
            try:
                return self(stand_in, f"{path}.resume_identity()", depth + 1)
            finally:
                del self.active[key]
        self.active[key] = depth
        try:
            h = hashlib.sha256()
            for part in self._parts(obj, path, depth):
                h.update(len(part).to_bytes(8, "little"))
                h.update(part)
            out = h.digest()
        finally:
            del self.active[key]
        self.memo[key] = out
        self.keep.append(obj)
        return out

    @staticmethod
    def _simple(obj) -> bytes | None:
        if obj is None or isinstance(obj, (bool, int, str, bytes)):
            return f"{type(obj).__name__}:".encode() + (obj if isinstance(obj, bytes) else repr(obj).encode())
        if isinstance(obj, float):
            return b"float:" + (repr(obj) if math.isfinite(obj) else str(obj)).encode()
        if isinstance(obj, complex):
            return b"complex:" + repr(obj).encode()
        if isinstance(obj, (np.generic,)) and obj.dtype.kind in "biufc":
            return f"np.{obj.dtype.str}:{obj.item()!r}".encode()
        if isinstance(obj, np.dtype):
            return b"dtype:" + obj.str.encode()
        if isinstance(obj, types.ModuleType):
            return b"module:" + obj.__name__.encode()
        if type(obj) is object:  # a bare sentinel (libraries use them as markers): no content
            return b"object()"
        return None

    def _array(self, obj, path):
        try:
            from ..backend import to_numpy

            a = np.asarray(to_numpy(obj)) if not isinstance(obj, np.ndarray) else obj
        except Exception:  # noqa: BLE001
            try:
                a = np.asarray(obj)
            except Exception as exc:  # noqa: BLE001
                raise UndigestibleError(f"{path}: array of type {type(obj).__name__} cannot be read ({exc})") from None
        if a.dtype.kind == "O":
            return [b"objarray", repr(a.shape).encode()] + [self(v, f"{path}[{i}]") for i, v in enumerate(a.ravel())]
        a = np.ascontiguousarray(a)
        raw = a.reshape(-1).view(np.uint8) if a.dtype.kind in "biufc" and a.ndim else a.tobytes()  # no copy
        return [b"array", a.dtype.str.encode(), repr(a.shape).encode(), raw]

    def _code(self, code: types.CodeType, path: str, depth: int) -> bytes:
        h = hashlib.sha256()
        h.update(code.co_code)
        h.update(repr(code.co_names).encode())
        h.update(repr(code.co_varnames).encode())
        for c in code.co_consts:
            if isinstance(c, types.CodeType):
                h.update(self._code(c, path, depth + 1))
            elif isinstance(c, frozenset):
                h.update(repr(sorted(map(repr, c))).encode())
            else:
                h.update(repr(c).encode())
        return h.digest()

    def _function(self, fn, path, depth):
        parts = [b"function", f"{fn.__module__}.{fn.__qualname__}".encode()]
        if not _is_ours(fn.__module__):
            parts.append(self._code(fn.__code__, path, depth))
        parts.append(self(fn.__defaults__, f"{path}.__defaults__", depth + 1))
        parts.append(self(fn.__kwdefaults__, f"{path}.__kwdefaults__", depth + 1))
        names = fn.__code__.co_freevars
        for name, cell in zip(names, fn.__closure__ or ()):
            try:
                value = cell.cell_contents
            except ValueError:  # an empty cell (a name assigned later in the enclosing scope)
                parts.append(name.encode() + b":<empty>")
                continue
            parts.append(name.encode())
            parts.append(self(value, f"{path}.<closure {name}>", depth + 1))
        return parts

    def _class(self, cls, path, depth):
        parts = [b"class", f"{cls.__module__}.{cls.__qualname__}".encode()]
        for base in cls.__mro__:
            if base is object or _is_library(base.__module__):
                continue
            for name, attr in sorted(base.__dict__.items()):
                if name in ("__dict__", "__weakref__", "__doc__", "__module__", "__qualname__", "__annotations__",
                            "__slots__", "__orig_bases__", "__parameters__", "_abc_impl", "__firstlineno__",
                            "__static_attributes__", "__match_args__", "__dataclass_fields__",
                            "__dataclass_params__", "_field_defaults", "_fields"):
                    continue
                fn = attr
                if isinstance(attr, (staticmethod, classmethod)):
                    fn = attr.__func__
                if isinstance(attr, property):
                    for acc in (attr.fget, attr.fset):
                        if isinstance(acc, types.FunctionType):
                            parts += [name.encode(), self._code(acc.__code__, path, depth)]
                    continue
                if isinstance(fn, types.FunctionType):
                    parts += [name.encode(), self._code(fn.__code__, path, depth)]
                elif not (name.startswith("__") and name.endswith("__")) and not callable(attr):
                    parts += [name.encode(), self(attr, f"{path}.{cls.__qualname__}.{name}", depth + 1)]
        return parts

    def _parts(self, obj, path, depth):
        if isinstance(obj, dict):
            items = []
            for k, v in obj.items():
                kd = self(k, f"{path} key", depth + 1)
                items.append((kd, self(v, f"{path}[{k!r}]", depth + 1)))
            items.sort()
            return [b"dict"] + [p for kv in items for p in kv]
        if isinstance(obj, tuple) and hasattr(obj, "_fields"):
            cls = type(obj)
            return [b"namedtuple", f"{cls.__module__}.{cls.__qualname__}".encode()] + [
                self(getattr(obj, f), f"{path}.{f}", depth + 1) for f in obj._fields]
        if isinstance(obj, (list, tuple)):
            return [type(obj).__name__.encode()] + [self(v, f"{path}[{i}]", depth + 1) for i, v in enumerate(obj)]
        if isinstance(obj, (set, frozenset)):
            return [b"set"] + sorted(self(v, f"{path} item", depth + 1) for v in obj)
        if isinstance(obj, np.random.SeedSequence):
            return [b"seedsequence", repr(obj.entropy).encode(), repr(tuple(obj.spawn_key)).encode(),
                    repr(obj.pool_size).encode()]
        if isinstance(obj, np.random.Generator):
            return [b"generator", self(obj.bit_generator.state, f"{path}.state", depth + 1)]
        if hasattr(obj, "shape") and hasattr(obj, "dtype") and not isinstance(obj, type):
            return self._array(obj, path)
        if isinstance(obj, types.FunctionType):
            return self._function(obj, path, depth)
        if isinstance(obj, functools.partial):
            return [b"partial", self(obj.func, f"{path}.func", depth + 1), self(obj.args, f"{path}.args", depth + 1),
                    self(obj.keywords, f"{path}.keywords", depth + 1)]
        if isinstance(obj, types.MethodType):
            return [b"method", self(obj.__func__, f"{path}.__func__", depth + 1),
                    self(obj.__self__, f"{path}.__self__", depth + 1)]
        if isinstance(obj, (types.BuiltinFunctionType, np.ufunc)):
            return [b"builtin", f"{getattr(obj, '__module__', '')}.{getattr(obj, '__qualname__', obj.__name__)}".encode()]
        if isinstance(obj, type):
            return self._class(obj, path, depth)
        wrapped = getattr(obj, "__wrapped__", None)  # functools.wraps, jax.jit, ...
        if wrapped is not None and callable(obj) and wrapped is not obj:
            return [b"wrapped", f"{type(obj).__module__}.{type(obj).__qualname__}".encode(),
                    self(wrapped, f"{path}.__wrapped__", depth + 1)]
        if dataclasses.is_dataclass(obj):
            parts = self._class(type(obj), path, depth)
            for f in dataclasses.fields(obj):
                parts += [f.name.encode(), self(getattr(obj, f.name), f"{path}.{f.name}", depth + 1)]
            return parts
        if hasattr(obj, "__array__"):
            return self._array(obj, path)
        attrs = getattr(obj, "__dict__", None)
        if attrs is None:
            raise UndigestibleError(f"{path}: an object of type {type(obj).__module__}.{type(obj).__qualname__} "
                                    "has no attributes to digest")
        exclude = set(getattr(type(obj), "_digest_exclude", ()))
        parts = self._class(type(obj), path, depth)
        for name in sorted(attrs):
            if name.startswith("_cache") or name in exclude:
                continue
            parts += [name.encode(), self(attrs[name], f"{path}.{name}", depth + 1)]
        return parts


def digest(obj, name: str = "object") -> str:
    """SHA-256 (hex) of the content of ``obj`` (see the module docstring); ``name`` labels errors.

    Raises :class:`UndigestibleError` naming the path of the first object that cannot be digested.
    """
    return _Digester()(obj, name).hex()


def try_digest(obj, name: str, _digester: _Digester | None = None) -> dict:
    """``{"sha256": hex}``, or ``{"undigestible": reason}`` when :func:`digest` fails."""
    try:
        return {"sha256": (_digester or _Digester())(obj, name).hex()}
    except UndigestibleError as exc:
        return {"undigestible": str(exc)}
    except RecursionError:
        return {"undigestible": f"{name}: structure too deep to digest"}
    except Exception as exc:  # noqa: BLE001 - any other failure also makes the object undigestible
        return {"undigestible": f"{name}: digest failed ({type(exc).__name__}: {exc})"}


def run_identity(target, gradient, options: dict, initial_position) -> dict:
    """Digests of what decides a run's chain beyond its scalar configuration.

    Keys: ``target``, ``gradient``, ``option:<name>`` for each sampler option and
    ``initial_position`` (``{"default": True}`` when the target's default draw is used).
    """
    dg = _Digester()  # one memo: the gradient's target is not digested twice
    out = {"target": try_digest(target, "target", dg), "gradient": try_digest(gradient, "gradient", dg)}
    for k in sorted(options):
        out[f"option:{k}"] = try_digest(options[k], k, dg)
    out["initial_position"] = ({"default": True} if initial_position is None
                               else try_digest(initial_position, "initial_position", dg))
    return out


def _label(field: str) -> str:
    if field.startswith("option:"):
        return f"sampler option {field[len('option:'):]!r}"
    return {"target": "target", "gradient": "gradient estimator", "initial_position": "initial_position"}.get(
        field, field)


def _short(entry) -> str:
    if not isinstance(entry, dict):
        return repr(entry)
    if "sha256" in entry:
        return str(entry["sha256"])[:12]
    if entry.get("default"):
        return "default"
    return "undigestible"


def check_identity(path: str, stored: dict, current: dict) -> None:
    """Raise :class:`ResumeMismatchError` naming the first field where ``stored`` and ``current`` differ.

    An undigestible entry on either side also refuses (the checkpoint cannot be verified).
    """
    order = {"target": 0, "initial_position": 1, "gradient": 2}  # the gradient holds the target: report the target
    for field in sorted(set(stored) | set(current), key=lambda f: (order.get(f, 3), f)):
        a, b = stored.get(field), current.get(field)
        if a is None or b is None:
            which = "without" if a is None else "with"
            raise ResumeMismatchError(
                f"checkpoint {path!r} was written {which} {_label(field)}; this call "
                f"{'sets' if a is None else 'does not set'} it; refusing to resume (delete the checkpoint or "
                "change the path)")
        for side, entry in (("checkpoint", a), ("this call", b)):
            if isinstance(entry, dict) and "undigestible" in entry:
                raise ResumeMismatchError(
                    f"checkpoint {path!r}: cannot verify that the {_label(field)} is the one the checkpoint was "
                    f"written with ({side}: {entry['undigestible']}); define resume_identity() on that object, or "
                    "delete the checkpoint and rerun")
        if a != b:
            raise ResumeMismatchError(
                f"checkpoint {path!r} was written with a different {_label(field)} (digest {_short(a)} vs "
                f"{_short(b)}); refusing to resume a different configuration (delete the checkpoint or change the path)")
