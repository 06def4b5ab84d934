"""Read a recording back into the transcript the simulator would make, checking every file.

:func:`read_recording` loads the manifest, the task's dataset and model, every round's
global models and what the server received, and every recorded participant's files;
it turns them into a :class:`~leakage.Transcript` whose views follow the simulator's
conventions (:mod:`leakage.views`), so attacks and scoring run on it unchanged:

- ``server``: both global models of each round, who took part, the public rule and the
  weights it saw; each upload in the clear (``update:client:<id>``: local model minus the
  model it started from, and ``buffers:client:<id>``) where the recording holds them, or
  the decoded ``aggregate`` (and ``total_weight``) under secure aggregation.
- ``client:<id>`` for each recorded participant and each round it trained in: the model
  it received, the new model if it was sent one, its own ``update``, ``data_indices`` and
  ``buffers``, the participants it was told of, and the weights where the server
  announced them (``released.json``).
- ``public``: the released final model.

No eavesdropper is recorded. Ground truth is kept for canary clients only: their data
indices, and per round their true update and sample order.

A bad recording raises :class:`~leakage.errors.ConfigError` with one line naming the
file and the field: a missing round, a model of the wrong shape, an unsafe pickle (which
``weights_only`` loading refuses), participant lists that disagree with the uploads or
with a participant's own record, a canary that never took part.
"""

from __future__ import annotations

import json
import os
import pickle
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from leakage.data import Dataset, load_dataset
from leakage.errors import ConfigError
from leakage.models import create_model
from leakage.recording._assemble import build_transcript
from leakage.recording._parsed import Participant, ParticipantRound, ServerRound
from leakage.recording.flat import FlatModel, state_dict_to_flat
from leakage.recording.format import (
    RECORDING_FORMAT,
    RECORDING_VERSION,
    AggregationRule,
    RecordedTask,
    round_folder,
)
from leakage.transcript import Transcript

__all__ = ["Recording", "read_recording"]

_PLAIN_SCHEMES = ("plain",)


@dataclass(frozen=True)
class Recording:
    """A recording read back: its manifest, the transcript it gives, and its canaries.

    Attributes:
        folder: where it was read from.
        name: the run's name.
        scheme: how updates reached the server (``"plain"``, ``"secagg+"``...).
        framework: the framework that ran it (``{"name": "flower", "version": ...}``).
        task: the dataset and model.
        rule: the public aggregation rule.
        transcript: the views and the canaries' truth, as the simulator would make them.
        dataset: the task's dataset, which the recorded data indices index.
        canaries: the client ids whose data the auditor controls, sorted.
        recorded: every client id with a recorded view, sorted.
        nodes: the framework's node name of each client id.
        held_out: dataset indices of records no client trained on, if the recording names
            them (membership inference's non-members); ``None`` otherwise.
    """

    folder: Path
    name: str
    scheme: str
    framework: Mapping[str, Any]
    task: RecordedTask
    rule: AggregationRule
    transcript: Transcript
    dataset: Dataset
    canaries: tuple[int, ...]
    recorded: tuple[int, ...]
    nodes: Mapping[int, str] = field(default_factory=dict)
    held_out: Tensor | None = None


def read_recording(path: str | os.PathLike[str], *, dataset: Dataset | None = None) -> Recording:
    """Read and check the recording in folder ``path`` (see :mod:`leakage.recording.format`).

    Args:
        path: the run's folder.
        dataset: the task's dataset, if already loaded (else loaded from the manifest).

    Raises:
        ConfigError: the recording is missing, malformed or inconsistent; one line
            naming the file and the field.
    """
    return _Reader(Path(path), dataset).read()


class _Reader:
    def __init__(self, folder: Path, dataset: Dataset | None) -> None:
        self.folder = folder
        self.dataset_given = dataset

    # -- files ----------------------------------------------------------------------

    def _name(self, path: Path) -> str:
        return path.relative_to(self.folder).as_posix() if path.is_relative_to(self.folder) else str(path)

    def _json(self, path: Path) -> dict[str, Any]:
        if not path.is_file():
            raise ConfigError(f"{self._name(path)}: missing")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as error:
            raise ConfigError(f"{self._name(path)}: not valid JSON: {error}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{self._name(path)}: must hold a JSON object, got {type(data).__name__}")
        return data

    def _flat(self, path: Path) -> FlatModel:
        name = self._name(path)
        if not path.is_file():
            raise ConfigError(f"{name}: missing")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError:  # weights_only met an object other than tensors: it would run code
            raise ConfigError(
                f"{name}: not a safe state_dict file: weights_only loading refused it (it holds pickled objects "
                "other than tensors, which could run code when loaded)"
            ) from None
        except Exception as error:  # not a torch file at all, or a truncated one
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise ConfigError(f"{name}: not a readable state_dict file: {first}") from None
        if not isinstance(state, Mapping) or not all(
            isinstance(k, str) and isinstance(v, Tensor) for k, v in state.items()
        ):
            raise ConfigError(f"{name}: must hold a state_dict (names to tensors), got {type(state).__name__}")
        return state_dict_to_flat(state, self.model, source=name)

    def _field(self, path: Path, data: Mapping[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
        value = data.get(key)
        if not isinstance(value, kind) or isinstance(value, bool) and bool not in _types(kind):
            wanted = " or ".join(t.__name__ for t in _types(kind))
            raise ConfigError(f"{self._name(path)}: {key} must be {wanted}, got {value!r}")
        return value

    def _nodes(self, path: Path, data: Mapping[str, Any], key: str) -> list[str]:
        value = self._field(path, data, key, list)
        if not all(isinstance(node, str) for node in value):
            raise ConfigError(f"{self._name(path)}: {key} must be a list of node names (strings), got {value!r}")
        if len(set(value)) != len(value):
            raise ConfigError(f"{self._name(path)}: {key} lists a node twice: {value!r}")
        return list(value)

    # -- the whole recording ----------------------------------------------------------

    def read(self) -> Recording:
        folder = self.folder
        if not folder.is_dir():
            raise ConfigError(f"recording: no such folder {str(folder)!r}")
        manifest_path = folder / "recording.json"
        manifest = self._json(manifest_path)
        if manifest.get("format") != RECORDING_FORMAT:
            raise ConfigError(
                f"recording.json: format must be {RECORDING_FORMAT!r}, got {manifest.get('format')!r}"
            )
        if manifest.get("version") != RECORDING_VERSION:
            raise ConfigError(
                f"recording.json: version must be {RECORDING_VERSION} (the version this reader reads), "
                f"got {manifest.get('version')!r}"
            )
        try:
            task = RecordedTask.from_dict(manifest.get("task", {}), where="task")
            rule = AggregationRule.from_dict(manifest.get("rule", {}), where="rule")
        except ConfigError as error:
            raise ConfigError(f"recording.json: {error}") from None
        scheme = self._field(manifest_path, manifest, "scheme", str)
        rounds = self._field(manifest_path, manifest, "rounds", int)
        if rounds < 1:
            raise ConfigError(f"recording.json: rounds must be >= 1 (a recording of at least one round), got {rounds}")
        self.rule, self.scheme = rule, scheme
        try:
            self.dataset = self.dataset_given or load_dataset(task.dataset, **task.dataset_options)
            self.model = create_model(
                task.model, input_shape=self.dataset.input_shape, num_classes=self.dataset.num_classes,
                generator=torch.Generator().manual_seed(0), **task.model_options,
            )
        except ConfigError as error:
            raise ConfigError(f"recording.json: task: {error}") from None
        present = sorted(p.name for p in (folder / "rounds").iterdir()) if (folder / "rounds").is_dir() else []
        expected = [f"{r:04d}" for r in range(rounds)]
        for name in expected:
            if name not in present:
                raise ConfigError(
                    f"rounds/{name}: missing (recording.json: rounds says {rounds} round(s), numbered from 0000)"
                )
        extra = [name for name in present if name not in expected]
        if extra:
            raise ConfigError(f"rounds/{extra[0]}: not a round of this recording (recording.json: rounds is {rounds})")
        self.held_out = (
            None if manifest.get("held_out") is None else self._indices(manifest_path, manifest, "held_out")
        )
        server_rounds = [self._server_round(r) for r in range(rounds)]
        clients = self._clients(server_rounds)
        if self.held_out is not None:
            for client in clients:
                shared = set(self.held_out.tolist()) & set(client.indices.tolist())
                if shared:
                    raise ConfigError(
                        f"recording.json: held_out: record {min(shared)} is in client {client.client_id}'s data "
                        f"(clients/{client.client_id}/client.json), so it is no non-member"
                    )
        transcript, nodes = build_transcript(
            folder=self.folder, manifest=manifest, task=task, rule=rule, scheme=scheme, dataset=self.dataset,
            model=self.model, rounds=server_rounds, clients=clients,
        )
        return Recording(
            folder=self.folder, name=str(transcript.settings["name"]), scheme=scheme,
            framework=transcript.settings["framework"], task=task, rule=rule, transcript=transcript,
            dataset=self.dataset, canaries=tuple(transcript.settings["canaries"]),
            recorded=tuple(sorted(client.client_id for client in clients)), nodes=nodes, held_out=self.held_out,
        )

    # -- the server's side ------------------------------------------------------------

    def _server_round(self, round_index: int) -> ServerRound:
        folder = round_folder(self.folder, round_index)
        path = folder / "round.json"
        data = self._json(path)
        if data.get("round") != round_index:
            raise ConfigError(f"{self._name(path)}: round must be {round_index}, got {data.get('round')!r}")
        sampled = self._nodes(path, data, "sampled")
        participants = self._nodes(path, data, "participants")
        outside = [node for node in participants if node not in sampled]
        if outside:
            raise ConfigError(f"{self._name(path)}: participants: node {outside[0]!r} took part but was not sampled")
        weights_data = data.get("weights")
        weights: dict[str, float] | None = None
        if weights_data is not None:
            if not isinstance(weights_data, dict) or not all(
                isinstance(w, (int, float)) and not isinstance(w, bool) and w >= 0 for w in weights_data.values()
            ):
                raise ConfigError(
                    f"{self._name(path)}: weights must map node names to numbers >= 0, got {weights_data!r}"
                )
            if sorted(weights_data) != sorted(participants):
                raise ConfigError(
                    f"{self._name(path)}: weights name nodes {sorted(weights_data)} but participants are "
                    f"{sorted(participants)}"
                )
            weights = {str(node): float(w) for node, w in weights_data.items()}
        aborted = data.get("aborted")
        if aborted is not None and not isinstance(aborted, str):
            raise ConfigError(f"{self._name(path)}: aborted must be a reason (string) or null, got {aborted!r}")
        before = self._flat(folder / "global_before.pt")
        after = self._flat(folder / "global_after.pt")
        server = folder / "server"
        uploads: dict[str, FlatModel] = {}
        for file in sorted(server.glob("upload-*.pt")) if server.is_dir() else []:
            uploads[file.name.removeprefix("upload-").removesuffix(".pt")] = self._flat(file)
        aggregate = self._flat(server / "aggregate.pt") if (server / "aggregate.pt").is_file() else None
        if uploads and sorted(uploads) != sorted(participants):
            raise ConfigError(
                f"{self._name(path)}: participants {sorted(participants)} disagree with the uploads in "
                f"{self._name(server)}/ (from nodes {sorted(uploads)})"
            )
        if uploads and self.scheme not in _PLAIN_SCHEMES:
            raise ConfigError(
                f"{self._name(server)}: holds uploads in the clear, but recording.json: scheme is {self.scheme!r} "
                f"(uploads are recorded under {', '.join(_PLAIN_SCHEMES)} only)"
            )
        return ServerRound(round_index, sampled, participants, weights, aborted, before, after, uploads, aggregate)

    # -- the recorded participants ------------------------------------------------------

    def _clients(self, rounds: Sequence[ServerRound]) -> list[Participant]:
        base = self.folder / "clients"
        folders = sorted((p for p in base.iterdir() if p.is_dir()), key=lambda p: p.name) if base.is_dir() else []
        clients = []
        seen_nodes: dict[str, int] = {}
        for folder in folders:
            path = folder / "client.json"
            data = self._json(path)
            client_id = self._field(path, data, "client_id", int)
            if str(client_id) != folder.name or client_id < 0:
                raise ConfigError(
                    f"{self._name(path)}: client_id must be {folder.name} (its folder's name), got {client_id}"
                )
            node = self._field(path, data, "node", str)
            if node in seen_nodes:
                raise ConfigError(f"{self._name(path)}: node {node!r} is also client {seen_nodes[node]}'s")
            seen_nodes[node] = client_id
            canary = self._field(path, data, "canary", bool)
            indices = self._indices(path, data, "data_indices")
            fits: dict[int, ParticipantRound] = {}
            recorded_rounds = folder / "rounds"
            for round_path in sorted(recorded_rounds.iterdir()) if recorded_rounds.is_dir() else []:
                fit = self._fit(round_path, rounds, node)
                fits[fit.round_index] = fit
            if canary and not fits:
                took_part = [r.round_index for r in rounds if node in r.participants]
                why = (
                    f"no round lists node {node!r} among its participants" if not took_part
                    else f"it recorded no round, though rounds {took_part} list node {node!r}"
                )
                raise ConfigError(f"{self._name(path)}: canary: client {client_id} never took part ({why})")
            clients.append(Participant(client_id, node, canary, indices, fits))
        return clients

    def _indices(self, path: Path, data: Mapping[str, Any], key: str) -> Tensor:
        value = self._field(path, data, key, list)
        size = len(self.dataset)
        if not all(isinstance(i, int) and not isinstance(i, bool) and 0 <= i < size for i in value):
            raise ConfigError(
                f"{self._name(path)}: {key} must be indices into the task's dataset ({size} samples), got "
                f"{[i for i in value if not isinstance(i, int) or not 0 <= i < size][:3]!r}..."
            )
        return torch.tensor(value, dtype=torch.int64)

    def _fit(self, folder: Path, rounds: Sequence[ServerRound], node: str) -> ParticipantRound:
        path = folder / "round.json"
        data = self._json(path)
        round_index = self._field(path, data, "round", int)
        if folder.name != f"{round_index:04d}" or not 0 <= round_index < len(rounds):
            raise ConfigError(
                f"{self._name(path)}: round {round_index} is not a round of this recording "
                f"(recording.json: rounds is {len(rounds)}; the folder is {folder.name})"
            )
        server = rounds[round_index]
        if node not in server.participants and server.aborted is None:
            raise ConfigError(
                f"{self._name(path)}: this client (node {node!r}) trained and sent its update, but "
                f"rounds/{round_index:04d}/round.json: participants {server.participants} leave it out"
            )
        num_examples = self._field(path, data, "num_examples", int)
        if server.weights is not None and node in server.weights and server.weights[node] != num_examples:
            raise ConfigError(
                f"{self._name(path)}: num_examples is {num_examples} but rounds/{round_index:04d}/round.json: "
                f"weights gives node {node!r} {server.weights[node]:g}"
            )
        order = None if data.get("sample_order") is None else self._indices(path, data, "sample_order")
        participants = None if data.get("participants") is None else self._nodes(path, data, "participants")
        received = self._flat(folder / "received.pt")
        local = self._flat(folder / "local.pt")
        released = self._flat(folder / "released.pt") if (folder / "released.pt").is_file() else None
        told_weights: dict[str, float] | None = None
        if (folder / "released.json").is_file():  # what the server announced with the new model
            told_path = folder / "released.json"
            told = self._json(told_path)
            if told.get("participants") is not None:
                participants = sorted(set(participants or ()) | set(self._nodes(told_path, told, "participants")))
            if told.get("weights") is not None:
                value = told["weights"]
                if not isinstance(value, dict) or not all(
                    isinstance(w, (int, float)) and not isinstance(w, bool) for w in value.values()
                ):
                    raise ConfigError(f"{self._name(told_path)}: weights must map node names to numbers, got {value!r}")
                told_weights = {str(node): float(w) for node, w in value.items()}
                unknown = sorted(set(told_weights) - set(server.sampled))
                if unknown:
                    raise ConfigError(
                        f"{self._name(told_path)}: weights name node {unknown[0]!r}, which "
                        f"rounds/{round_index:04d}/round.json does not list as sampled"
                    )
        upload = server.uploads.get(node)
        if upload is not None and not torch.allclose(upload.params, local.params, rtol=1e-5, atol=1e-6):
            raise ConfigError(
                f"{self._name(folder / 'local.pt')}: differs from what the server received from node {node!r} "
                f"(rounds/{round_index:04d}/server/upload-{node}.pt)"
            )
        return ParticipantRound(round_index, num_examples, order, participants, received, local, released, told_weights)

    # -- the transcript -----------------------------------------------------------------

def _types(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


