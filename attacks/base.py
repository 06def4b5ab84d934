"""What every attack takes and returns: an observation, declared knowledge, a result.

An attack inverts one client's upload. It sees an :class:`Observation` (the flat
parameters the client started from and the gradient or update it sent, taken from an
observer's :class:`~leakage.views.RoundView` or captured by a user from a real run) and
a :class:`Knowledge` record that declares every assumption it needs (architecture,
learning rate, local steps, batch size, input shape and normalisation). It never
touches ground truth; scoring code compares its :class:`AttackResult` with the truth.
"""

from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, get_args

import torch
from torch import Tensor, nn

from leakage.checks import require_choice, require_int, require_optional_int
from leakage.data import Dataset
from leakage.errors import ConfigError, ThreatModelError
from leakage.models import ParameterLayout, flatten_parameters
from leakage.registry import Registry
from leakage.views import RoundView, client_observer, parse_client_observer

__all__ = [
    "ATTACKS",
    "Attack",
    "AttackBase",
    "AttackProduct",
    "AttackResult",
    "Knowledge",
    "Observation",
    "ObservationKind",
    "ViewerRole",
    "create_attack",
]

ObservationKind = Literal["gradient", "update"]
AttackProduct = Literal["update_estimate", "reconstruction", "membership", "property_score", "records"]
#: who an observer is to an attack: a participant (or coalition), the server or an
#: eavesdropper (both see the wire or the server's side), the public (the released model).
ViewerRole = Literal["client", "server", "public"]
_KINDS: tuple[str, ...] = get_args(ObservationKind)


@dataclass(frozen=True)
class Knowledge:
    """What the attacker is assumed to know, stated so a report can name the threat model.

    Attributes:
        model: the architecture; its own weights are ignored (the observation's
            parameters are loaded into a copy).
        input_shape: one input without the batch dimension.
        num_classes: number of output logits.
        num_samples: ``B``, how many samples produced the observed gradient or update.
        algorithm: ``"fedsgd"`` (one gradient step on all ``B`` samples) or ``"fedavg"``
            (``local_epochs`` passes over the ``B`` samples in batches of ``batch_size``).
        lr: the client learning rate (needed to turn a FedSGD update into a gradient
            and to unroll FedAvg steps).
        local_epochs: local passes for FedAvg.
        batch_size: FedAvg local batch size; ``None`` means all ``B`` samples at once.
        mean, std: the input normalisation ``normalised = (raw - mean) / std``,
            broadcastable to ``input_shape`` (``[C, 1, 1]`` for images).
        value_range: ``(low, high)`` of raw inputs; reconstructions stay in this box.
        labels: the ``B`` labels, if the attacker knows them; otherwise attacks recover them.
        client_weights: aggregation weights (sample counts) of clients, by id, that the
            attacker assumes where its view does not disclose them (round-difference
            and disaggregation attacks under secure aggregation).
        auxiliary: data the attacker holds from the task's distribution, with its
            property flags (property inference trains on it).
        candidates: records whose membership in the target's training data the
            attacker scores (membership inference); it knows the records, not the answer.
    """

    model: nn.Module
    input_shape: tuple[int, ...]
    num_classes: int
    num_samples: int = 1
    algorithm: Literal["fedsgd", "fedavg"] = "fedsgd"
    lr: float | None = None
    local_epochs: int = 1
    batch_size: int | None = None
    mean: Tensor | None = None
    std: Tensor | None = None
    value_range: tuple[float, float] = (0.0, 1.0)
    labels: Tensor | None = None
    client_weights: Mapping[int, float] | None = None
    auxiliary: Dataset | None = None
    candidates: Dataset | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.model, nn.Module):
            raise ConfigError(f"knowledge.model must be a torch.nn.Module, got {type(self.model).__name__}")
        object.__setattr__(self, "input_shape", tuple(int(s) for s in self.input_shape))
        if not self.input_shape or min(self.input_shape) < 1:
            raise ConfigError(f"knowledge.input_shape must be non-empty and positive, got {self.input_shape}")
        for name in ("num_classes", "num_samples", "local_epochs"):
            object.__setattr__(self, name, require_int(f"knowledge.{name}", getattr(self, name), minimum=1))
        require_choice("knowledge.algorithm", self.algorithm, ("fedsgd", "fedavg"))
        if self.lr is not None and not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0):
            raise ConfigError(f"knowledge.lr must be a finite number > 0 or None, got {self.lr!r}")
        batch_size = require_optional_int("knowledge.batch_size", self.batch_size, minimum=1)
        object.__setattr__(self, "batch_size", batch_size)
        low, high = self.value_range
        if not low < high:
            raise ConfigError(f"knowledge.value_range must be (low, high) with low < high, got {self.value_range}")
        if self.labels is not None:
            labels = torch.as_tensor(self.labels, dtype=torch.int64).reshape(-1)
            if labels.numel() != self.num_samples or labels.min() < 0 or labels.max() >= self.num_classes:
                raise ConfigError(
                    f"knowledge.labels must hold num_samples={self.num_samples} classes in [0, {self.num_classes}), "
                    f"got {labels.tolist()}"
                )
            object.__setattr__(self, "labels", labels)
        if self.client_weights is not None:
            weights = dict(self.client_weights)
            if not all(isinstance(w, (int, float)) and math.isfinite(w) and w > 0 for w in weights.values()):
                raise ConfigError(f"knowledge.client_weights must map client ids to weights > 0, got {weights}")
            object.__setattr__(self, "client_weights", {int(c): float(w) for c, w in weights.items()})
        for name in ("auxiliary", "candidates"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, Dataset):
                raise ConfigError(f"knowledge.{name} must be a leakage Dataset, got {type(value).__name__}")

    @classmethod
    def from_dataset(cls, dataset: Dataset, model: nn.Module, **facts: Any) -> Knowledge:
        """Return knowledge of ``dataset``'s shape and normalisation plus the given ``facts``.

        Unknown fact names raise ``TypeError`` like any dataclass; ``facts`` override
        the dataset's own values.

        >>> from leakage import load_dataset, create_model
        >>> data = load_dataset("digits")
        >>> net = create_model("mlp", input_shape=data.input_shape, num_classes=10, generator=torch.Generator())
        >>> Knowledge.from_dataset(data, net, lr=0.1).value_range
        (0.0, 1.0)
        """
        described: dict[str, Any] = {
            "input_shape": dataset.input_shape,
            "num_classes": dataset.num_classes,
            "mean": dataset.mean,
            "std": dataset.std,
            "value_range": dataset.value_range,
        }
        described.update(facts)  # what the caller states overrides what the dataset says
        return cls(model=model, **described)

    @property
    def steps(self) -> int:
        """Local SGD steps behind the observed update, by the simulator's batch rule."""
        from leakage.simulation import batch_schedule

        schedule = batch_schedule(
            self.num_samples, batch_size=self.batch_size, local_epochs=self.local_epochs, algorithm=self.algorithm
        )
        return len(schedule)

    def normalize(self, raw: Tensor) -> Tensor:
        """Map raw inputs to the normalised space the model sees."""
        if self.mean is None or self.std is None:
            return raw
        return (raw - self.mean.to(raw)) / self.std.to(raw)

    def denormalize(self, inputs: Tensor) -> Tensor:
        """Map normalised inputs back to the raw value range."""
        if self.mean is None or self.std is None:
            return inputs
        return inputs * self.std.to(inputs) + self.mean.to(inputs)

    def bounds(self, like: Tensor) -> tuple[Tensor, Tensor]:
        """Return the box ``(low, high)`` of valid inputs in normalised space, shaped like one input."""
        low = torch.full(self.input_shape, self.value_range[0], dtype=like.dtype, device=like.device)
        high = torch.full(self.input_shape, self.value_range[1], dtype=like.dtype, device=like.device)
        return self.normalize(low), self.normalize(high)


@dataclass(frozen=True)
class Observation:
    """One client's upload as an observer saw it.

    Attributes:
        params: flat ``[P]`` global parameters the client started from.
        value: flat ``[P]`` gradient (``kind="gradient"``) or update, local minus global
            parameters (``kind="update"``).
        kind: ``"gradient"`` or ``"update"``.
        client: the client's id, if known.
        round_index: the round, if known.
    """

    params: Tensor
    value: Tensor
    kind: ObservationKind = "update"
    client: int | None = None
    round_index: int | None = None

    def __post_init__(self) -> None:
        require_choice("observation kind", self.kind, _KINDS)
        if self.params.shape != self.value.shape or self.params.dim() != 1:
            raise ConfigError(
                f"observation params and value must be flat vectors of one length, "
                f"got {tuple(self.params.shape)} and {tuple(self.value.shape)}"
            )

    @classmethod
    def from_view(cls, view: RoundView, client: int | None = None) -> Observation:
        """Return the plaintext upload of ``client`` that ``view`` holds.

        A participant's own view gives its own update; a server or eavesdropper view
        gives the upload ``"update:client:<id>"`` it received in the clear.

        Raises:
            ThreatModelError: the view holds no plaintext update of that client (it
                was masked, encrypted or never sent), or no starting parameters.
        """
        if view.params_before is None:
            raise ThreatModelError(f"observer {view.observer!r} did not see the parameters the round started from")
        if view.observer.startswith("client:") and (client is None or client == parse_client_observer(view.observer)):
            update = view.own.get("sent", view.own.get("update"))
            owner = parse_client_observer(view.observer)
        else:
            if client is None:
                senders = sorted(
                    k for k, v in view.received.items() if k.startswith("update:") and isinstance(v, Tensor)
                )
                if len(senders) != 1:
                    raise ThreatModelError(
                        f"observer {view.observer!r} received {len(senders)} plaintext updates; name the target client"
                    )
                client = parse_client_observer(senders[0].removeprefix("update:"))
            found = view.received.get(f"update:{client_observer(client)}")
            update = found if isinstance(found, Tensor) else None
            owner = client
        if update is None:
            raise ThreatModelError(
                f"observer {view.observer!r} holds no plaintext update of client {client} in round {view.round_index}"
            )
        return cls(view.params_before, update, "update", owner, view.round_index)

    @classmethod
    def from_gradients(cls, model: nn.Module, gradients: Sequence[Tensor] | Mapping[str, Tensor]) -> Observation:
        """Return the observation of ``gradients`` captured at ``model``'s current weights.

        ``gradients`` follow ``model.parameters()`` order, or are keyed by parameter name.

        Raises:
            ThreatModelError: the gradient shapes do not match the model's parameters.
        """
        layout = ParameterLayout.of(model)
        if isinstance(gradients, Mapping):
            missing = set(layout.names) - set(gradients)
            if missing:
                raise ThreatModelError(f"gradients lack parameters {sorted(missing)}")
            ordered = [gradients[name] for name in layout.names]
        else:
            ordered = list(gradients)
        if [tuple(g.shape) for g in ordered] != [tuple(s) for s in layout.shapes]:
            raise ThreatModelError(
                f"gradient shapes {[tuple(g.shape) for g in ordered]} do not match the model's parameters "
                f"{[tuple(s) for s in layout.shapes]}"
            )
        value = torch.cat([g.detach().reshape(-1) for g in ordered])
        return cls(flatten_parameters(model).detach(), value, "gradient")

    def gradient(self, knowledge: Knowledge) -> Tensor:
        """Return the observed gradient ``[P]`` (a FedSGD update is ``-lr * gradient``).

        Raises:
            ThreatModelError: a FedSGD update without a known learning rate, or a
                FedAvg update, which is not one gradient.
        """
        if self.kind == "gradient":
            return self.value
        if knowledge.algorithm != "fedsgd" or knowledge.steps != 1:
            raise ThreatModelError("a FedAvg update of several steps is not a gradient; unroll the local steps instead")
        if knowledge.lr is None:
            raise ThreatModelError("turning a FedSGD update into a gradient needs knowledge.lr")
        return -self.value / knowledge.lr


@dataclass(frozen=True)
class AttackResult:
    """What an attack recovered, and how it got there.

    Attributes:
        attack: the attack's registry name.
        inputs: ``[B, *input_shape]`` reconstructions in the model's normalised space
            (empty for label-only attacks).
        raw_inputs: the same, denormalised into the raw value range (what metrics use).
        labels: ``[B]`` labels the attack optimised or recovered (never a template).
        objective: final value of the attack's objective (gradient distance).
        trace: ``(objective evaluations so far, best objective)`` along the run.
        restarts: final objective of every restart; the best one is returned.
        objective_evals: objective evaluations spent.
        seconds: wall time.
        converged: the objective reached the attack's stopping tolerance.
    """

    attack: str
    inputs: Tensor
    raw_inputs: Tensor
    labels: Tensor
    objective: float
    trace: tuple[tuple[int, float], ...] = ()
    restarts: tuple[float, ...] = ()
    objective_evals: int = 0
    seconds: float = 0.0
    converged: bool = False
    details: Mapping[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (shapes and numbers, not the reconstructions themselves)."""
        return {
            "attack": self.attack,
            "input_shape": list(self.inputs.shape),
            "labels": self.labels.tolist(),
            "objective": self.objective,
            "restarts": list(self.restarts),
            "objective_evals": self.objective_evals,
            "seconds": self.seconds,
            "converged": self.converged,
            "trace": [list(point) for point in self.trace],
            **dict(self.details),
        }


class AttackBase(ABC):
    """What every registered attack declares: its name and the observer it runs as.

    Attacks on one upload subclass :class:`Attack`; attacks on an observer's history
    of views subclass :class:`attacks.history.HistoryAttack`. Both are configured with
    keyword-only options and do their work in ``run``.
    """

    name: ClassVar[str] = ""
    #: who runs the attack, in words a report can print ("a participant", "the server").
    observer: ClassVar[str] = ""
    #: what a run returns, so scoring dispatches on it instead of on attack names:
    #: ``"update_estimate"`` (an :class:`~attacks.history.UpdateEstimate`),
    #: ``"reconstruction"`` (an :class:`AttackResult` from one upload),
    #: ``"membership"`` (a :class:`~attacks.membership.MembershipScores`), or a product
    #: ``leakage score`` does not score yet (``"property_score"``, ``"records"``).
    produces: ClassVar[AttackProduct] = "reconstruction"
    #: scoring runs an implicit attack for every observer it runs as, named in the spec or
    #: not: it only reads what the view holds (a plaintext upload, the model change).
    is_implicit: ClassVar[bool] = False
    #: reads individual uploads as they were sent, so a guarantee that covers only what
    #: the server releases (central DP) does not cover it.
    reads_uploads: ClassVar[bool] = False

    @classmethod
    def runs_as(cls, role: ViewerRole) -> bool:
        """Whether the attack runs on the views of an observer in ``role`` (``client``, ``server``, ``public``)."""
        return True

    @abstractmethod
    def run(self, *args: Any, **kwargs: Any) -> Any:
        """Run the attack; see the subclass for the signature."""


class Attack(AttackBase):
    """An attack on one client's upload: configure, then :meth:`run` on an observation.

    Subclasses take keyword-only hyper-parameters in ``__init__``, validate them and do
    no work there, and implement :meth:`_run`. The object is unchanged by a run.
    """

    observer: ClassVar[str] = "any observer holding the target's plaintext upload"

    def run(
        self,
        observation: Observation | RoundView,
        knowledge: Knowledge,
        *,
        client: int | None = None,
        generator: torch.Generator | None = None,
        show_progress: bool = False,
    ) -> AttackResult:
        """Attack ``observation`` (or the plaintext upload of ``client`` in a view) under ``knowledge``.

        Args:
            observation: an :class:`Observation`, or a view holding the upload.
            knowledge: the attacker's declared knowledge.
            client: the target client when ``observation`` is a view with several uploads.
            generator: randomness for initialisations (seeded 0 if omitted), so the
                same call gives the same result.
            show_progress: show a progress bar over iterations.

        Raises:
            ThreatModelError: the view holds no usable upload, or its shape does not
                match ``knowledge.model``.
        """
        if isinstance(observation, RoundView):
            observation = Observation.from_view(observation, client)
        expected = ParameterLayout.of(knowledge.model).num_parameters
        if observation.value.numel() != expected:
            raise ThreatModelError(
                f"the observed {observation.kind} has {observation.value.numel()} values but knowledge.model "
                f"has {expected} parameters: the declared architecture does not match the view"
            )
        generator = generator if generator is not None else torch.Generator().manual_seed(0)
        started = time.perf_counter()
        result = self._run(observation, knowledge, generator=generator, show_progress=show_progress)
        return result if result.seconds else _with_seconds(result, time.perf_counter() - started)

    @abstractmethod
    def _run(
        self, observation: Observation, knowledge: Knowledge, *, generator: torch.Generator, show_progress: bool
    ) -> AttackResult:
        """Run the attack on a validated observation."""


def _with_seconds(result: AttackResult, seconds: float) -> AttackResult:
    from dataclasses import replace

    return replace(result, seconds=seconds)


ATTACKS: Registry[type[AttackBase]] = Registry("attack", plugin_modules=("attacks",))


def create_attack(name: str, /, **options: Any) -> AttackBase:
    """Build the registered attack ``name`` with keyword ``options``.

    Raises:
        UnknownNameError: ``name`` is not registered (the message lists the choices).
        ConfigError: an option is unknown or invalid.
    """
    attack: AttackBase = ATTACKS.create(name, **options)
    return attack
