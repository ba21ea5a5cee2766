"""Golden trajectories: portable records of short runs with every random input (docs/golden-format.md).

Sits above the samplers (like :mod:`smile_ref.run`): it records a run through
:class:`RecordingRandom`, writes ``.npz`` + JSON sidecar (:func:`export`), and
replays a file through smile_ref or a user step function (:func:`check`).
"""
from .golden import SCHEMA, SCHEMA_VERSION, GoldenFormatError, export, load, record
from .recording import Draw, RecordingGradient, RecordingRandom, ReplayMismatch, ReplayRandom
from .replay import ReplayResult, Golden, check, deviation, import_step_function

__all__ = [
    "SCHEMA", "SCHEMA_VERSION", "GoldenFormatError", "export", "load", "record",
    "Draw", "RecordingGradient", "RecordingRandom", "ReplayMismatch", "ReplayRandom",
    "ReplayResult", "Golden", "check", "deviation", "import_step_function",
]
