"""What one observer learned about a target's single update: the result of the single-update assertions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["SingleUpdateLeakage"]


@dataclass(frozen=True)
class SingleUpdateLeakage:
    """What one observer learned about the target's single update under one scheme.

    Attributes:
        scheme, n_clients, observer: the setting.
        leakage: the largest normalised update-recovery leakage of the observer (0: no
            more than the released model reveals, 1: the update in the clear).
        individual: the observer recovered the target's own update (not a mix).
        worst: ``"attack (metric value)"`` of the worst row.
        audit_auc, audit_advantage, epsilon_lower_bound: the distinguishing game's AUC,
            held-out TPR - FPR, and empirical epsilon lower bound (``None`` without audit).
        rows: the observer's scored rows, as ``leakage score`` reports them.
    """

    scheme: str
    n_clients: int
    observer: str
    leakage: float
    individual: bool
    worst: str
    audit_auc: float | None = None
    audit_advantage: float | None = None
    epsilon_lower_bound: float | None = None
    rows: Sequence[Mapping[str, Any]] = field(default_factory=tuple)

    def describe(self) -> str:
        """One line with every measured number."""
        audit = (
            "" if self.audit_auc is None
            else f", audit AUC {self.audit_auc:.2f}, advantage {self.audit_advantage:.2f}, "
            f"epsilon >= {self.epsilon_lower_bound:.2f}"
        )
        kind = "its individual update" if self.individual else "only mixes of updates"
        return (
            f"{self.scheme} with {self.n_clients} clients, {self.observer}: {kind}, leakage {self.leakage:.2f} "
            f"(worst: {self.worst}){audit}"
        )
