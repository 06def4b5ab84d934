from typing import get_args

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from leakage.errors import ThreatModelError
from leakage.views import (
    OWN_KEYS,
    PUBLIC_KEYS,
    RECEIVED_KEYS,
    OwnKey,
    PublicKey,
    ReceivedKey,
    ReceivedKind,
    RoundView,
    parse_received_key,
    parse_upload_key,
    released_model_view,
    sender_key,
    share_key,
    upload_key,
)


def _view(**fields: object) -> RoundView:
    return RoundView(0, "client:1", torch.zeros(2), torch.ones(2), **fields)  # type: ignore[arg-type]


def test_the_literal_types_and_the_documented_tables_name_the_same_keys() -> None:
    assert set(get_args(OwnKey)) == set(OWN_KEYS)
    assert set(get_args(PublicKey)) == set(PUBLIC_KEYS)
    kinds = {pattern.partition(":")[0] for pattern in RECEIVED_KEYS}
    flat_kinds = {kind for arg in get_args(ReceivedKind) for kind in (get_args(arg) or (arg,))}
    assert kinds == flat_kinds


@pytest.mark.parametrize("pattern", list(RECEIVED_KEYS))
def test_every_received_pattern_parses_once_its_ids_are_filled_in(pattern: str) -> None:
    key = pattern.replace("<id>", "4", 1).replace("<id>", "7")

    parsed = parse_received_key(key)

    assert str(parsed) == key
    assert parsed.kind == pattern.partition(":")[0]


@given(st.integers(min_value=0, max_value=10**6))
def test_upload_keys_round_trip(client: int) -> None:
    assert parse_upload_key(upload_key(client)) == client
    assert parse_received_key(sender_key("masked", client)) == ReceivedKey("masked", client)


@given(st.integers(min_value=0, max_value=999), st.integers(min_value=0, max_value=999))
def test_share_keys_name_sender_and_recipient(sender: int, recipient: int) -> None:
    assert parse_received_key(share_key(sender, recipient)) == ReceivedKey("share", sender, recipient)


@pytest.mark.parametrize(
    "key", ["mask", "aggregate:ciphertext", "update:client:x", "update:server", "share:client:1", "update:client:-1"]
)
def test_malformed_received_keys_are_rejected_with_the_patterns(key: str) -> None:
    with pytest.raises(ValueError, match="update:client:<id>"):
        parse_received_key(key)


def test_an_upload_key_must_name_an_update() -> None:
    with pytest.raises(ValueError, match="update:client:<id>"):
        parse_upload_key("masked:client:3")
    with pytest.raises(ValueError, match="kind must be one of"):
        sender_key("aggregate", 3)  # type: ignore[arg-type]


def test_a_view_with_declared_keys_is_built() -> None:
    view = _view(
        received={upload_key(2): torch.ones(2), "aggregate": b"\x00", share_key(2, 1): b"\x01"},
        own={"update": torch.ones(2), "sent": torch.ones(2), "data_indices": torch.arange(3)},
        public={"lr": 0.1, "weights": {"1": 3.0}, "server_lr": 1.0},
    )

    assert RoundView.from_dict(view.to_dict()).public == view.public


@pytest.mark.parametrize(
    ("field", "value", "choices"),
    [
        ("own", {"gradient": torch.ones(2)}, "clipped_values, data_indices, model_share, sent, update"),
        ("public", {"learning_rate": 0.1}, "aborted, accountant, active_attack, active_powers, algorithm"),
        ("received", {"mask": torch.ones(2)}, "aggregate, public_context, update:client:<id>"),
    ],
)
def test_an_undeclared_key_is_rejected_naming_it_and_the_choices(field: str, value: object, choices: str) -> None:
    key = next(iter(value))  # type: ignore[call-overload]

    with pytest.raises(ValueError, match=f"{field} key '{key}' of observer 'client:1'") as raised:
        _view(**{field: value})

    assert choices in str(raised.value)


def test_loading_a_view_with_an_undeclared_key_fails_too() -> None:
    data = _view().to_dict()
    data["own"] = {"secret": torch.ones(1)}

    with pytest.raises(ValueError, match="own key 'secret'"):
        RoundView.from_dict(data)


def test_model_change_divides_by_the_disclosed_server_lr() -> None:
    view = RoundView(0, "server", torch.zeros(2), torch.tensor([1.0, 3.0]), public={"server_lr": 0.5})

    change = view.model_change()

    assert view.server_lr == 0.5
    assert change.dtype == torch.float64 and torch.equal(change, torch.tensor([2.0, 6.0], dtype=torch.float64))


def test_model_change_takes_a_step_of_one_when_the_server_lr_is_not_disclosed() -> None:
    view = RoundView(0, "eavesdropper", torch.ones(2), torch.tensor([2.0, 0.0]))

    assert view.server_lr is None
    assert torch.equal(view.model_change(), torch.tensor([1.0, -1.0], dtype=torch.float64))


def test_model_change_needs_both_models() -> None:
    with pytest.raises(ThreatModelError, match="did not see both global models"):
        released_model_view(3, torch.zeros(2)).model_change()
