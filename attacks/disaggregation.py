"""``disaggregation``: the server separates single updates from secure aggregates across rounds.

Lam, Wei, Brooks, Janapa Reddi and Mitzenmacher, "Gradient Disaggregation: Breaking Privacy in
Federated Learning by Reconstructing the User Participant Matrix", ICML 2021.

Secure aggregation shows the server only a weighted sum per round, but the server
always learns who took part. Client ``j`` with aggregation weight ``n_j`` sends
``u_j(t)`` in round ``t``; the server sees

    ``s_t = W_t * delta_t = sum_{j in P_t} n_j u_j(t)``,   ``W_t = sum_{j in P_t} n_j``,

with ``delta_t = (params_after - params_before) / eta`` (or the decoded aggregate). If
every update stays (nearly) constant over a window of ``R`` rounds, the rounds stack into

    ``S = M U``,   ``M[t, j] = n_j * 1[j in P_t]`` (``R x N``),  ``S``: ``R x P``,  ``U``: ``N x P``,

solved by least squares, ``U_hat = M^+ S``. Row ``j`` is the same for every solution
(identifiable) iff the unit vector ``e_j`` lies in the row space of ``M``; only then is
it returned. With ``drift="linear"``, ``u_j(t) = a_j + (t - t_bar) b_j``: ``M`` gains the
block ``diag(t - t_bar) M`` for the slopes, and the estimate of client ``j`` is its mean
update over the rounds it took part in, ``a_j + c_j b_j`` with ``c_j`` the mean of
``t - t_bar`` there; it is returned iff that functional lies in the row space.

The paper's hard part is rebuilding the participant matrix itself (binary, from device
analytics such as participation counts, by integer programming). Here the view names the
participants, so only the least-squares step remains. Integrality and non-negativity
still help with the weights: sample counts are positive integers, so weights solved from
the secure aggregation's summed weights ``W = A n`` (``A`` the 0/1 participation matrix)
are snapped to integers and rejected if not positive or inconsistent. They do not help
with ``U``: updates are signed real vectors, so the row-space condition above is exactly
what decides identifiability.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import torch
from torch import Tensor
from tqdm.auto import tqdm

from attacks.base import ATTACKS, Knowledge
from attacks.history import (
    HistoryAttack,
    RecoveredUpdate,
    UpdateEstimate,
    group_by_round,
)
from leakage.checks import require_choice, require_in_interval, require_nonnegative_float, require_optional_int
from leakage.errors import ThreatModelError
from leakage.views import RoundView

__all__ = ["Disaggregation", "DisaggregationAttack", "DriftModel", "disaggregate"]

DriftModel = Literal["constant", "linear"]
_DRIFTS: tuple[DriftModel, ...] = get_args(DriftModel)
# The secure sum of integer weights is exact: a solved sample count farther than this from an
# integer, or summed weights fitting constant counts worse than this (relative), mean that the
# weights were not constant sample counts.
_INTEGER_SLACK = 1e-2
_FIT_SLACK = 1e-6


@dataclass(frozen=True)
class Disaggregation:
    """The least-squares solution of ``S = M U`` over one window of rounds.

    Attributes:
        updates: ``[N, P]`` float64 estimate of each client's (mean) update; zero rows
            where the client is not identifiable.
        identifiable: ``[N]`` bool, the client's estimate is the same for every solution.
        rank: numerical rank of the design matrix.
        condition_number: largest over smallest kept singular value (``inf`` at rank 0).
        residual_norm: ``||M U_hat - S||_F``; large when updates drifted within the window.
        relative_residual: ``residual_norm / ||S||_F`` (0 when ``S`` is zero).
    """

    updates: Tensor
    identifiable: Tensor
    rank: int
    condition_number: float
    residual_norm: float
    relative_residual: float


def disaggregate(
    participation: Tensor,
    sums: Tensor,
    *,
    times: Tensor | None = None,
    tolerance: float = 1e-6,
    ridge: float = 0.0,
) -> Disaggregation:
    """Return each client's update from weighted sums over rounds, where it is determined.

    Solves ``sums = participation @ U`` (constant updates) or, given ``times``,
    ``sums[t] = sum_j participation[t, j] (a_j + times[t] b_j)`` (linear drift; the
    estimate is ``a_j + c_j b_j``, ``c_j`` the mean time of the rounds ``j`` took part in).
    Singular values below ``tolerance * sigma_max`` count as zero; an estimate is
    identifiable when at most ``tolerance`` of its functional's norm lies outside the
    design's row space. ``ridge`` shrinks the solution: each kept singular value's gain
    ``1 / sigma`` becomes ``sigma / (sigma^2 + ridge * sigma_max^2)``.

    Args:
        participation: ``[R, N]`` weighted participation ``M`` (``n_j`` where client
            ``j`` took part in round ``t``, else 0).
        sums: ``[R, P]`` observed weighted sums ``s_t``.
        times: ``[R]`` round times, best centred on the window; ``None`` for constant updates.
        tolerance: relative threshold for rank and identifiability, in ``(0, 1)``.
        ridge: Tikhonov strength relative to ``sigma_max^2``, ``>= 0``.

    Raises:
        ValueError: the shapes do not fit together.

    >>> participation = torch.tensor([[1.0, 1.0, 0.0], [0.0, 1.0, 1.0], [1.0, 0.0, 1.0], [1.0, 1.0, 0.0]])
    >>> updates = torch.tensor([[1.0, 4.0], [2.0, 2.0], [3.0, -1.0]])
    >>> result = disaggregate(participation, participation @ updates)
    >>> result.updates.round(decimals=6).tolist(), result.rank
    ([[1.0, 4.0], [2.0, 2.0], [3.0, -1.0]], 3)
    >>> disaggregate(participation[:2], participation[:2] @ updates).identifiable.tolist()
    [False, False, False]
    """
    if participation.dim() != 2 or sums.dim() != 2 or participation.shape[0] != sums.shape[0]:
        raise ValueError(
            f"participation [R, N] and sums [R, P] must share R rounds, got "
            f"{tuple(participation.shape)} and {tuple(sums.shape)}"
        )
    if participation.shape[0] == 0:
        raise ValueError("disaggregation needs at least one round")
    design = participation.to(torch.float64)
    observed = sums.to(torch.float64)
    clients = design.shape[1]
    functionals = torch.eye(clients, dtype=torch.float64)
    if times is not None:
        if times.shape != (design.shape[0],):
            raise ValueError(f"times must have shape [{design.shape[0]}], got {tuple(times.shape)}")
        offsets = times.to(torch.float64)[:, None]
        took_part = (design != 0).to(torch.float64)
        mean_offset = (took_part * offsets).sum(0) / took_part.sum(0).clamp(min=1.0)
        design = torch.cat([design, design * offsets], dim=1)
        functionals = torch.cat([functionals, torch.diag(mean_offset)], dim=1)
    left, singular, right = torch.linalg.svd(design, full_matrices=False)
    largest = float(singular[0]) if singular.numel() else 0.0
    kept = singular > tolerance * largest if largest > 0 else torch.zeros_like(singular, dtype=torch.bool)
    rank = int(kept.sum())
    basis = right[kept].T  # [K, rank]: orthonormal basis of the row space
    outside = functionals - (functionals @ basis) @ basis.T
    identifiable = outside.norm(dim=1) <= tolerance * functionals.norm(dim=1)
    sigma = singular[kept]
    gains = sigma / (sigma**2 + ridge * largest**2)
    solution = basis @ (gains[:, None] * (left[:, kept].T @ observed))  # [K, P]
    estimates = functionals @ solution
    estimates[~identifiable] = 0.0
    residual = float((design @ solution - observed).norm())
    total = float(observed.norm())
    return Disaggregation(
        updates=estimates,
        identifiable=identifiable,
        rank=rank,
        condition_number=largest / float(sigma.min()) if rank else math.inf,
        residual_norm=residual,
        relative_residual=residual / total if total > 0 else 0.0,
    )


@dataclass(frozen=True)
class _Round:
    index: int
    params_before: Tensor
    delta: Tensor  # float64 weighted mean update
    participants: tuple[int, ...]
    public: Mapping[str, object]


@ATTACKS.register("disaggregation")
class DisaggregationAttack(HistoryAttack[UpdateEstimate]):
    """Recover single clients' updates from secure aggregates over rounds of varying participation.

    Run it on the server's (or an eavesdropper's) views. Rounds are cut into windows of
    ``window`` consecutive round indices; within each, the weighted sums are solved for the
    per-client updates (see the module docstring for ``S = M U``). Every identifiable client
    of a window yields one :class:`~attacks.history.RecoveredUpdate`: its (mean) update over
    the rounds of the window it took part in, with ``params_before`` of the first of them.

    The weights come from the public aggregation rule (``public["weighting"]``):
    ``"uniform"`` weights every participant 1; ``"expected_clients"`` divides by the public
    ``expected_clients``; ``"sample_count"`` takes the weights the view discloses
    (``public["weights"]`` under ``plain``), else solves the sample counts from the summed
    weights ``public["total_weight"]`` (the secure aggregation server's view) as positive
    integers, else ``knowledge.client_weights``, else, for FedSGD with a public
    ``batch_size``, assumes every participant drew a full batch. Facts taken on trust are
    listed in the result's ``assumptions``.

    Args:
        window: rounds per window over which updates are assumed constant (or linear);
            ``None`` takes all given rounds as one window.
        drift: ``"constant"`` updates within a window, or ``"linear"`` in the round index
            (twice the unknowns: it needs about twice the rounds).
        ridge: Tikhonov shrinkage relative to the largest squared singular value; 0 is
            plain least squares.
        tolerance: relative threshold for the numerical rank and the identifiability test.

    Raises:
        ConfigError: an option is outside its range (the message names it).

    >>> from leakage import simulate
    >>> transcript = simulate(scheme="secagg", n_clients=4, clients_per_round=2, rounds=10,
    ...                       algorithm="fedsgd", batch_size=None, lr=1e-3, seed=0)
    >>> estimate = DisaggregationAttack().run(transcript.views_of("server"))
    >>> item = estimate.of_client(0)[0]
    >>> truth = torch.stack([transcript.truth.rounds[r].update_of(0) for r in item.rounds]).mean(0)
    >>> bool(torch.nn.functional.cosine_similarity(item.update.float(), truth, dim=0) > 0.99)
    True
    """

    name = "disaggregation"
    observer = "the server (or an eavesdropper) over many rounds of secure aggregation"
    role = "server"

    def __init__(
        self,
        *,
        window: int | None = None,
        drift: DriftModel = "constant",
        ridge: float = 0.0,
        tolerance: float = 1e-6,
    ) -> None:
        self.window = require_optional_int("window", window, minimum=1)
        self.drift: DriftModel = require_choice("drift", drift, _DRIFTS)
        self.ridge = require_nonnegative_float("ridge", ridge)
        self.tolerance = require_in_interval("tolerance", tolerance, 0, 1, inclusive="neither")

    def _run(
        self,
        history: Sequence[RoundView],
        knowledge: Knowledge | None,
        *,
        generator: torch.Generator,
        show_progress: bool,
    ) -> UpdateEstimate:
        observer = history[0].observer
        assumptions: set[str] = set()
        rounds = _usable_rounds(history, assumptions)
        if not rounds:
            raise ThreatModelError(
                f"{observer} saw no round with both the model change (or decoded aggregate) and its participants "
                "(MPC training shows neither)"
            )
        clients = sorted({c for item in rounds for c in item.participants})
        column = {client: j for j, client in enumerate(clients)}
        took_part = torch.zeros(len(rounds), len(clients), dtype=torch.float64)
        for t, item in enumerate(rounds):
            took_part[t, [column[c] for c in item.participants]] = 1.0
        weights, totals, weight_residual = _weights(rounds, clients, took_part, knowledge, self.tolerance, assumptions)
        design = took_part * weights
        sums = totals[:, None] * torch.stack([item.delta for item in rounds])
        span = "all rounds" if self.window is None else f"each window of {self.window} rounds"
        shape = "constant" if self.drift == "constant" else "linear in the round index"
        assumptions.add(f"every client's update is {shape} over {span}")

        recovered: list[RecoveredUpdate] = []
        stats: list[Disaggregation] = []
        identified: set[int] = set()
        windows = _windows(rounds, self.window)
        for members in tqdm(windows, desc="windows", disable=not show_progress):
            present = [j for j in range(len(clients)) if bool(took_part[members, j].any())]
            indices = torch.tensor([rounds[t].index for t in members], dtype=torch.float64)
            times = indices - indices.mean() if self.drift == "linear" else None
            result = disaggregate(
                design[members][:, present], sums[members], times=times, tolerance=self.tolerance, ridge=self.ridge
            )
            stats.append(result)
            for row, j in enumerate(present):
                if not bool(result.identifiable[row]):
                    continue
                own = [t for t in members if took_part[t, j] > 0]
                identified.add(clients[j])
                recovered.append(
                    RecoveredUpdate(
                        rounds=tuple(rounds[t].index for t in own),
                        params_before=rounds[own[0]].params_before,
                        update=result.updates[row],
                        clients=frozenset({clients[j]}),
                        count=1,
                        weight=float(weights[own, j].mean()),
                    )
                )
        if not recovered:
            raise ThreatModelError(_why_unidentifiable(rounds, clients, stats, self.drift))
        residual = math.sqrt(sum(item.residual_norm**2 for item in stats))
        observed = float(sums.norm())
        details: dict[str, float] = {
            "windows": float(len(stats)),
            "rounds_used": float(len(rounds)),
            "clients": float(len(clients)),
            "rank": float(min(item.rank for item in stats)),
            "condition_number": max(item.condition_number for item in stats),
            "residual_norm": residual,
            "relative_residual": residual / observed if observed > 0 else 0.0,
            "identifiable_clients": float(len(identified)),
            "recovered_updates": float(len(recovered)),
        }
        if weight_residual is not None:
            details["weight_residual"] = weight_residual
        return UpdateEstimate(self.name, observer, tuple(recovered), tuple(sorted(assumptions)), details=details)


def _usable_rounds(history: Sequence[RoundView], assumptions: set[str]) -> list[_Round]:
    """Return the rounds that show an aggregate (or model change), its participants and the start model."""
    usable: list[_Round] = []
    for round_index, views in group_by_round(history).items():
        if len(views) > 1:
            raise ThreatModelError(f"round {round_index} appears {len(views)} times in the history")
        view = views[0]
        if view.params_before is None or not view.participants:
            continue
        decoded = view.received.get("aggregate")
        if isinstance(decoded, Tensor):
            delta = decoded.to(torch.float64)
        elif view.params_after is not None:
            if view.server_lr is None:
                assumptions.add("the server learning rate is 1 (not disclosed to this observer)")
            delta = view.model_change()
        else:
            continue  # the round aborted: nothing was released
        participants = tuple(sorted(view.participants))
        usable.append(_Round(round_index, view.params_before, delta, participants, view.public))
    return usable


def _windows(rounds: Sequence[_Round], window: int | None) -> list[list[int]]:
    """Group positions in ``rounds`` by blocks of ``window`` consecutive round indices."""
    if window is None:
        return [list(range(len(rounds)))]
    first = rounds[0].index
    blocks: dict[int, list[int]] = {}
    for position, item in enumerate(rounds):
        blocks.setdefault((item.index - first) // window, []).append(position)
    return [blocks[key] for key in sorted(blocks)]


def _weights(
    rounds: Sequence[_Round],
    clients: Sequence[int],
    took_part: Tensor,
    knowledge: Knowledge | None,
    tolerance: float,
    assumptions: set[str],
) -> tuple[Tensor, Tensor, float | None]:
    """Return ``(weights [R, N], totals W [R], weight residual or None)`` under the public rule.

    Raises:
        ThreatModelError: the rounds disagree on the rule, or the weights cannot be
            determined or are inconsistent with constant positive integer sample counts.
    """
    rules = {item.public.get("weighting") for item in rounds}
    if len(rules) > 1:
        raise ThreatModelError(f"the rounds use different aggregation rules: {sorted(map(str, rules))}")
    rule = rules.pop()
    if rule is None:
        assumptions.add("sample-count weighting (the aggregation rule was not disclosed to this observer)")
        rule = "sample_count"
    ones = torch.ones_like(took_part)
    if rule == "uniform":
        return ones, took_part.sum(1), None
    if rule == "expected_clients":
        stated = [item.public.get("expected_clients") for item in rounds]
        expected = [float(value) for value in stated if isinstance(value, (int, float))]
        if len(expected) != len(rounds):
            raise ThreatModelError("the views do not state the expected number of clients the sums are divided by")
        return ones, torch.tensor(expected, dtype=torch.float64), None
    if rule != "sample_count":
        raise ThreatModelError(f"unknown aggregation rule {rule!r}")
    disclosed = [item.public.get("weights") for item in rounds]
    if all(isinstance(found, dict) for found in disclosed):
        column = {client: j for j, client in enumerate(clients)}
        weights = torch.zeros_like(took_part)
        for t, found in enumerate(disclosed):
            assert isinstance(found, dict)
            for client, value in found.items():
                if int(client) in column:
                    weights[t, column[int(client)]] = float(value)
        return weights, (weights * took_part).sum(1), None
    stated = [item.public.get("total_weight") for item in rounds]
    if all(isinstance(value, (int, float)) for value in stated):
        totals = torch.tensor(stated, dtype=torch.float64)
        counts, residual = _solve_sample_counts(took_part, totals, tolerance)
        return counts.expand_as(took_part).clone(), totals, residual
    assumed = knowledge.client_weights if knowledge is not None and knowledge.client_weights else {}
    if all(client in assumed for client in clients):
        assumptions.add("aggregation weights of the participants from knowledge.client_weights")
        counts = torch.tensor([assumed[client] for client in clients], dtype=torch.float64)
    else:
        batch_sizes = {item.public.get("batch_size") for item in rounds}
        algorithms = {item.public.get("algorithm") for item in rounds}
        batch_size = batch_sizes.pop() if len(batch_sizes) == 1 else None
        if algorithms != {"fedsgd"} or not isinstance(batch_size, int):
            missing = sorted(set(clients) - set(assumed))
            raise ThreatModelError(
                f"the views do not disclose the aggregation weights of clients {missing}; "
                "declare them in knowledge.client_weights"
            )
        assumptions.add(f"every participant drew a full FedSGD batch of {batch_size} samples")
        counts = torch.full((len(clients),), float(batch_size), dtype=torch.float64)
    weights = counts.expand_as(took_part).clone()
    return weights, (weights * took_part).sum(1), None


def _solve_sample_counts(took_part: Tensor, totals: Tensor, tolerance: float) -> tuple[Tensor, float]:
    """Return per-client sample counts ``n`` solving ``A n = W`` and the least-squares residual ``||A n - W||``.

    Counts are snapped to integers where identifiable (the secure sum of integer weights is
    exact, so only float error is removed); the others get the mean total per participant,
    a placeholder that never reaches an estimate (a client identifiable in a window is
    identifiable here, with all rounds).

    Raises:
        ThreatModelError: an identifiable count is not a positive integer, or the totals
            do not fit constant counts.
    """
    solved = disaggregate(took_part, totals[:, None], tolerance=tolerance)
    raw = solved.updates[:, 0]
    counts = raw.round()
    known = solved.identifiable
    bad = known & (((raw - counts).abs() > _INTEGER_SLACK) | (counts < 1))
    if bool(bad.any()):
        raise ThreatModelError(
            f"the summed weights do not fit constant positive integer sample counts (solved {raw[bad].tolist()})"
        )
    residual = solved.residual_norm
    if residual > _FIT_SLACK * float(totals.norm()):
        raise ThreatModelError(f"the summed weights do not fit constant sample counts (residual {residual:g})")
    counts[~known] = float(totals.sum() / took_part.sum())
    return counts, residual


def _why_unidentifiable(
    rounds: Sequence[_Round], clients: Sequence[int], stats: Sequence[Disaggregation], drift: DriftModel
) -> str:
    """One line saying why no client's update could be separated."""
    if len({item.participants for item in rounds}) == 1:
        return (
            f"participation never varies: every round had the same participants {list(rounds[0].participants)}, "
            "so only their sum is determined"
        )
    unknowns = len(clients) * (2 if drift == "linear" else 1)
    best = max(item.rank for item in stats)
    return (
        f"no client's update is identifiable: the participation matrix of every window has rank at most {best} "
        f"for {unknowns} unknowns ({len(clients)} clients, {drift} drift); more rounds per window or more "
        "varied participation are needed"
    )
