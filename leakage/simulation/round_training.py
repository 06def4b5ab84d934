"""Local training of one round's sampled clients: their sample orders, batched into ``vmap`` calls.

Clients whose sample orders have the same length run the same local schedule, so they
train together in ``vmap`` calls (:func:`train_clients_vectorised`). An uneven partition
gives a round many lengths, and one call per length would cost mostly the call itself;
lengths shared by few clients are therefore padded to one shape per bucket of equal step
count, and the padding is weighted out of the loss (:func:`train_clients_masked`). Both
agree with the per-client loop to float rounding (about 1e-7 relative); padding changes
the rounding of the clients it pads, so it is used only where it pays: a bucket keeps
exact per-length calls when it holds at most two lengths (every iid partition) and for
every length shared by at least ``_EXACT_GROUP_CLIENTS`` clients. The grouping and the
chunking depend only on the round's sample counts, so a seed gives the same bits every run.

Nothing here loops over clients in Python: orders are drawn per group of equal sample
count, batches are gathered per group and step, and updates land in one ``[C, P]`` block.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
from torch import Tensor

from leakage.data import Dataset
from leakage.models import BufferLayout, ParameterLayout
from leakage.seeding import Stream, hashed_permutations
from leakage.simulation.local_training import (
    LossFunction,
    WeightedLossFunction,
    train_client,
    train_clients_masked,
    train_clients_vectorised,
)

__all__ = ["LocalTraining", "OrderGroup", "PartitionIndex", "cut_batches", "orders_by_client", "sample_orders"]

# Size of one [clients, P] block that a single vmap call produces: small blocks are
# recycled by the allocator, large ones cost fresh pages every call.
_CHUNK_BYTES = 16 << 20
# A vmap call costs about as much as this many clients' local steps, so a length held by
# fewer clients trains faster padded into its bucket than in a call of its own.
_EXACT_GROUP_CLIENTS = 16
# A bucket with this many lengths or fewer trains every length exactly (iid: two sizes).
_EXACT_LENGTHS = 2


@dataclass(frozen=True)
class PartitionIndex:
    """The partition arranged for per-round gathers: clients of equal sample count stacked.

    Attributes:
        sizes: ``[N]`` samples each client holds.
        stacks: per sample count, ``[clients holding that many, count]`` dataset indices.
        slots: ``[N]`` row of each client in its count's stack.
    """

    sizes: np.ndarray[Any, np.dtype[np.int64]]
    stacks: dict[int, Tensor]
    slots: np.ndarray[Any, np.dtype[np.int64]]

    @classmethod
    def of(cls, partition: Sequence[Tensor]) -> PartitionIndex:
        sizes = np.array([indices.shape[0] for indices in partition], dtype=np.int64)
        slots = np.zeros(len(partition), dtype=np.int64)
        stacks: dict[int, Tensor] = {}
        for count in np.unique(sizes).tolist():
            members = np.flatnonzero(sizes == count)
            slots[members] = np.arange(len(members))
            stacks[count] = torch.stack([partition[c] for c in members.tolist()]).reshape(len(members), count)
        return cls(sizes, stacks, slots)


@dataclass(frozen=True)
class OrderGroup:
    """Sampled clients whose round reads the same number of samples.

    Attributes:
        rows: ``[G]`` their rows in the round's client order, increasing.
        orders: ``[G, L]`` the dataset indices each trains on, in order of use, every
            epoch's order concatenated.
    """

    rows: Tensor
    orders: Tensor

    @property
    def length(self) -> int:
        """Samples each client of the group reads this round (``L``)."""
        return int(self.orders.shape[1])


def sample_orders(
    seed: int,
    round_index: int,
    client_ids: Sequence[int],
    index: PartitionIndex,
    *,
    epochs: int,
    samples_read: Callable[[int], int],
) -> list[OrderGroup]:
    """Return the round's sample orders, grouped by length, groups in order of first row.

    A client holding ``n`` samples shuffles them once per epoch and reads the first
    ``samples_read(n)`` of the concatenated shuffles (all of them for FedAvg, one batch
    for FedSGD). Each shuffle depends only on (seed, round, client, epoch).
    """
    ids = np.asarray(client_ids, dtype=np.int64)
    counts = index.sizes[ids]
    by_length: dict[int, list[tuple[Tensor, Tensor]]] = defaultdict(list)
    for count in np.unique(counts).tolist():
        found = np.flatnonzero(counts == count)
        members = ids[found]
        shuffles = [
            hashed_permutations(seed, (Stream.LOCAL_DATA, round_index, epoch), members, count)
            for epoch in range(epochs)
        ]
        read = samples_read(count)
        positions = torch.from_numpy(np.concatenate(shuffles, axis=1)[:, :read])
        local = index.stacks[count][torch.from_numpy(index.slots[members])]
        by_length[read].append((torch.from_numpy(found), torch.gather(local, 1, positions)))
    groups = []
    for parts in by_length.values():
        rows = torch.cat([r for r, _ in parts])
        order = torch.argsort(rows)
        groups.append(OrderGroup(rows[order], torch.cat([o for _, o in parts])[order]))
    return sorted(groups, key=lambda group: int(group.rows[0]))


def orders_by_client(
    groups: Sequence[OrderGroup], client_ids: Sequence[int], clients: Collection[int] | None = None
) -> dict[int, Tensor]:
    """Return the order ``[L]`` of every sampled client (or only of ``clients``), in row order."""
    found = [
        (row, order)
        for group in groups
        for row, order in zip(group.rows.tolist(), group.orders.unbind(0), strict=True)
        if clients is None or client_ids[row] in clients
    ]
    return {client_ids[row]: order for row, order in sorted(found, key=lambda item: item[0])}


@dataclass(frozen=True)
class LocalTraining:
    """How the sampled clients of a round train: the losses, the step rule and the batching.

    Attributes:
        loss: mean loss of a batch (:func:`make_loss`).
        weighted_loss: the same loss with per-sample weights, for padded batches.
        layout: the parameter layout of the flat vectors.
        lr: client learning rate.
        schedule: the local steps over a sample order of a given length (slices of it).
        vectorise: batch clients with ``vmap``; ``False`` trains one at a time.
        can_pad: whether padded samples leave the others' outputs alone (no batch
            normalisation), so that clients of different lengths may share a call.
        device: where the clients train (the losses' model must live there too); the
            dataset is copied there once, and the round's updates come back to the CPU.
        buffer_layout: the model's buffers (batch-norm running statistics), which each
            client's training moves; empty for a model without buffers.
        frozen: parameters that never move (``requires_grad=False`` in the user's model,
            e.g. a frozen backbone); they are still part of every update, as zeros.
    """

    loss: LossFunction
    weighted_loss: WeightedLossFunction
    layout: ParameterLayout
    lr: float
    schedule: Callable[[int], list[slice]]
    vectorise: bool
    can_pad: bool
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    buffer_layout: BufferLayout = field(default_factory=BufferLayout)
    frozen: frozenset[str] = frozenset()
    # local-parameter buffers reused by every vmap call of the simulation
    _workspace: dict[str, Tensor] = field(default_factory=dict, init=False, repr=False, compare=False)

    def run(
        self,
        params: Tensor,
        dataset: Dataset,
        groups: Sequence[OrderGroup],
        num_clients: int,
        *,
        buffers: Tensor | None = None,
        client_buffers: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Return ``(updates [C, P], first_losses [C])`` of the round, rows in client order, on the CPU.

        For a model with buffers, pass the global ``buffers`` (flat ``[B]``) and a
        ``client_buffers`` tensor ``[C, B]`` that receives each client's buffers after
        its local training.
        """
        if self.buffer_layout.num_entries and (buffers is None or client_buffers is None):
            raise ValueError("a model with buffers trains with buffers= and client_buffers= given")
        if self.device.type == "cuda":
            on_device = None if client_buffers is None else client_buffers.to(self.device)
            with _full_float32():
                updates, first_losses = self._run(
                    params.to(self.device), self._on_device(dataset), groups, num_clients,
                    None if buffers is None else buffers.to(self.device), on_device,
                )
            if client_buffers is not None and on_device is not None:
                client_buffers.copy_(on_device)
            return updates.cpu(), first_losses.cpu()
        return self._run(params, dataset, groups, num_clients, buffers, client_buffers)

    def _client_state(self, buffers: Tensor | None, clients: int) -> dict[str, Tensor] | None:
        """Each of ``clients`` clients' own copy of the global buffers, ``[clients, ...]`` per buffer."""
        if buffers is None or not self.buffer_layout.num_entries:
            return None
        return {
            name: value.unsqueeze(0).repeat(clients, *([1] * value.dim()))
            for name, value in self.buffer_layout.unflatten(buffers).items()
        }

    def _keep_state(self, client_buffers: Tensor | None, rows: Tensor | int, state: dict[str, Tensor] | None) -> None:
        """Write clients' buffers after training into their rows of ``client_buffers``."""
        if client_buffers is None or state is None:
            return
        names = self.buffer_layout.names
        flat = torch.cat([state[n].reshape(state[n].shape[0], -1).to(client_buffers.dtype) for n in names], dim=1)
        if isinstance(rows, int):
            client_buffers[rows] = flat[0]
        else:
            client_buffers.index_copy_(0, rows.to(client_buffers.device), flat)

    def _on_device(self, dataset: Dataset) -> Dataset:
        """``dataset`` with its inputs and targets on :attr:`device`, copied once per dataset."""
        kept = self._workspace.get("dataset.inputs")
        if kept is None or self._workspace.get("dataset.source") is not dataset.inputs:
            self._workspace["dataset.source"] = dataset.inputs
            self._workspace["dataset.inputs"] = dataset.inputs.to(self.device)
            self._workspace["dataset.targets"] = dataset.targets.to(self.device)
        return replace(dataset, inputs=self._workspace["dataset.inputs"], targets=self._workspace["dataset.targets"])

    def _run(
        self,
        params: Tensor,
        dataset: Dataset,
        groups: Sequence[OrderGroup],
        num_clients: int,
        buffers: Tensor | None = None,
        client_buffers: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        updates = torch.empty(num_clients, params.numel(), dtype=params.dtype, device=params.device)
        first_losses = torch.empty(num_clients, device=params.device)
        # Bound each vmap call's temporaries (per-client gradients, activations).
        chunk = max(1, _CHUNK_BYTES // max(1, params.numel() * params.element_size()))
        exact, padded = self._plan(groups)
        for group in exact:
            schedule = self.schedule(group.length)
            if group.rows.numel() == 1 or not self.vectorise:
                for row, order in zip(group.rows.tolist(), group.orders, strict=True):
                    state = self._client_state(buffers, 1)
                    own = None if state is None else {name: value[0] for name, value in state.items()}
                    update, first = train_client(
                        self.loss, self.layout, params, cut_batches(order, schedule, dataset), lr=self.lr,
                        buffers=own, frozen=self.frozen,
                    )
                    updates[row], first_losses[row] = update, first
                    self._keep_state(client_buffers, row, state)
                continue
            for start in range(0, group.rows.numel(), chunk):
                rows = group.rows[start : start + chunk]
                batches = cut_batches(group.orders[start : start + chunk], schedule, dataset)
                out = _consecutive(updates, rows)
                state = self._client_state(buffers, rows.numel())
                delta, first = train_clients_vectorised(
                    self.loss, self.layout, params, batches, lr=self.lr, out=out, workspace=self._workspace,
                    buffers=state, frozen=self.frozen,
                )
                _store(updates, first_losses, rows, delta if out is None else None, first)
                self._keep_state(client_buffers, rows, state)
        for bucket in padded:
            rows, lengths, orders = _merge(bucket)
            for start in range(0, rows.numel(), chunk):
                part = slice(start, start + chunk)
                padded_batches = _padded_batches(orders[part], lengths[part], self.schedule, dataset)
                out = _consecutive(updates, rows[part])
                delta, first = train_clients_masked(
                    self.weighted_loss, self.layout, params, padded_batches, lr=self.lr, out=out,
                    workspace=self._workspace, frozen=self.frozen,
                )
                _store(updates, first_losses, rows[part], delta if out is None else None, first)
        return updates, first_losses

    def _plan(self, groups: Sequence[OrderGroup]) -> tuple[list[OrderGroup], list[list[OrderGroup]]]:
        """Split the groups into those trained exactly and buckets of groups padded together."""
        if not (self.vectorise and self.can_pad) or self.buffer_layout.num_entries:
            return list(groups), []
        buckets: dict[tuple[int, int], list[OrderGroup]] = defaultdict(list)
        for group in groups:
            buckets[self._bucket(group.length)].append(group)
        exact: list[OrderGroup] = []
        padded: list[list[OrderGroup]] = []
        for members in buckets.values():
            if len(members) <= _EXACT_LENGTHS:
                exact += members
                continue
            exact += [g for g in members if g.rows.numel() >= _EXACT_GROUP_CLIENTS]
            small = [g for g in members if g.rows.numel() < _EXACT_GROUP_CLIENTS]
            if len(small) > 1:  # one length alone needs no padding
                padded.append(small)
            else:
                exact += small
        return exact, padded

    def _bucket(self, length: int) -> tuple[int, int]:
        """Lengths that may be padded to one shape: equal step counts, first steps within 2x."""
        schedule = self.schedule(length)
        first = schedule[0].stop - schedule[0].start
        return len(schedule), (first - 1).bit_length()



@contextmanager
def _full_float32() -> Iterator[None]:
    """Convolutions and matrix products in full float32, not TF32 (cuDNN's default for convolutions).

    TF32 keeps 10 mantissa bits: one FedSGD step of ``resnet18`` with batch norm on four
    samples then differs from the CPU's by 17% of its norm (cosine 0.985), measured on an
    H200; in full float32 the two agree to 1e-4. Updates are what attacks read, so they are
    computed at the precision they claim.
    """
    matmul = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        with torch.backends.cudnn.flags(
            enabled=torch.backends.cudnn.enabled,
            benchmark=torch.backends.cudnn.benchmark,
            deterministic=torch.backends.cudnn.deterministic,
            allow_tf32=False,
        ):
            yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = matmul


def _consecutive(updates: Tensor, rows: Tensor) -> Tensor | None:
    """The block of ``updates`` holding ``rows`` when they are consecutive (written in place), else ``None``."""
    low, high = int(rows[0]), int(rows[-1])
    return updates[low : high + 1] if high - low == rows.numel() - 1 else None


def _store(updates: Tensor, first_losses: Tensor, rows: Tensor, delta: Tensor | None, first: Tensor) -> None:
    """Put ``rows``' first losses, and their updates unless they were written in place, into the round's tensors."""
    rows = rows.to(updates.device)
    if delta is not None:
        updates.index_copy_(0, rows, delta)
    first_losses.index_copy_(0, rows, first.to(first_losses.dtype))


def cut_batches(order: Tensor, schedule: Sequence[slice], dataset: Dataset) -> list[tuple[Tensor, Tensor]]:
    """Cut index ``order`` (``[T]`` or ``[C, T]``, every epoch's order concatenated) into the steps' batches.

    ``schedule`` slices each epoch's order and its steps cover the epochs one after the
    other, so the batches are consecutive runs of ``order`` of the slices' lengths.
    """
    batches = []
    start = 0
    for step in schedule:
        stop = start + step.stop - step.start
        indices = order[..., start:stop].to(dataset.inputs.device)
        batches.append((dataset.inputs[indices], dataset.targets[indices]))
        start = stop
    return batches


def _merge(bucket: Sequence[OrderGroup]) -> tuple[Tensor, Tensor, Tensor]:
    """Return ``(rows [G], lengths [G], orders [G, L_max])`` of a bucket, rows increasing (orders zero-padded)."""
    rows = torch.cat([g.rows for g in bucket])
    lengths = torch.cat([torch.full((g.rows.numel(),), g.length) for g in bucket])
    orders = torch.zeros(rows.numel(), max(g.length for g in bucket), dtype=bucket[0].orders.dtype)
    start = 0
    for group in bucket:
        orders[start : start + group.rows.numel(), : group.length] = group.orders
        start += group.rows.numel()
    order = torch.argsort(rows)
    return rows[order], lengths[order], orders[order]


def _padded_batches(
    orders: Tensor, lengths: Tensor, schedule: Callable[[int], list[slice]], dataset: Dataset
) -> list[tuple[Tensor, Tensor, Tensor]]:
    """Cut orders of different ``lengths`` (same step count) into padded batches with sample weights.

    Step ``k`` of a client reads ``c_k`` samples from offset ``o_k`` of its order; the
    padded batch has the step's largest ``c_k`` columns, repeats the client's last sample
    of the step into the padding and weighs its real samples ``1 / c_k``, the padding 0.
    """
    distinct, which = torch.unique(lengths, return_inverse=True)
    # [lengths, steps]: sizes and offsets of every step, per distinct length
    sizes = torch.tensor([[s.stop - s.start for s in schedule(int(n))] for n in distinct.tolist()])
    offsets = torch.cumsum(sizes, dim=1) - sizes
    sizes, offsets = sizes[which], offsets[which]
    batches = []
    for step in range(sizes.shape[1]):
        count = sizes[:, step : step + 1]
        columns = torch.arange(int(count.max()))
        positions = offsets[:, step : step + 1] + torch.minimum(columns, count - 1)
        indices = torch.gather(orders, 1, positions)
        weights = (columns < count).to(dataset.inputs.dtype) / count.to(dataset.inputs.dtype)
        indices, weights = indices.to(dataset.inputs.device), weights.to(dataset.inputs.device)
        batches.append((dataset.inputs[indices], dataset.targets[indices], weights))
    return batches
