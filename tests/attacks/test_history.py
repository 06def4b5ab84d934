import json

import pytest
import torch

from attacks import HistoryAttack, RecoveredUpdate, UpdateEstimate, group_by_round
from leakage.errors import ThreatModelError
from leakage.views import RoundView


class _Count(HistoryAttack[UpdateEstimate]):
    name = "count"
    observer = "the server"
    role = "server"

    def _run(self, history, knowledge, *, generator, show_progress):
        return UpdateEstimate(self.name, history[0].observer, (), details={"views": float(len(history))})


class _Anyone(_Count):
    role = "any"


def _view(observer: str, round_index: int = 0) -> RoundView:
    return RoundView(round_index, observer, torch.zeros(2), torch.ones(2))


def test_a_server_attack_refuses_participant_views_and_times_its_run() -> None:
    with pytest.raises(ThreatModelError, match="server or an eavesdropper"):
        _Count().run([_view("client:1")])
    result = _Count().run([_view("server", 1), _view("server", 0)])

    assert result.details["views"] == 2 and result.seconds > 0


def test_an_any_role_attack_takes_one_observer_or_a_coalition_of_participants() -> None:
    assert _Anyone().run([_view("client:1"), _view("client:2")]).observer == "client:1"
    with pytest.raises(ThreatModelError, match="coalition"):
        _Anyone().run([_view("server"), _view("client:2")])
    with pytest.raises(ThreatModelError, match="at least one"):
        _Anyone().run([])


def test_views_are_grouped_by_round_in_order() -> None:
    grouped = group_by_round([_view("client:1", 2), _view("client:0", 0), _view("client:0", 2)])

    assert list(grouped) == [0, 2] and [v.observer for v in grouped[2]] == ["client:1", "client:0"]


def test_an_estimate_of_several_clients_is_not_an_observation_and_serialises() -> None:
    mixed = RecoveredUpdate((3,), torch.zeros(2), torch.ones(2), frozenset({1, 2}), count=2, weight=8.0)
    single = RecoveredUpdate((4,), torch.zeros(2), torch.ones(2), frozenset({5}), count=1)
    estimate = UpdateEstimate("x", "client:0", (mixed, single), ("an assumption",))

    with pytest.raises(ThreatModelError, match=r"clients \[1, 2\]"):
        mixed.observation()
    assert estimate.observation(5).round_index == 4 and estimate.observation(5).client == 5
    with pytest.raises(ThreatModelError, match="client 1 in round 3"):
        estimate.observation(1, 3)
    assert json.loads(json.dumps(estimate.to_dict()))["recovered"][0] == {
        "rounds": [3], "clients": [1, 2], "count": 2, "weight": 8.0, "norm": pytest.approx(2**0.5),
    }
