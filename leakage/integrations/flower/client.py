"""Record one participant's side of a Flower run with a client mod.

:class:`RecordingMod` goes into the ``ClientApp``'s ``mods=[...]``, after
``secaggplus_mod`` when SecAgg+ runs, so that it sees the plain fit message and the
plain reply in both workflows (``secaggplus_mod`` answers the other SecAgg+ stages itself
and hands only the stage that trains down the chain). Where each fact comes from:

- the round: the message's ``group_id``, which Flower's default and SecAgg+ workflows
  set to the server round (1-based);
- the received model: the fit message's ``FitIns.parameters``;
- the local model and ``num_examples``: the fit reply's ``FitRes``, before
  ``secaggplus_mod`` masks it;
- the released model: the evaluate message's ``EvaluateIns.parameters`` of the same
  round (clients get the new model only to evaluate it, so evaluation must be on);
- the participants and ``sampled_count`` (SecAgg+ only): the state ``secaggplus_mod``
  keeps in ``context.state.config_records["secaggplus_state"]``: the nodes whose public
  keys it was sent (``public_keys_dict:K``, itself included) and ``sample_num``. Under
  the plain workflow a client is told neither, and both are recorded as unknown;
- the sample order: whatever the training code passed to :func:`record_sample_order`
  during ``fit`` (kept in the node's local state, never sent); without it, the format
  reads "its data indices, in order".

The client id is ``context.node_config["partition-id"]`` (set by Flower's simulation
engine, or by ``flower-supernode --node-config``), the node name ``str(context.node_id)``.
The received and released models are cast to the shapes and dtypes of the client's own
local model of the round (Flower's SecAgg+ returns the global model as float64, and 0-d
tensors travel as 1-d), unless ``like`` is given.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import torch
from flwr.app import ConfigRecord, Context, Message
from flwr.app.message_type import MessageType
from flwr.clientapp.typing import ClientAppCallable
from flwr.common import parameters_to_ndarrays
from flwr.common.secure_aggregation.secaggplus_constants import RECORD_KEY_STATE
from flwr.compat.common import recorddict_compat as compat
from torch import Tensor

from leakage.errors import ConfigError
from leakage.integrations.flower.arrays import ndarrays_to_state_dict
from leakage.integrations.flower.strategy import ANNOUNCE_KEY
from leakage.recording import ClientRecorder, StateDict, client_folder

__all__ = ["RecordedClient", "RecordingMod", "record_sample_order"]

# The node-local record that carries the sample order from fit() to the mod.
_ORDER_RECORD = "leakage.sample_order"
_PARTITION_ID = "partition-id"


def record_sample_order(context: Context, order: Sequence[int] | Tensor) -> None:
    """Tell :class:`RecordingMod` the dataset indices this ``fit`` trained on, in the order used.

    Call it from the client's ``fit`` with the ``Context`` its ``client_fn`` received;
    consecutive chunks of the batch size form the batches, every epoch's order follows
    the previous one. The order stays in the node's local state and is never sent.

    >>> from flwr.app import RecordDict
    >>> context = Context(run_id=1, node_id=7, node_config={"partition-id": 0}, state=RecordDict(), run_config={})
    >>> record_sample_order(context, torch.tensor([4, 2]))
    >>> context.state.config_records[_ORDER_RECORD]["indices"]
    [4, 2]
    """
    indices = order.tolist() if isinstance(order, Tensor) else list(order)
    context.state.config_records[_ORDER_RECORD] = ConfigRecord({"indices": [int(i) for i in indices]})


@dataclass(frozen=True)
class RecordedClient:
    """One client whose view is recorded: the dataset indices it holds, and whether it is a canary.

    Attributes:
        data_indices: indices into the task's dataset of the samples the client holds.
        canary: whether the auditor controls its data (scores use it as ground truth).
    """

    data_indices: Sequence[int]
    canary: bool = False

    def __post_init__(self) -> None:
        indices = self.data_indices
        values = indices.tolist() if isinstance(indices, Tensor) else list(indices)
        object.__setattr__(self, "data_indices", tuple(int(i) for i in values))


class RecordingMod:
    """A Flower client mod that records the views of the clients in ``clients``; others pass through.

    Args:
        folder: the recording's folder (the server's :class:`RecordingStrategy` writes
            its manifest).
        keys: the ``state_dict`` keys the model's arrays follow, in order.
        clients: per client id (``partition-id``), its data and canary flag.
        like: a ``state_dict`` whose shapes and dtypes the recorded models take;
            ``None``: those of the client's local model.

    >>> mod = RecordingMod("run", keys=["w"], clients={0: RecordedClient([3, 5], canary=True)})
    >>> mod.clients[0]
    RecordedClient(data_indices=(3, 5), canary=True)
    """

    def __init__(
        self,
        folder: str | os.PathLike[str],
        *,
        keys: Sequence[str],
        clients: Mapping[int, RecordedClient],
        like: StateDict | None = None,
    ) -> None:
        # Absolute: the mod runs in the simulation engine's worker processes.
        self.folder = Path(folder).absolute()
        self.keys = tuple(str(key) for key in keys)
        self.clients = dict(clients)
        self.like = like
        for client_id, client in self.clients.items():
            if not isinstance(client, RecordedClient):
                raise ConfigError(f"clients[{client_id}] must be a RecordedClient, got {type(client).__name__}")

    def __call__(self, message: Message, context: Context, call_next: ClientAppCallable) -> Message:
        """Pass ``message`` on; record the fit or the release if this client is recorded."""
        client_id = _client_id(context)
        if client_id not in self.clients:
            return call_next(message, context)
        if message.metadata.message_type == MessageType.TRAIN:
            return self._fit(client_id, message, context, call_next)
        if message.metadata.message_type == MessageType.EVALUATE:
            self._release(client_id, message, context)
        return call_next(message, context)

    def _fit(self, client_id: int, message: Message, context: Context, call_next: ClientAppCallable) -> Message:
        if "fitins.parameters" not in message.content.array_records:
            raise ConfigError(
                "RecordingMod got a train message without a model: under SecAgg+ it must come after "
                "secaggplus_mod in the ClientApp's mods=[...]"
            )
        round_index = _round_index(message)
        received = parameters_to_ndarrays(compat.recorddict_to_fitins(message.content, keep_input=True).parameters)
        context.state.config_records.pop(_ORDER_RECORD, None)
        reply = call_next(message, context)
        if reply.has_error():
            return reply
        fitres = compat.recorddict_to_fitres(reply.content, keep_input=True)
        local = ndarrays_to_state_dict(parameters_to_ndarrays(fitres.parameters), self.keys, like=self.like)
        order = context.state.config_records.pop(_ORDER_RECORD, None)
        participants, sampled_count = _secaggplus_view(context)
        self._recorder(client_id, context).record_fit(
            round_index,
            received=ndarrays_to_state_dict(received, self.keys, like=local if self.like is None else self.like),
            local=local,
            num_examples=fitres.num_examples,
            sample_order=None if order is None else cast(list[int], order["indices"]),
            participants=participants,
            sampled_count=sampled_count,
        )
        return reply

    def _release(self, client_id: int, message: Message, context: Context) -> None:
        round_index = _round_index(message)
        folder = client_folder(self.folder, client_id) / "rounds" / f"{round_index:04d}"
        if not (folder / "round.json").is_file():
            return  # it did not train this round: the format keeps the releases of its own rounds
        like = torch.load(folder / "local.pt", weights_only=True) if self.like is None else self.like
        released = parameters_to_ndarrays(compat.recorddict_to_evaluateins(message.content, keep_input=True).parameters)
        evaluate_ins = compat.recorddict_to_evaluateins(message.content, keep_input=True)
        announced = evaluate_ins.config.get(ANNOUNCE_KEY)
        told = json.loads(announced) if isinstance(announced, str) else {}
        self._recorder(client_id, context).record_release(
            round_index, ndarrays_to_state_dict(released, self.keys, like=like),
            participants=told.get("participants"), weights=told.get("weights"),
        )

    def _recorder(self, client_id: int, context: Context) -> ClientRecorder:
        client = self.clients[client_id]
        return ClientRecorder(
            self.folder, client_id=client_id, data_indices=client.data_indices, node=context.node_id,
            canary=client.canary,
        )


def _client_id(context: Context) -> int:
    value = context.node_config.get(_PARTITION_ID)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(
            f"the node's node_config must give its client id as an integer {_PARTITION_ID!r}, got {value!r} "
            f"(Flower's simulation engine sets it; a SuperNode takes --node-config '{_PARTITION_ID}=0')"
        )
    return value


def _round_index(message: Message) -> int:
    group = message.metadata.group_id
    if not group.isdigit() or int(group) < 1:
        raise ConfigError(f"the message's group_id should be the server round (1, 2, ...), got {group!r}")
    return int(group) - 1


def _secaggplus_view(context: Context) -> tuple[list[str] | None, int | None]:
    """Return (participants, sampled_count) as ``secaggplus_mod`` told this node, or (None, None)."""
    state = context.state.config_records.get(RECORD_KEY_STATE)
    if state is None:
        return None, None
    # public_keys_dict maps node id -> (pk1, pk2) and is stored as two lists, ":K" and ":V".
    nodes = cast(list[int], state.get("public_keys_dict:K", []))
    return [str(node) for node in sorted(nodes)], int(cast(int, state["sample_num"]))
