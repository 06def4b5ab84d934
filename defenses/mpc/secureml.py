"""``secureml``: the ``mpc`` scheme's real protocol backend, logistic regression trained on secret shares.

Each round the arriving clients act as data owners (SecureML's outsourced setting,
Mohassel & Zhang, IEEE S&P 2017, Sec. 2): they secret-share the rows they would have
trained on among ``parties`` (2 or 3) non-colluding computing parties, which run the
clients' local training and the weighted FedAvg on shares with
:class:`defenses.mpc.protocol.SecureLogisticSession`. The model stays shared from round
to round; only the final model is opened, in the final round.

The toolkit's ``logreg`` with two classes is a softmax over two linear scores
``z_c = w_c . x + b_c``. Its probability of class 1 is ``sigmoid(v . x + b_v)`` with
``v = w_1 - w_0``, a gradient step changes ``v`` by twice the binary logistic step
(``d/dw_1 = (p - y) x = -d/dw_0``) and leaves ``w_0 + w_1`` unchanged. The protocol
therefore trains the binary model ``(v, b_v)`` with step ``2 lr / |B|`` and the sigmoid
replaced by SecureML's piecewise one (or the cubic fit), and the released model is
``w_1 = (s + v) / 2``, ``w_0 = (s - v) / 2`` for the public ``s = w_0 + w_1`` of the
initial model. Every step is the plaintext step with the approximate sigmoid, up to
fixed-point rounding.

What the parties hold between rounds (``party_state``) is their additive share of the
model, re-randomized at the end of every round so that it is uniform on ``Z_(2^64)``
(truncated shares alone are not). Randomness: ``"seeded"`` derives the protocol's secret key
from the simulation's seed so reports repeat (a simulation, not a deployment);
``"fresh"`` draws OS entropy, as a deployment must.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor

from defenses.mpc.backends import MPC_BACKENDS, MPCBackend
from defenses.mpc.protocol import (
    SUPPORTED_PARTIES,
    RingArray,
    SecureLogisticSession,
    ring_add,
    ring_subtract,
)
from leakage.aggregation import Deployment, RoundContext
from leakage.checks import require_choice, require_int
from leakage.errors import ConfigError

__all__ = ["SecureMLBackend"]

Randomness = Literal["seeded", "fresh"]


def _split_logreg(params: Tensor, features: int) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Return ``(difference, sum)``: ``[w_1 - w_0, b_1 - b_0]`` and ``[w_0 + w_1, b_0 + b_1]``."""
    flat = params.detach().to(torch.float64).numpy()
    weights, bias = flat[: 2 * features].reshape(2, features), flat[2 * features :]
    difference = np.append(weights[1] - weights[0], bias[1] - bias[0])
    total = np.append(weights[0] + weights[1], bias[0] + bias[1])
    return difference, total


def _join_logreg(difference: NDArray[np.float64], total: NDArray[np.float64], like: Tensor) -> Tensor:
    """Inverse of ``_split_logreg``: the flat two-class model ``[w_0, w_1, b_0, b_1]``."""
    first, second = (total - difference) / 2.0, (total + difference) / 2.0
    flat = np.concatenate([first[:-1], second[:-1], [first[-1], second[-1]]])
    return torch.from_numpy(flat).to(like.dtype)


@MPC_BACKENDS.register("secureml")
class SecureMLBackend(MPCBackend):
    """Two-class logistic regression trained on secret shares (SecureML), opening only the final model.

    Args:
        parties: computing parties, 2 (local truncation, 7 rounds per piecewise step)
            or 3 (truncation pairs, 10).
        sigmoid: ``"piecewise"`` (SecureML's activation) or ``"cubic"``.
        fractional_bits: fixed-point precision of data, model and activations.
        randomness: ``"seeded"`` (reproducible from the simulation seed) or ``"fresh"``.

    Raises:
        ConfigError: an option outside its choices.
    """

    name = "secureml"
    description = "real protocol run: trained on secret shares (SecureML), only the final model opened"
    auto_preference = 0  # a real protocol run, whenever it applies, before the ideal functionality
    trains_on_shares: ClassVar[bool] = True

    def __init__(
        self,
        *,
        parties: int = 2,
        sigmoid: str = "piecewise",
        fractional_bits: int = 16,
        randomness: str = "seeded",
    ) -> None:
        self.parties = require_choice("mpc parties", parties, SUPPORTED_PARTIES)
        self.sigmoid: Any = require_choice("mpc sigmoid", sigmoid, ("piecewise", "cubic"))
        self.fractional_bits = require_int("mpc fractional_bits", fractional_bits, minimum=8, maximum=24)
        self.randomness = require_choice("mpc randomness", randomness, ("seeded", "fresh"))
        self._features = 0
        self._session: SecureLogisticSession | None = None
        self._model: list[RingArray] = []
        self._total = np.zeros(0)
        self._metrics: dict[str, float] = {}

    @classmethod
    def supports(cls, deployment: Deployment) -> bool:
        """Whether ``deployment`` trains what this backend computes: two-class ``logreg`` with cross-entropy."""
        return deployment.model == "logreg" and deployment.num_classes == 2 and deployment.loss == "cross_entropy"

    def prepare(self, deployment: Deployment) -> None:
        if not self.supports(deployment):
            raise ConfigError(
                "mpc backend 'secureml' trains two-class logreg with the cross_entropy loss, got "
                f"model {deployment.model!r} with {deployment.num_classes} classes and loss {deployment.loss!r}; "
                "use backend 'ideal' for other models"
            )
        self._features = deployment.num_parameters // 2 - 1
        self._session = None

    def _start(self, context: RoundContext) -> SecureLogisticSession:
        key = None
        if self.randomness == "seeded":
            key = bytes(torch.randint(0, 256, (32,), generator=context.generator, dtype=torch.uint8).tolist())
        session = SecureLogisticSession(
            num_parties=self.parties,
            width=self._features + 1,
            fractional_bits=self.fractional_bits,
            sigmoid=self.sigmoid,
            randomness=key,
        )
        difference, self._total = _split_logreg(context.params_before, self._features)
        self._model = session.rerandomize(session.encode_model(difference))
        return session

    def aggregate(self, context: RoundContext) -> Tensor:
        if self._features == 0:
            raise RuntimeError("prepare() must run before the first round")
        if self._session is None or context.round_index == 0:
            self._session = self._start(context)
        session = self._session
        channel = session.channel
        bytes_before, rounds_before, dealer_before = channel.bytes_sent, channel.rounds, session.dealer_seconds
        uploads_before = session.outside_input_bytes
        started = time.perf_counter()
        arriving = context.arriving
        if arriving:
            try:
                self._model = session.rerandomize(self._train_round(session, context, arriving))
            except ValueError as error:  # a value beyond the fixed-point range, named by the encoder
                raise ConfigError(f"mpc backend 'secureml': {error}") from error
        if context.is_final_round:
            difference = session.open_model(self._model)
        else:  # the simulator's ground truth; no party sees it
            difference = session.reveal_for_simulation(self._model)
        self._metrics = {
            "upload_bytes_per_client": (session.outside_input_bytes - uploads_before) / max(1, len(arriving)),
            "mpc_bytes": float(channel.bytes_sent - bytes_before),
            "mpc_rounds": float(channel.rounds - rounds_before),
            "mpc_dealer_seconds": session.dealer_seconds - dealer_before,
            "mpc_online_seconds": time.perf_counter() - started - (session.dealer_seconds - dealer_before),
        }
        return _join_logreg(difference, self._total, context.params_before)

    def _train_round(
        self, session: SecureLogisticSession, context: RoundContext, arriving: tuple[int, ...]
    ) -> list[RingArray]:
        """Local training of every arriving client on shares, then the weighted FedAvg step.

        Each client shares the rows of its batches in order of use, so under FedAvg with
        several local epochs a row is shared once per epoch (more bytes, same result).
        """
        blocks = []
        for client in arriving:
            batches = context.client_batches[client]
            inputs = torch.cat([x.reshape(len(x), -1) for x, _ in batches]).to(torch.float64).numpy()
            labels = torch.cat([y for _, y in batches]).to(torch.float64).numpy()
            blocks.append((session.share_rows(f"client:{client}", inputs, labels), [len(y) for _, y in batches]))
        x_shares = [np.concatenate([shares[0][p] for shares, _ in blocks]) for p in range(session.num_parties)]
        y_shares = [np.concatenate([shares[1][p] for shares, _ in blocks]) for p in range(session.num_parties)]
        mask = session.deal_row_mask(len(x_shares[0]))
        rows = session.open_masked_rows(x_shares, y_shares, mask)
        lr = float(context.public["lr"])  # type: ignore[arg-type]
        weights = {c: float(context.weights[context.row(c)]) for c in arriving}
        total_weight = sum(weights.values())
        model = self._model
        delta: list[RingArray] | None = None
        offset = 0
        for client, (_, sizes) in zip(arriving, blocks, strict=True):
            local = list(model)
            for size in sizes:
                batch = np.arange(offset, offset + size, dtype=np.int64)
                local = session.step(local, rows, batch, session.deal_step(mask, batch), 2.0 * lr / size)
                offset += size
            change = [ring_subtract(after, before) for after, before in zip(local, model, strict=True)]
            factor = context.server_lr * weights[client] / total_weight
            scaled = session.scale_public(change, factor, session.deal_scaling(change[0].shape))
            delta = scaled if delta is None else [ring_add(a, b) for a, b in zip(delta, scaled, strict=True)]
        assert delta is not None
        return [ring_add(w, d) for w, d in zip(model, delta, strict=True)]

    def round_metrics(self) -> dict[str, float]:
        return dict(self._metrics)

    def party_state(self) -> dict[str, Tensor]:
        if not self._model:
            return {}
        return {"model_share": torch.from_numpy(self._model[0].reshape(-1).view(np.int64).copy())}
