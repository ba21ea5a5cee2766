"""Shared behaviour of the per-sampler option records (frozen dataclasses with named presets).

Every registered sampler except SMILE takes its options as one frozen dataclass deriving from
:class:`SamplerConfig` (SMILE's is :class:`~smile_ref.samplers.smile_config.SMILEConfig`, which
has the same methods).  The dataclass is the one place where each default is written; a builder
``build_x(target, gradient, backend, step_size, n_warmup, preset=None, config=None, **options)``
resolves its kernel's record with :meth:`SamplerConfig.resolve`:

* ``config`` (or the preset's record, or the defaults) is the base;
* keyword ``options`` override single fields (:meth:`SamplerConfig.with_options`: dict-valued
  fields named in ``_merged`` merge key by key, and a changed field drops the fields that belong
  to it, ``_followers``);
* ``preset`` and ``config`` together raise ``ValueError``; an unknown option raises
  ``TypeError`` naming it; a preset is a classmethod named in ``presets``.

Examples
--------
>>> from smile_ref.samplers.sgmcmc_config import SGHMCConfig
>>> cfg = SGHMCConfig.authors()
>>> cfg.beta_hat, cfg.initial_velocity, cfg.gradient_clip
('step_size/2', 'zero', 1000000.0)
>>> SGHMCConfig.resolve(None, cfg, {"alpha": 0.1}).alpha
0.1
"""
from __future__ import annotations

import dataclasses
from types import MappingProxyType

__all__ = ["SamplerConfig"]


class SamplerConfig:
    """Methods of a frozen per-sampler option record (subclasses are ``@dataclass(frozen=True)``).

    Class attributes of a subclass (not fields): ``sampler`` (the registered name, for messages),
    ``presets`` (names of the classmethods that return a preset record), ``_merged`` (dict-valued
    fields that :meth:`with_options` merges key by key) and ``_followers`` (``field -> fields``
    that belong to it and are reset to their defaults when it changes, unless given too).
    """

    sampler = "?"
    presets: tuple = ()
    _merged: tuple = ()
    _followers: dict = {}

    @classmethod
    def from_options(cls, options: dict):
        """A record from keyword options; an unknown name raises ``TypeError`` naming it."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(options) - names)
        if unknown:
            raise TypeError(f"unknown option(s) {unknown} of {cls.sampler!r}; the options are {sorted(names)}")
        return cls(**options)

    def with_options(self, **options):
        """A copy with ``options`` applied (``_merged`` dicts key by key, ``_followers`` reset)."""
        base = self
        for key, followers in self._followers.items():
            if key in options and options[key] != getattr(self, key):
                defaults = {f.name: f.default for f in dataclasses.fields(self)}
                base = dataclasses.replace(base, **{f: defaults[f] for f in followers if f not in options})
        options = dict(options)
        for key in self._merged:
            mine = getattr(base, key)
            if isinstance(mine, (dict, MappingProxyType)) and isinstance(options.get(key), (dict, MappingProxyType)):
                options[key] = {**dict(mine), **dict(options[key])}
        return base.from_options({**base.as_options(), **options})

    def as_options(self) -> dict:
        """The fields as a ``dict`` of keyword options (dict-valued fields copied)."""
        return {f.name: (dict(v) if isinstance(v, (dict, MappingProxyType)) else v)
                for f in dataclasses.fields(self) for v in (getattr(self, f.name),)}

    @classmethod
    def from_preset(cls, preset: str):
        """The record of the named preset (a classmethod listed in ``presets``)."""
        if not cls.presets:
            raise ValueError(f"{cls.sampler!r} has no presets: preset must be None, got {preset!r}")
        if preset not in cls.presets:
            allowed = " or ".join(repr(p) for p in cls.presets)
            raise ValueError(f"preset must be None or {allowed}, got {preset!r}")
        return getattr(cls, preset)()

    @classmethod
    def resolve(cls, preset, config, options: dict):
        """The kernel's record: ``config`` (or ``preset``'s, or the defaults) with ``options`` applied."""
        if config is None:
            base = cls() if preset is None else cls.from_preset(preset)
        else:
            if not isinstance(config, cls):
                raise TypeError(f"config of {cls.sampler!r} must be a {cls.__name__}, got {type(config).__name__}")
            if preset is not None:
                raise ValueError(f"give preset or config, not both ({cls.__name__}.{preset}() is preset={preset!r})")
            base = config
        return base.with_options(**options) if options else base
