"""The federated-learning simulator: runs rounds under a scheme and records a transcript."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from leakage.aggregation import (
    AggregationScheme,
    Deployment,
    RoundContext,
    create_scheme,
)
from leakage.checks import require_choice
from leakage.data import Dataset, load_dataset, partition_dataset
from leakage.errors import ConfigError, NonFiniteUpdateError
from leakage.models import ParameterLayout, create_model, flatten_parameters
from leakage.seeding import Stream, hashed_permutations, numpy_rng, torch_generator
from leakage.simulation.batches import batch_schedule
from leakage.simulation.local_training import (
    LossFunction,
    make_loss,
    train_client,
    train_clients_vectorised,
)
from leakage.simulation.settings import SimulationSettings
from leakage.transcript import GroundTruth, RoundRecord, RoundTruth, Transcript

__all__ = ["Simulator", "simulate"]

logger = logging.getLogger(__name__)

# Size of one [clients, P] block that a single vmap call produces.
_CHUNK_BYTES = 16 << 20


class Simulator:
    """Runs one FL deployment described by ``settings`` and returns its transcript.

    Args:
        settings: the deployment.
        dataset: an already loaded dataset to use instead of ``settings.dataset``.
        scheme: a configured scheme to use instead of ``settings.scheme``.
    """

    def __init__(
        self,
        settings: SimulationSettings,
        *,
        dataset: Dataset | None = None,
        scheme: AggregationScheme | None = None,
    ) -> None:
        self.settings = settings
        self._dataset = dataset
        self._scheme = scheme

    def run(self, *, show_progress: bool = False) -> Transcript:
        """Simulate every round; same settings and seed give the same transcript, bit for bit."""
        settings = self.settings
        dataset = self._dataset or load_dataset(settings.dataset, **settings.dataset_options)
        scheme = self._scheme or create_scheme(settings.scheme, **settings.scheme_options)
        partition = self._partition(dataset)
        model = create_model(
            settings.model,
            input_shape=dataset.input_shape,
            num_classes=dataset.num_classes,
            generator=torch_generator(settings.seed, Stream.MODEL_INIT),
            **settings.model_options,
        )
        layout = ParameterLayout.of(model)
        scheme.prepare(self._deployment(partition, layout.num_parameters, dataset.num_classes))
        if self.settings.loss == "taylor_logistic" and dataset.num_classes != 2:
            raise ConfigError(
                f"loss 'taylor_logistic' needs a two-class dataset; {dataset.name!r} has {dataset.num_classes} classes"
            )
        loss = make_loss(model, self.settings.loss)
        initial_params = flatten_parameters(model)
        params = initial_params
        records: list[RoundRecord] = []
        truths: list[RoundTruth] = []
        for round_index in tqdm(range(settings.rounds), desc="rounds", disable=not show_progress):
            record, truth = self._run_round(round_index, params, dataset, partition, loss, layout, scheme)
            records.append(record)
            truths.append(truth)
            params = record.params_after
        resolved = settings.to_dict()
        resolved.update(
            dataset=dataset.name,
            scheme=scheme.name,
            input_shape=list(dataset.input_shape),
            num_classes=dataset.num_classes,
            num_parameters=layout.num_parameters,
        )
        return Transcript(
            settings=resolved,
            layout=layout,
            initial_params=initial_params,
            rounds=tuple(records),
            truth=GroundTruth(
                partition=tuple(partition),
                rounds=tuple(truths),
                properties=dict(dataset.properties),
            ),
        )

    def _deployment(self, partition: Sequence[Tensor], num_parameters: int, num_classes: int) -> Deployment:
        settings = self.settings
        sizes = [len(indices) for indices in partition]
        if settings.algorithm == "fedsgd":  # a FedSGD update weighs the batch it was computed on
            sizes = [self._samples_read(size) for size in sizes]
        return Deployment(
            n_clients=settings.n_clients,
            clients_per_round=settings.sampled_per_round,
            client_sampling=settings.client_sampling,
            rounds=settings.rounds,
            num_parameters=num_parameters,
            client_weights=tuple(float(size) for size in sizes),
            model=settings.model,
            num_classes=num_classes,
            loss=settings.loss,
            algorithm=settings.algorithm,
        )

    def _partition(self, dataset: Dataset) -> list[Tensor]:
        settings = self.settings
        options = dict(settings.partition_options)
        if "property" in options:  # a property is named in configs, passed as flags
            name = options.pop("property")
            field_name = f"partition_options.property for dataset {dataset.name!r}"
            name = require_choice(field_name, name, sorted(dataset.properties))
            options["has_property"] = dataset.properties[name]
        return partition_dataset(
            settings.partition,
            dataset.targets,
            settings.n_clients,
            rng=numpy_rng(settings.seed, Stream.PARTITION),
            **options,
        )

    def _sample_clients(self, round_index: int) -> tuple[tuple[int, ...], frozenset[int]]:
        settings = self.settings
        if settings.clients_per_round is None:
            sampled = np.arange(settings.n_clients)
        elif settings.client_sampling == "poisson":
            rate = settings.clients_per_round / settings.n_clients
            draws = numpy_rng(settings.seed, Stream.SAMPLING, round_index).random(settings.n_clients)
            sampled = np.flatnonzero(draws < rate)
        else:
            rng = numpy_rng(settings.seed, Stream.SAMPLING, round_index)
            sampled = np.sort(rng.choice(settings.n_clients, settings.clients_per_round, replace=False))
        drops = numpy_rng(settings.seed, Stream.DROPOUT, round_index).random(len(sampled))
        dropped = frozenset(int(c) for c, u in zip(sampled, drops, strict=True) if u < settings.dropout)
        return tuple(int(c) for c in sampled), dropped

    def _sample_orders(
        self, round_index: int, client_ids: tuple[int, ...], partition: Sequence[Tensor]
    ) -> dict[int, Tensor]:
        """Per client, the dataset indices it trains on this round, in order of use.

        FedSGD takes a random batch of ``batch_size`` of the client's samples (all of
        them if it holds fewer); FedAvg concatenates one fresh shuffle per local epoch.
        Each client's shuffles depend only on (seed, round, client, epoch).
        """
        settings = self.settings
        by_size: dict[int, list[int]] = defaultdict(list)
        for client in client_ids:
            by_size[len(partition[client])].append(client)
        orders: dict[int, Tensor] = {}
        epochs = 1 if settings.algorithm == "fedsgd" else settings.local_epochs
        for count, clients in by_size.items():
            ids = np.asarray(clients)
            shuffles = [
                hashed_permutations(settings.seed, (Stream.LOCAL_DATA, round_index, epoch), ids, count)
                for epoch in range(epochs)
            ]
            positions = torch.from_numpy(np.concatenate(shuffles, axis=1))
            positions = positions[:, : self._samples_read(count)]  # FedSGD reads one batch of the shuffle
            local = torch.stack([partition[c] for c in clients])
            chosen = torch.gather(local, 1, positions)
            orders.update(zip(clients, chosen.unbind(0), strict=True))
        return orders

    def _schedule(self, num_samples: int) -> list[slice]:
        """The local steps of a client holding ``num_samples`` samples (see :func:`batch_schedule`)."""
        settings = self.settings
        return batch_schedule(
            num_samples,
            batch_size=settings.batch_size,
            local_epochs=settings.local_epochs,
            algorithm=settings.algorithm,
        )

    def _samples_read(self, num_samples: int) -> int:
        """How many samples, epochs concatenated, a client holding ``num_samples`` reads in a round."""
        return sum(step.stop - step.start for step in self._schedule(num_samples))

    def _order_schedule(self, order_length: int) -> list[slice]:
        """The local steps over a round's sample order of ``order_length`` (every epoch's order, concatenated)."""
        # FedAvg reads all samples every epoch; FedSGD's order is its one batch.
        epochs = self.settings.local_epochs if self.settings.algorithm == "fedavg" else 1
        return self._schedule(order_length // epochs)

    def _run_round(
        self,
        round_index: int,
        params: Tensor,
        dataset: Dataset,
        partition: Sequence[Tensor],
        loss: LossFunction,
        layout: ParameterLayout,
        scheme: AggregationScheme,
    ) -> tuple[RoundRecord, RoundTruth]:
        settings = self.settings
        client_ids, dropped = self._sample_clients(round_index)
        orders = self._sample_orders(round_index, client_ids, partition)
        updates, first_losses = self._train(loss, layout, params, dataset, client_ids, orders)
        # One reduction instead of an elementwise mask: NaN and Inf propagate into sums.
        row_sums = updates.sum(dim=1)
        if not bool(torch.isfinite(row_sums).all()):
            finite = torch.isfinite(updates).all(dim=1)
            client = client_ids[int((~finite).nonzero()[0, 0])] if not finite.all() else None
            if client is not None:
                raise NonFiniteUpdateError(
                    f"round {round_index}: update of client {client} contains NaN or Inf "
                    f"(lr={settings.lr} may be too large)"
                )
        counted = partition if settings.algorithm == "fedavg" else orders
        weights = torch.tensor([counted[c].shape[0] for c in client_ids], dtype=torch.float64)
        public: dict[str, Any] = {
            "algorithm": settings.algorithm,
            "lr": settings.lr,
            "local_epochs": settings.local_epochs,
            "batch_size": settings.batch_size,
            "server_lr": settings.server_lr,
            "weighting": scheme.weighting(),
            "loss": settings.loss,
        }
        public.update(scheme.public_parameters())
        context = RoundContext(
            round_index=round_index,
            is_final_round=round_index == settings.rounds - 1,
            params_before=params,
            client_ids=client_ids,
            updates=updates,
            weights=weights,
            dropped=dropped,
            server_lr=settings.server_lr,
            public=public,
            client_data={c: partition[c] for c in client_ids},
            generator=torch_generator(settings.seed, Stream.SCHEME, round_index),
            client_batches=(
                {c: _cut(orders[c], self._order_schedule(len(orders[c])), dataset) for c in client_ids}
                if scheme.needs_client_batches
                else {}
            ),
        )
        outcome = scheme.run_round(context)
        survivors = outcome.survivors
        arrived_losses = first_losses[[context.row(c) for c in survivors]]
        metrics = {"train_loss": float(arrived_losses.mean()) if survivors else float("nan")}
        metrics.update(outcome.metrics)
        round_public = {**public, **outcome.public}
        if outcome.aborted is not None:
            logger.warning("round %d aborted, model unchanged: %s", round_index, outcome.aborted)
            round_public["aborted"] = outcome.aborted
        record = RoundRecord(
            round_index=round_index,
            params_before=params,
            params_after=outcome.params_after,
            sampled=client_ids,
            survivors=survivors,
            scheme=scheme.name,
            public=round_public,
            views=outcome.views,
            metrics=metrics,
        )
        truth = RoundTruth(
            round_index=round_index,
            client_ids=client_ids,
            updates=updates,
            weights=weights,
            sample_order=orders,
        )
        return record, truth

    def _train(
        self,
        loss: LossFunction,
        layout: ParameterLayout,
        params: Tensor,
        dataset: Dataset,
        client_ids: tuple[int, ...],
        orders: Mapping[int, Tensor],
    ) -> tuple[Tensor, Tensor]:
        """Return ``(updates [C, P], first_losses [C])`` in the order of ``client_ids``."""
        groups: dict[int, list[int]] = defaultdict(list)
        for row, client in enumerate(client_ids):
            groups[len(orders[client])].append(row)
        # Bound each vmap call's temporaries (per-client gradients, activations): small
        # blocks are recycled by the allocator, large ones cost fresh pages every call.
        chunk = max(1, _CHUNK_BYTES // (params.numel() * params.element_size()))
        updates = torch.empty(len(client_ids), params.numel(), dtype=params.dtype)
        first_losses = torch.empty(len(client_ids))
        for order_length, rows in groups.items():
            schedule = self._order_schedule(order_length)
            if self.settings.vectorise and len(rows) > 1:
                for start in range(0, len(rows), chunk):
                    part = rows[start : start + chunk]
                    stacked = torch.stack([orders[client_ids[r]] for r in part])
                    batches = _cut(stacked, schedule, dataset)
                    if part[-1] - part[0] == len(part) - 1:  # consecutive rows: write in place
                        _, first = train_clients_vectorised(
                            loss, layout, params, batches, lr=self.settings.lr,
                            out=updates[part[0] : part[-1] + 1],
                        )
                    else:
                        delta, first = train_clients_vectorised(loss, layout, params, batches, lr=self.settings.lr)
                        updates[torch.tensor(part)] = delta
                    first_losses[torch.tensor(part)] = first
            else:
                for row in rows:
                    order = orders[client_ids[row]]
                    batches = _cut(order, schedule, dataset)
                    delta, first = train_client(loss, layout, params, batches, lr=self.settings.lr)
                    updates[row] = delta
                    first_losses[row] = first
        return updates, first_losses


def _cut(order: Tensor, schedule: Sequence[slice], dataset: Dataset) -> list[tuple[Tensor, Tensor]]:
    """Cut index ``order`` (``[T]`` or ``[C, T]``, every epoch's order concatenated) into the steps' batches.

    ``schedule`` slices each epoch's order and its steps cover the epochs one after the
    other, so the batches are consecutive runs of ``order`` of the slices' lengths.
    """
    batches = []
    start = 0
    for step in schedule:
        stop = start + step.stop - step.start
        indices = order[..., start:stop]
        batches.append((dataset.inputs[indices], dataset.targets[indices]))
        start = stop
    return batches


def simulate(
    *,
    dataset: str | Dataset = "digits",
    scheme: str | Sequence[str] | AggregationScheme = "plain",
    show_progress: bool = False,
    **settings: Any,
) -> Transcript:
    """Simulate federated training and return what every observer saw in every round.

    Args:
        dataset: a registered dataset name or an already loaded :class:`Dataset`.
        scheme: a registered scheme name, a composition (a list of names, mechanisms
            first), or a configured :class:`AggregationScheme`.
        show_progress: show a progress bar over rounds.
        settings: any other :class:`SimulationSettings` field (``model``, ``n_clients``,
            ``clients_per_round``, ``rounds``, ``algorithm``, ``lr``, ``seed``...).

    Raises:
        ConfigError: a setting is invalid (the message names it).
        UnknownNameError: a dataset, model, scheme or partition name is not registered.
        NonFiniteUpdateError: a client's update contains NaN or Inf.

    >>> t = simulate(n_clients=4, rounds=2, seed=0)
    >>> sorted(t.rounds[1].views)[:3]
    ['client:0', 'client:1', 'client:2']
    """
    unknown = sorted(set(settings) - set(SimulationSettings.__dataclass_fields__))
    if unknown:
        raise ConfigError(
            f"unknown setting {unknown[0]!r}; choose from "
            f"{', '.join(sorted(SimulationSettings.__dataclass_fields__))}"
        )
    dataset_object = dataset if isinstance(dataset, Dataset) else None
    scheme_object = scheme if isinstance(scheme, AggregationScheme) else None
    resolved = SimulationSettings(
        dataset=dataset.name if isinstance(dataset, Dataset) else dataset,
        scheme=(
            scheme.name
            if isinstance(scheme, AggregationScheme)
            else scheme if isinstance(scheme, str) else tuple(scheme)
        ),
        **settings,
    )
    return Simulator(resolved, dataset=dataset_object, scheme=scheme_object).run(
        show_progress=show_progress
    )
