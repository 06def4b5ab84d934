"""Recordings of real federated runs: the format, its writers and its reader."""

from leakage.recording.format import (
    RECORDING_FORMAT,
    RECORDING_VERSION,
    WEIGHTINGS,
    AggregationRule,
    RecordedTask,
    Weighting,
    client_folder,
    round_folder,
)
from leakage.recording.writer import ClientRecorder, ServerRecorder, StateDict, write_state_dict

__all__ = [
    "RECORDING_FORMAT",
    "RECORDING_VERSION",
    "WEIGHTINGS",
    "AggregationRule",
    "ClientRecorder",
    "RecordedTask",
    "ServerRecorder",
    "StateDict",
    "Weighting",
    "client_folder",
    "round_folder",
    "write_state_dict",
]
