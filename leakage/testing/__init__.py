"""Assertions for users' own test suites: does a scheme hide single updates among N clients?

``assert_hides_single_updates(scheme, n_clients, observer=...)`` simulates a small
deployment, runs the observer's update-recovery attacks and the distinguishing-game
audit (:mod:`leakage.quantify`), and raises ``AssertionError`` (with the measured numbers)
when the observer recovers the target's individual update, when its normalised leakage
exceeds ``max_leakage``, or when the audit's empirical epsilon lower bound exceeds
``max_epsilon``. ``assert_leaks_single_updates`` is its opposite, for tests that pin down
a known weakness (secure aggregation with two participants).
``assert_recording_hides_single_updates`` and ``assert_recording_leaks_single_updates``
ask the same of a recording of a real run, against its canary clients
(:mod:`leakage.testing.recording`). The pytest plugin
(:mod:`leakage.testing.plugin`, registered as an entry point) offers both as fixtures.

A note on what "hides" can mean: secure aggregation hides the *update* among many
clients, but the audit still sees which of two known records the target trained on
with an AUC well above 0.5 among tens of clients (a distinctive record moves the
aggregate); ``max_epsilon`` bounds only what the audit can prove at its confidence.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from leakage.errors import ConfigError
from leakage.quantify import parse_spec, score
from leakage.testing.recording import (
    assert_recording_hides_single_updates,
    assert_recording_leaks_single_updates,
    measure_recording_leakage,
)
from leakage.testing.single_update import SingleUpdateLeakage

__all__ = [
    "DEFAULT_TASK",
    "MembershipLeakage",
    "SingleUpdateLeakage",
    "assert_hides_single_updates",
    "assert_leaks_single_updates",
    "assert_membership_tpr_below",
    "assert_recording_hides_single_updates",
    "assert_recording_leaks_single_updates",
    "measure_membership",
    "measure_recording_leakage",
    "measure_single_update_leakage",
]

#: A task small enough for a unit test: digits, a sigmoid MLP, FedSGD on one sample.
DEFAULT_TASK: Mapping[str, Any] = {
    "dataset": "digits",
    "model": "mlp",
    "model_options": {"hidden": [16], "activation": "sigmoid"},
    "algorithm": "fedsgd",
    "batch_size": 1,
    "lr": 0.1,
    "rounds": 2,
}


def measure_single_update_leakage(
    scheme: str,
    n_clients: int,
    *,
    observer: str = "server",
    task: Mapping[str, Any] | None = None,
    scheme_options: Mapping[str, Any] | None = None,
    audit_trials: int | None = 32,
    seed: int = 0,
    threat: str = "passive",
    attack: str | None = None,
) -> SingleUpdateLeakage:
    """Simulate ``scheme`` with ``n_clients`` and measure what ``observer`` learns about client 0.

    Args:
        scheme: a scheme name (or comma-separated composition).
        n_clients: clients, all taking part in every round.
        observer: ``server``, ``participant``, ``coalition``, ``eavesdropper`` or ``public``.
        task: the learning task (``spec.task`` fields); :data:`DEFAULT_TASK` if omitted.
        scheme_options: the scheme's options (``{"checks": [...]}`` for the client checks).
        audit_trials: rounds of the distinguishing game, or ``None`` to skip it.
        seed: the experiment seed.
        threat: ``passive`` (the observer reads its views) or ``active``: the server may also
            deviate, and the ``malicious_server``'s attacks are measured
            (:mod:`leakage.quantify.active`; no audit game).
        attack: under ``active``, only this attack (``model_inconsistency``, ``survivor_split``,
            ``key_substitution``, ``sybil``); ``None``: the worst of them.

    Raises:
        ConfigError: a bad scheme, observer, threat, attack or option (one line naming it).
    """
    from leakage.checks import require_choice
    from leakage.quantify.active import ACTIVE_ATTACKS, MALICIOUS_SERVER

    require_choice("threat", threat, ("passive", "active"))
    if attack is not None:
        if threat != "active":
            raise ConfigError("attack names an active server's attack; it needs threat='active'")
        require_choice("attack", attack, ACTIVE_ATTACKS.names())
    if threat == "active":
        observer, audit_trials = MALICIOUS_SERVER, None
    spec = parse_spec({
        "name": f"{scheme} with {n_clients} clients",
        "task": dict(task if task is not None else DEFAULT_TASK),
        "deployments": [{"name": f"{n_clients}-clients", "n_clients": n_clients}],
        "schemes": [scheme],
        "scheme_options": {scheme: dict(scheme_options)} if scheme_options else {},
        "observers": [observer],
        "attacks": [{"name": "round_difference"}, {"name": "disaggregation"}],
        "audit": {"trials": audit_trials} if audit_trials is not None else False,
        "seeds": [seed],
    })
    report = score(spec).to_dict()
    rows = [r for r in report["results"] if r["scheme"] == scheme and r["observer"] == observer
            and (attack is None or r["attack"] == attack)]
    ran = [r for r in rows if r["status"] == "ok"]
    worst = max(ran, key=lambda r: r["leakage"], default=None)
    audits = [a for a in report["audits"] if a["scheme"] == scheme and a["observer"] == observer]
    audit = audits[0] if audits else None
    return SingleUpdateLeakage(
        scheme=scheme,
        n_clients=n_clients,
        observer=observer,
        leakage=worst["leakage"] if worst else 0.0,
        individual=any(r["metrics"].get("mixed_clients") == 1 for r in ran),
        worst=f"{worst['attack']} ({worst['metric']} {worst['value']:.3g})" if worst else "no attack applies",
        audit_auc=None if audit is None else audit["auc"],
        audit_advantage=None if audit is None else audit["tpr"] - audit["fpr"],
        epsilon_lower_bound=None if audit is None else audit["epsilon_lower_bound"],
        rows=tuple(rows),
    )


def assert_hides_single_updates(
    scheme: str,
    n_clients: int,
    observer: str = "server",
    *,
    max_leakage: float = 0.25,
    max_epsilon: float = 1.0,
    **options: Any,
) -> SingleUpdateLeakage:
    """Assert that ``observer`` recovers no single client's update under ``scheme`` among ``n_clients``.

    Fails when the observer gets the target's individual update, when its leakage
    exceeds ``max_leakage``, or when the audit proves epsilon above ``max_epsilon``.
    ``options`` go to :func:`measure_single_update_leakage`; with ``threat="active"`` the
    server may deviate, so ``assert_hides_single_updates("secagg", 100, threat="active")``
    fails, and passes with the checks that stop the attack named
    (``attack="model_inconsistency", scheme_options={"checks": ["bind_model"]}``).

    Raises:
        AssertionError: the scheme did not hide the update; the message has the numbers.
    """
    measured = measure_single_update_leakage(scheme, n_clients, observer=observer, **options)
    problems = []
    if measured.individual:
        problems.append("the observer recovered the target's individual update")
    if measured.leakage > max_leakage:
        problems.append(f"leakage {measured.leakage:.2f} > {max_leakage}")
    if measured.epsilon_lower_bound is not None and measured.epsilon_lower_bound > max_epsilon:
        problems.append(f"the audit proves epsilon >= {measured.epsilon_lower_bound:.2f} > {max_epsilon}")
    if problems:
        raise AssertionError(f"{scheme} does not hide single updates: {'; '.join(problems)} [{measured.describe()}]")
    return measured


def assert_leaks_single_updates(
    scheme: str,
    n_clients: int,
    observer: str = "participant",
    *,
    min_leakage: float = 0.9,
    **options: Any,
) -> SingleUpdateLeakage:
    """Assert that ``observer`` does recover the target's individual update (a known weakness).

    Raises:
        AssertionError: the observer did not get the individual update with leakage
            at least ``min_leakage``; the message has the numbers.
    """
    measured = measure_single_update_leakage(scheme, n_clients, observer=observer, **options)
    if not measured.individual or measured.leakage < min_leakage:
        raise AssertionError(
            f"expected {scheme} to leak single updates to the {observer}, but it did not [{measured.describe()}]"
        )
    return measured


@dataclass(frozen=True)
class MembershipLeakage:
    """How well one observer tells the target's training records from held-out ones.

    Attributes:
        scheme, n_clients, observer, attack: the setting.
        auc: the attack's AUC.
        tpr, fpr: the best TPR at a false-positive rate of at most ``target_fpr``, and
            the FPR it realised.
        true_positives, members, false_positives, non_members: the counts behind them.
        target_fpr: the rate asked for.
        released_auc: the same attack on the released model alone (what ``mpc`` reveals).
    """

    scheme: str
    n_clients: int
    observer: str
    attack: str
    auc: float
    tpr: float
    fpr: float
    true_positives: int
    members: int
    false_positives: int
    non_members: int
    target_fpr: float
    released_auc: float

    def describe(self) -> str:
        """One line with every measured number."""
        return (
            f"{self.scheme} with {self.n_clients} clients, {self.observer} via {self.attack}: AUC {self.auc:.3f} "
            f"(released model {self.released_auc:.3f}), TPR {self.tpr:.3f} at FPR {self.fpr:.4f} <= "
            f"{self.target_fpr:g} ({self.true_positives} of {self.members} members, {self.false_positives} of "
            f"{self.non_members} non-members)"
        )


def measure_membership(
    scheme: str,
    n_clients: int,
    *,
    observer: str = "public",
    attack: str = "loss_threshold",
    attack_options: Mapping[str, Any] | None = None,
    target_fpr: float = 1e-2,
    task: Mapping[str, Any] | None = None,
    scheme_options: Mapping[str, Any] | None = None,
    seed: int = 0,
) -> MembershipLeakage:
    """Simulate ``scheme`` with ``n_clients`` and measure ``observer``'s membership inference on client 0's records.

    The report's membership row gives the TPR at 0.01%, 0.1% and 1% FPR; ``target_fpr``
    picks one of those.

    Raises:
        ConfigError: a bad scheme, observer, attack or option, or a ``target_fpr`` the
            report does not carry (one line naming it).
    """
    from leakage.checks import require_choice
    from leakage.metrics import LOW_FPRS

    require_choice("target_fpr", target_fpr, LOW_FPRS)
    spec = parse_spec({
        "name": f"{scheme} with {n_clients} clients",
        "task": dict(task if task is not None else DEFAULT_TASK),
        "deployments": [{"name": f"{n_clients}-clients", "n_clients": n_clients}],
        "schemes": [scheme],
        "scheme_options": {scheme: dict(scheme_options)} if scheme_options else {},
        "observers": [observer],
        "attacks": [{"name": attack, "options": dict(attack_options or {})}],
        "audit": False,
        "seeds": [seed],
    })
    report = score(spec).to_dict()
    rows = [
        r for r in report["results"]
        if r["scheme"] == scheme and r["observer"] == observer and r["attack"] == attack and r["status"] == "ok"
    ]
    if not rows:
        raise AssertionError(f"{attack} produced no membership row for the {observer} under {scheme}")
    row, key = rows[0], f"{target_fpr:g}"
    figures = row["metrics"]
    return MembershipLeakage(
        scheme=scheme, n_clients=n_clients, observer=observer, attack=attack, auc=row["value"],
        tpr=figures[f"tpr@{key}"], fpr=figures[f"fpr@{key}"],
        true_positives=int(figures[f"true_positives@{key}"]), members=int(figures["members"]),
        false_positives=int(figures[f"false_positives@{key}"]), non_members=int(figures["non_members"]),
        target_fpr=target_fpr, released_auc=row["baseline"],
    )


def assert_membership_tpr_below(
    scheme: str,
    n_clients: int,
    max_tpr: float,
    observer: str = "public",
    *,
    target_fpr: float = 1e-2,
    **options: Any,
) -> MembershipLeakage:
    """Assert that ``observer``'s membership TPR at ``target_fpr`` stays at most ``max_tpr``.

    ``options`` go to :func:`measure_membership`.

    Raises:
        AssertionError: the TPR exceeded ``max_tpr``; the message has the numbers and counts.
    """
    measured = measure_membership(scheme, n_clients, observer=observer, target_fpr=target_fpr, **options)
    if measured.tpr > max_tpr:
        raise AssertionError(
            f"membership TPR {measured.tpr:.3f} > {max_tpr} at FPR <= {target_fpr:g} [{measured.describe()}]"
        )
    return measured
