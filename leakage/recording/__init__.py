"""Recordings of real federated runs: the format, its writers and its reader."""

from leakage.recording.export import EXPORTABLE_SCHEMES, record_transcript
from leakage.recording.flat import FlatModel, state_dict_to_flat
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
from leakage.recording.reader import Recording, read_recording
from leakage.recording.writer import ClientRecorder, ServerRecorder, StateDict, write_state_dict

__all__ = [
    "EXPORTABLE_SCHEMES",
    "RECORDING_FORMAT",
    "RECORDING_VERSION",
    "WEIGHTINGS",
    "AggregationRule",
    "ClientRecorder",
    "FlatModel",
    "RecordedTask",
    "Recording",
    "ServerRecorder",
    "StateDict",
    "Weighting",
    "client_folder",
    "read_recording",
    "record_transcript",
    "round_folder",
    "state_dict_to_flat",
    "write_state_dict",
]
