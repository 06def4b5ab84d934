"""Write a recording while a real run goes on: the server's side and each recorded participant's.

The two sides usually run in different processes (Flower's simulation engine runs each
client in a Ray worker), so each writes its own files and never rewrites the other's;
every file is written atomically (:func:`~leakage.files.write_atomically`), so a crash
mid-run leaves whole files only. See :mod:`leakage.recording.format` for the layout.

>>> import tempfile, torch
>>> from leakage.recording import AggregationRule, RecordedTask
>>> run = Path(tempfile.mkdtemp()) / "run"
>>> server = ServerRecorder(run, task=RecordedTask("digits", "logreg"), rule=AggregationRule(), scheme="plain")
>>> before, after = {"w": torch.zeros(2)}, {"w": torch.ones(2)}
>>> server.record_round(0, before=before, after=after, sampled=["7"], participants=["7"], weights={"7": 3},
...                     uploads={"7": after})
>>> sorted(p.name for p in (run / "rounds" / "0000").rglob("*"))
['global_after.pt', 'global_before.pt', 'round.json', 'server', 'upload-7.pt']
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from leakage.errors import ConfigError
from leakage.files import write_atomically
from leakage.recording.format import (
    RECORDING_FORMAT,
    RECORDING_VERSION,
    AggregationRule,
    RecordedTask,
    client_folder,
    round_folder,
)

__all__ = ["ClientRecorder", "ServerRecorder", "StateDict", "write_state_dict"]

#: A model's ``state_dict`` as a framework hands it over: names to tensors or NumPy arrays.
StateDict = Mapping[str, Tensor | np.ndarray[Any, Any]]
_NODE = re.compile(r"^[A-Za-z0-9_.-]+$")


def write_state_dict(path: Path, state: StateDict) -> Path:
    """Save ``state`` (names to tensors or arrays) as a ``torch.save`` file of CPU tensors, atomically."""
    tensors = {str(name): _tensor(value) for name, value in state.items()}
    buffer = io.BytesIO()
    torch.save(tensors, buffer)
    return write_atomically(path, buffer.getvalue())


def _tensor(value: Tensor | np.ndarray[Any, Any]) -> Tensor:
    if isinstance(value, Tensor):
        return value.detach().cpu().clone()
    return torch.from_numpy(np.array(value, copy=True))


def _node(value: object) -> str:
    node = str(value)
    if not _NODE.match(node):
        raise ConfigError(f"node names must be letters, digits, '_', '.' or '-', got {node!r}")
    return node


def _write_json(path: Path, data: Mapping[str, Any]) -> None:
    write_atomically(path, json.dumps(data, indent=1) + "\n")


class ServerRecorder:
    """Writes the server's side of a recording: the manifest, and per round the global models,
    who took part, and what the server received.

    Args:
        folder: the run's folder (created; it must not hold another recording unless
            ``overwrite``).
        task: the dataset and model the run trains.
        rule: the public aggregation rule.
        scheme: how updates reached the server: ``"plain"`` (each upload in the clear) or
            the secure aggregation the framework ran (``"secagg+"``, ``"secagg"``), under
            which the server records only the aggregate.
        name: a name for reports.
        framework: the framework that ran, as ``{"name": ..., "version": ...}``.
        overwrite: replace an earlier recording in ``folder``.
        held_out: indices of dataset records no client trained on (the non-members that
            membership inference compares a canary's records with), if the run kept some.
    """

    def __init__(
        self,
        folder: str | os.PathLike[str],
        *,
        task: RecordedTask,
        rule: AggregationRule,
        scheme: str,
        name: str = "recorded run",
        framework: Mapping[str, str] | None = None,
        overwrite: bool = False,
        held_out: Sequence[int] | None = None,
    ) -> None:
        self.folder = Path(folder)
        manifest = self.folder / "recording.json"
        if manifest.exists() and not overwrite:
            raise ConfigError(f"{str(self.folder)!r} already holds a recording; pass overwrite=True to replace it")
        if overwrite and (self.folder / "rounds").exists():
            shutil.rmtree(self.folder / "rounds")
            shutil.rmtree(self.folder / "clients", ignore_errors=True)
        self._manifest: dict[str, Any] = {
            "format": RECORDING_FORMAT,
            "version": RECORDING_VERSION,
            "name": name,
            "framework": dict(framework or {}),
            "scheme": str(scheme),
            "task": task.to_dict(),
            "rule": rule.to_dict(),
            "rounds": 0,
            "held_out": None if held_out is None else [int(i) for i in held_out],
        }
        self.folder.mkdir(parents=True, exist_ok=True)
        _write_json(manifest, self._manifest)

    def record_round(
        self,
        round_index: int,
        *,
        before: StateDict,
        after: StateDict,
        sampled: Sequence[object],
        participants: Sequence[object],
        weights: Mapping[Any, float] | None = None,
        uploads: Mapping[Any, StateDict] | None = None,
        aggregate: StateDict | None = None,
        aborted: str | None = None,
    ) -> None:
        """Write round ``round_index`` (0-based) and count it in the manifest.

        Args:
            before, after: the global model broadcast at the start and released at the end.
            sampled: the nodes the server selected.
            participants: the nodes whose update entered the aggregate.
            weights: the aggregation weight (sample count) the server saw for each
                participant, if it saw any.
            uploads: each participant's upload in the clear (its local model), where the
                scheme sends it so.
            aggregate: the aggregated model the server decoded (secure aggregation).
            aborted: why the round aborted (the model is then unchanged).
        """
        folder = round_folder(self.folder, round_index)
        write_state_dict(folder / "global_before.pt", before)
        write_state_dict(folder / "global_after.pt", after)
        for node, state in (uploads or {}).items():
            write_state_dict(folder / "server" / f"upload-{_node(node)}.pt", state)
        if aggregate is not None:
            write_state_dict(folder / "server" / "aggregate.pt", aggregate)
        _write_json(folder / "round.json", {
            "round": round_index,
            "sampled": [_node(n) for n in sampled],
            "participants": [_node(n) for n in participants],
            "weights": None if weights is None else {_node(n): float(w) for n, w in weights.items()},
            "aborted": aborted,
        })
        self._manifest["rounds"] = max(int(self._manifest["rounds"]), round_index + 1)
        _write_json(self.folder / "recording.json", self._manifest)


class ClientRecorder:
    """Writes one participant's side of a recording: what it received, trained and was sent back.

    Args:
        folder: the run's folder (the server's recorder writes the manifest there).
        client_id: the participant's client id in the recording (0, 1, ...).
        data_indices: indices, into the task's dataset, of the samples it holds.
        node: the framework's name for it (Flower's node id); ``str(client_id)`` if ``None``.
        canary: whether the auditor controls its data, so that scores use it as ground truth.
    """

    def __init__(
        self,
        folder: str | os.PathLike[str],
        *,
        client_id: int,
        data_indices: Sequence[int] | Tensor | np.ndarray[Any, Any],
        node: object = None,
        canary: bool = False,
    ) -> None:
        if isinstance(client_id, bool) or not isinstance(client_id, (int, np.integer)) or client_id < 0:
            raise ConfigError(f"client_id must be an integer >= 0, got {client_id!r}")
        self.folder = Path(folder)
        self.client_id = int(client_id)
        self.node = _node(client_id if node is None else node)
        indices = [int(i) for i in (data_indices.tolist() if hasattr(data_indices, "tolist") else data_indices)]
        _write_json(client_folder(self.folder, self.client_id) / "client.json", {
            "client_id": self.client_id, "node": self.node, "canary": bool(canary), "data_indices": indices,
        })

    def record_fit(
        self,
        round_index: int,
        *,
        received: StateDict,
        local: StateDict,
        num_examples: int,
        sample_order: Sequence[int] | None = None,
        participants: Sequence[object] | None = None,
        sampled_count: int | None = None,
    ) -> None:
        """Write what the participant did in round ``round_index`` (0-based).

        Args:
            received: the global model it trained from.
            local: its local model after training (what it handed to the protocol).
            num_examples: the sample count it reported (its aggregation weight).
            sample_order: the dataset indices it trained on, in the order used
                (consecutive chunks of the batch size form its batches); ``None``: its
                data indices, in order.
            participants: the nodes it was told took part (itself included), if any.
            sampled_count: how many clients it was told were sampled, if it was.
        """
        folder = client_folder(self.folder, self.client_id) / "rounds" / f"{round_index:04d}"
        write_state_dict(folder / "received.pt", received)
        write_state_dict(folder / "local.pt", local)
        _write_json(folder / "round.json", {
            "round": round_index,
            "num_examples": int(num_examples),
            "sample_order": None if sample_order is None else [int(i) for i in sample_order],
            "participants": None if participants is None else [_node(n) for n in participants],
            "sampled_count": None if sampled_count is None else int(sampled_count),
        })

    def record_release(
        self,
        round_index: int,
        released: StateDict,
        *,
        participants: Sequence[object] | None = None,
        weights: Mapping[Any, float] | None = None,
    ) -> None:
        """Write the new global model the participant was sent after round ``round_index``.

        Args:
            released: the new global model.
            participants, weights: who took part and with which weights, where the
                server announced them with the new model (``released.json``).
        """
        folder = client_folder(self.folder, self.client_id) / "rounds" / f"{round_index:04d}"
        write_state_dict(folder / "released.pt", released)
        if participants is not None or weights is not None:
            _write_json(folder / "released.json", {
                "participants": None if participants is None else [_node(n) for n in participants],
                "weights": None if weights is None else {_node(n): float(w) for n, w in weights.items()},
            })
