"""The federated-learning simulator: runs rounds under a scheme and records a transcript."""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
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
from leakage.models import (
    BufferLayout,
    ParameterLayout,
    build_user_model,
    create_model,
    flatten_buffers,
    flatten_parameters,
    load_checkpoint,
    model_label,
)
from leakage.seeding import Stream, numpy_rng, torch_generator
from leakage.simulation.batches import batch_schedule
from leakage.simulation.buffers import aggregate_buffers, views_with_buffers
from leakage.simulation.local_training import make_loss, make_weighted_loss, mixes_samples
from leakage.simulation.round_training import (
    LocalTraining,
    OrderGroup,
    PartitionIndex,
    cut_batches,
    orders_by_client,
    sample_orders,
)
from leakage.simulation.settings import SimulationSettings
from leakage.transcript import GroundTruth, RoundRecord, RoundTruth, Transcript

__all__ = ["Simulator", "scheme_deployment", "simulate"]

logger = logging.getLogger(__name__)


class Simulator:
    """Runs one FL deployment described by ``settings`` and returns its transcript.

    Args:
        settings: the deployment.
        dataset: an already loaded dataset to use instead of ``settings.dataset``.
        scheme: a configured scheme to use instead of ``settings.scheme``.
        model: the user's model instead of ``settings.model``: an ``nn.Module`` (copied;
            its weights and buffers are the starting point) or a callable taking
            ``input_shape``, ``num_classes`` and the model options.
    """

    def __init__(
        self,
        settings: SimulationSettings,
        *,
        dataset: Dataset | None = None,
        scheme: AggregationScheme | None = None,
        model: nn.Module | Callable[..., nn.Module] | None = None,
    ) -> None:
        self.settings = settings
        self._dataset = dataset
        self._scheme = scheme
        self._model = model

    def build_model(self, dataset: Dataset) -> nn.Module:
        """The starting global model: built (a user's keeps its own initialisation), then the checkpoint loaded."""
        settings = self.settings
        generator = torch_generator(settings.seed, Stream.MODEL_INIT)
        shape, classes = dataset.input_shape, dataset.num_classes
        if self._model is not None:
            model = build_user_model(
                self._model, input_shape=shape, num_classes=classes, generator=generator,
                options=settings.model_options,
            )
        else:
            model = create_model(
                settings.model, input_shape=shape, num_classes=classes, generator=generator, **settings.model_options
            )
        if settings.checkpoint is not None:
            load_checkpoint(model, settings.checkpoint)
        _check_float_parameters(model)
        return model.train()  # clients train in training mode (batch statistics, moving buffers)

    def run(self, *, show_progress: bool = False) -> Transcript:
        """Simulate every round; same settings and seed give the same transcript, bit for bit."""
        settings = self.settings
        dataset = self._dataset or load_dataset(settings.dataset, **settings.dataset_options)
        scheme = self._scheme or create_scheme(settings.scheme, **settings.scheme_options)
        partition = self._partition(dataset)
        model = self.build_model(dataset)
        layout = ParameterLayout.of(model)
        buffer_layout = BufferLayout.of(model)
        index = PartitionIndex.of(partition)
        scheme.prepare(self._deployment(index, layout.num_parameters, dataset.num_classes))
        if self.settings.loss == "taylor_logistic" and dataset.num_classes != 2:
            raise ConfigError(
                f"loss 'taylor_logistic' needs a two-class dataset; {dataset.name!r} has {dataset.num_classes} classes"
            )
        device = torch.device(settings.device)
        trained = model if device.type == "cpu" else copy.deepcopy(model).to(device)
        training = LocalTraining(
            loss=make_loss(trained, settings.loss),
            weighted_loss=make_weighted_loss(trained, settings.loss),
            layout=layout,
            lr=settings.lr,
            schedule=self._order_schedule,
            vectorise=settings.vectorise,
            can_pad=not mixes_samples(model),
            device=device,
            buffer_layout=buffer_layout,
            frozen=frozenset(name for name, value in model.named_parameters() if not value.requires_grad),
        )
        initial_params = flatten_parameters(model)
        initial_buffers = flatten_buffers(model)
        params, buffers = initial_params, initial_buffers
        records: list[RoundRecord] = []
        truths: list[RoundTruth] = []
        for round_index in tqdm(range(settings.rounds), desc="rounds", disable=not show_progress):
            record, truth = self._run_round(round_index, params, buffers, dataset, partition, index, training, scheme)
            records.append(record)
            truths.append(truth)
            params, buffers = record.params_after, record.buffers_after
        resolved = settings.to_dict()
        resolved.update(
            dataset=dataset.name,
            scheme=scheme.name,
            input_shape=list(dataset.input_shape),
            num_classes=dataset.num_classes,
            num_parameters=layout.num_parameters,
            num_buffer_entries=buffer_layout.num_entries,
            normalisation={"mean": dataset.mean.flatten().tolist(), "std": dataset.std.flatten().tolist()},
        )
        return Transcript(
            settings=resolved,
            layout=layout,
            initial_params=initial_params,
            buffer_layout=buffer_layout,
            initial_buffers=initial_buffers,
            architecture=model if self._model is not None else None,
            rounds=tuple(records),
            truth=GroundTruth(
                partition=tuple(partition),
                rounds=tuple(truths),
                properties=dict(dataset.properties),
                record_truth=settings.record_truth,
            ),
        )

    def _deployment(self, index: PartitionIndex, num_parameters: int, num_classes: int) -> Deployment:
        return scheme_deployment(self.settings, index.sizes.tolist(), num_parameters, num_classes)

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
        dropped = frozenset(sampled[drops < settings.dropout].tolist())
        return tuple(sampled.tolist()), dropped

    def _sample_orders(
        self, round_index: int, client_ids: tuple[int, ...], index: PartitionIndex
    ) -> list[OrderGroup]:
        """The dataset indices each client trains on this round, in order of use, grouped by length.

        FedSGD takes a random batch of ``batch_size`` of the client's samples (all of
        them if it holds fewer); FedAvg concatenates one fresh shuffle per local epoch.
        Each client's shuffles depend only on (seed, round, client, epoch).
        """
        settings = self.settings
        return sample_orders(
            settings.seed,
            round_index,
            client_ids,
            index,
            epochs=1 if settings.algorithm == "fedsgd" else settings.local_epochs,
            samples_read=self._samples_read,
        )

    def _samples_read(self, num_samples: int) -> int:
        """How many samples, epochs concatenated, a client holding ``num_samples`` reads in a round."""
        return sum(step.stop - step.start for step in self._schedule(num_samples))

    def _schedule(self, num_samples: int) -> list[slice]:
        """The local steps of a client holding ``num_samples`` samples (see :func:`batch_schedule`)."""
        settings = self.settings
        return batch_schedule(
            num_samples,
            batch_size=settings.batch_size,
            local_epochs=settings.local_epochs,
            algorithm=settings.algorithm,
        )

    def _order_schedule(self, order_length: int) -> list[slice]:
        """The local steps over a round's sample order of ``order_length`` (every epoch's order, concatenated)."""
        # FedAvg reads all samples every epoch; FedSGD's order is its one batch.
        epochs = self.settings.local_epochs if self.settings.algorithm == "fedavg" else 1
        return self._schedule(order_length // epochs)

    def _run_round(
        self,
        round_index: int,
        params: Tensor,
        buffers: Tensor,
        dataset: Dataset,
        partition: Sequence[Tensor],
        index: PartitionIndex,
        training: LocalTraining,
        scheme: AggregationScheme,
    ) -> tuple[RoundRecord, RoundTruth]:
        settings = self.settings
        client_ids, dropped = self._sample_clients(round_index)
        groups = self._sample_orders(round_index, client_ids, index)
        client_buffers = torch.empty(len(client_ids), buffers.numel()) if buffers.numel() else None
        updates, first_losses = training.run(
            params, dataset, groups, len(client_ids),
            buffers=buffers if client_buffers is not None else None, client_buffers=client_buffers,
        )
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
        ids = np.asarray(client_ids, dtype=np.int64)
        if settings.algorithm == "fedavg":  # a FedAvg update weighs the client's data, FedSGD's its batch
            counted = index.sizes[ids]
        else:
            counted = np.zeros(len(client_ids), dtype=np.int64)
            for group in groups:
                counted[group.rows.numpy()] = group.length
        weights = torch.from_numpy(counted.astype(np.float64))
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
        if scheme.needs_client_batches:
            orders = orders_by_client(groups, client_ids)
            client_batches = {
                c: cut_batches(orders[c], self._order_schedule(len(orders[c])), dataset) for c in client_ids
            }
        else:
            client_batches = {}
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
            client_batches=client_batches,
        )
        outcome = scheme.run_round(context)
        survivors = outcome.survivors
        # client_ids and survivors are both sorted
        arrived_losses = first_losses[torch.from_numpy(np.searchsorted(ids, np.asarray(survivors, dtype=np.int64)))]
        metrics = {"train_loss": float(arrived_losses.mean()) if survivors else float("nan")}
        metrics.update(outcome.metrics)
        round_public = {**public, **outcome.public}
        if outcome.aborted is not None:
            logger.warning("round %d aborted, model unchanged: %s", round_index, outcome.aborted)
            round_public["aborted"] = outcome.aborted
        views = outcome.views
        buffers_after = buffers
        if client_buffers is not None:
            buffers_after = aggregate_buffers(
                buffers, client_buffers, client_ids, survivors, weights,
                weighting=public["weighting"], aborted=outcome.aborted,
            )
            views = views_with_buffers(views, client_ids, client_buffers, buffers, buffers_after)
        record = RoundRecord(
            round_index=round_index,
            params_before=params,
            params_after=outcome.params_after,
            sampled=client_ids,
            survivors=survivors,
            scheme=scheme.name,
            public=round_public,
            views=views,
            metrics=metrics,
            buffers_before=buffers,
            buffers_after=buffers_after,
        )
        return record, self._truth(round_index, client_ids, updates, weights, groups)

    def _truth(
        self,
        round_index: int,
        client_ids: tuple[int, ...],
        updates: Tensor,
        weights: Tensor,
        groups: Sequence[OrderGroup],
    ) -> RoundTruth:
        """The round's ground truth: every sampled client's, or only the ``truth_clients``' copied out."""
        if self.settings.record_truth == "all":
            return RoundTruth(
                round_index=round_index,
                client_ids=client_ids,
                updates=updates,
                weights=weights,
                sample_order=orders_by_client(groups, client_ids),
                recorded_ids=client_ids,
            )
        targets = frozenset(self.settings.truth_clients)
        rows = [row for row, client in enumerate(client_ids) if client in targets]
        return RoundTruth(
            round_index=round_index,
            client_ids=client_ids,
            # indexing copies the few rows: a view would keep the whole [C, P] block alive
            updates=updates[rows],
            weights=weights,
            sample_order=orders_by_client(groups, client_ids, targets),
            recorded_ids=tuple(client_ids[row] for row in rows),
        )


def scheme_deployment(
    settings: SimulationSettings, partition_sizes: Sequence[int], num_parameters: int, num_classes: int
) -> Deployment:
    """The :class:`Deployment` a scheme is prepared with: the settings and each client's weight.

    A FedAvg update weighs the client's data (``partition_sizes``); a FedSGD update weighs
    the batch it was computed on.
    """
    sizes = list(partition_sizes)
    if settings.algorithm == "fedsgd":
        read = {
            size: sum(
                step.stop - step.start
                for step in batch_schedule(
                    size, batch_size=settings.batch_size, local_epochs=settings.local_epochs,
                    algorithm=settings.algorithm,
                )
            )
            for size in set(sizes)
        }
        sizes = [read[size] for size in sizes]
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


def _check_float_parameters(model: nn.Module) -> None:
    """Refuse a model that has no parameters, or parameters that are not all of one float dtype."""
    dtypes = {p.dtype for p in model.parameters()}
    if not dtypes:
        raise ConfigError(f"model {type(model).__name__} has no parameters to train")
    if len(dtypes) > 1 or not next(iter(dtypes)).is_floating_point:
        raise ConfigError(
            f"model parameters must all be one float dtype, got {sorted(str(d) for d in dtypes)}"
        )


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
        model (in ``settings``): a registered name, an import path ``"module:callable"``,
            an ``nn.Module`` instance (copied; it keeps its own weights and buffers) or a
            callable taking ``input_shape``, ``num_classes`` and the model options.
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
    model = settings.pop("model", "mlp")
    model_object = None if isinstance(model, str) else model
    if model_object is not None and not (isinstance(model_object, nn.Module) or callable(model_object)):
        raise ConfigError(
            f"model must be a registered name, an import path, an nn.Module or a callable, got {type(model).__name__}"
        )
    resolved = SimulationSettings(
        model=model_label(model),
        dataset=dataset.name if isinstance(dataset, Dataset) else dataset,
        scheme=(
            scheme.name
            if isinstance(scheme, AggregationScheme)
            else scheme if isinstance(scheme, str) else tuple(scheme)
        ),
        **settings,
    )
    return Simulator(resolved, dataset=dataset_object, scheme=scheme_object, model=model_object).run(
        show_progress=show_progress
    )
