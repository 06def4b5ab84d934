"""Record a Flower run (Flower 1.42, legacy strategies, plain FedAvg or SecAgg+) in the recording format.

- :class:`RecordingStrategy` wraps the server's strategy and records the server's side;
- :class:`RecordingMod` (a client mod, after ``secaggplus_mod``) records the participants'
  sides, with :func:`record_sample_order` called from the client's ``fit``;
- :func:`ndarrays_to_state_dict` / :func:`state_dict_to_ndarrays` convert models;
- :func:`run_flower_simulation` runs and records a whole simulation in Flower's engine.

Importing this package needs Flower: ``pip install 'leakage[flower]'``.
"""

try:
    import flwr  # noqa: F401
except ImportError as error:  # pragma: no cover - exercised with flwr hidden
    raise ImportError(
        "leakage.integrations.flower needs Flower with its simulation extra: pip install 'leakage[flower]'"
    ) from error

from leakage.integrations.flower.arrays import ndarrays_to_state_dict, state_dict_to_ndarrays
from leakage.integrations.flower.client import RecordedClient, RecordingMod, record_sample_order
from leakage.integrations.flower.simulation import run_flower_simulation
from leakage.integrations.flower.strategy import ANNOUNCE_KEY, FLOWER_SCHEMES, FlowerScheme, RecordingStrategy

__all__ = [
    "ANNOUNCE_KEY",
    "FLOWER_SCHEMES",
    "FlowerScheme",
    "RecordedClient",
    "RecordingMod",
    "RecordingStrategy",
    "ndarrays_to_state_dict",
    "record_sample_order",
    "run_flower_simulation",
    "state_dict_to_ndarrays",
]
