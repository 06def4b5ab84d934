"""The standard observers' views: the helper's rules, and the table of what each scheme shows whom."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
import torch

from leakage import simulate
from leakage.aggregation import RoundContext, create_scheme, observer_views
from leakage.views import EAVESDROPPER, PUBLIC, SERVER, RoundView, parse_received_key, upload_key

START = {"lr": 0.1}


def _context(*, final: bool = True, dropped: frozenset[int] = frozenset({2})) -> RoundContext:
    return RoundContext(
        round_index=3,
        is_final_round=final,
        params_before=torch.zeros(2),
        client_ids=(0, 1, 2),
        updates=torch.arange(6.0).reshape(3, 2),
        weights=torch.ones(3, dtype=torch.float64),
        dropped=dropped,
        server_lr=1.0,
        public=START,
        client_data={c: torch.tensor([10 * c]) for c in range(3)},
    )


def _views(context: RoundContext, **options: Any) -> dict[str, RoundView]:
    after = torch.ones(2)
    wire = {upload_key(c): context.updates[c] for c in (0, 1)}
    return observer_views(
        context, after, participants=(0, 1), public={**START, "weights": {"0": 1.0, "1": 1.0}}, wire=wire, **options
    )


# -- the helper's rules ---------------------------------------------------------------


def test_the_standard_views_are_the_plain_ones() -> None:
    context = _context()

    views = _views(context)

    assert list(views) == [SERVER, EAVESDROPPER, "client:0", "client:1", "client:2", PUBLIC]
    server, wire = views[SERVER], views[EAVESDROPPER]
    for view in (server, wire):
        assert torch.equal(view.params_before, context.params_before) and torch.equal(view.params_after, torch.ones(2))
        assert set(view.received) == {"update:client:0", "update:client:1"} and view.participants == {0, 1}
        assert view.own == {}
    assert set(server.public) == {"lr", "weights"} and wire.public == {}
    finished, dropped = views["client:1"], views["client:2"]
    assert torch.equal(finished.own["update"], context.updates[1]) and set(finished.own) == {"update", "data_indices"}
    assert torch.equal(finished.params_after, torch.ones(2)) and finished.participants == {0, 1}
    assert set(finished.public) == {"lr", "weights"} and finished.received == {}
    assert dropped.params_after is None and dropped.participants == frozenset() and dropped.public == START
    assert torch.equal(dropped.params_before, context.params_before)
    assert torch.equal(views[PUBLIC].params_after, torch.ones(2)) and views[PUBLIC].params_before is None


def test_only_the_final_round_has_a_public_view() -> None:
    assert PUBLIC not in _views(_context(final=False))


def test_server_extras_reach_the_server_alone() -> None:
    views = _views(
        _context(),
        server_received={"aggregate": torch.ones(2)},
        server_public={"total_weight": 2.0},
        server_own={"model_share": torch.zeros(3, dtype=torch.int64)},
    )

    assert "aggregate" in views[SERVER].received and views[SERVER].public["total_weight"] == 2.0
    assert set(views[SERVER].own) == {"model_share"}
    for observer in (EAVESDROPPER, "client:0"):
        assert "aggregate" not in views[observer].received and "total_weight" not in views[observer].public
        assert "model_share" not in views[observer].own


def test_client_hooks_add_what_each_client_received_and_holds() -> None:
    context = _context()

    views = _views(
        context,
        client_received=lambda client: {"aggregate": b"sum"} if client != 2 else {},
        client_own=lambda client: {"sent": 2 * context.updates[client]},
        finished_public={"total_weight": 2.0},
    )

    assert views["client:0"].received == {"aggregate": b"sum"} and views["client:2"].received == {}
    assert torch.equal(views["client:2"].own["sent"], 2 * context.updates[2])
    assert views["client:0"].public["total_weight"] == 2.0 and "total_weight" not in views["client:2"].public


def test_finished_clients_can_differ_from_the_participants() -> None:
    views = _views(_context(), finished=(1,))

    assert views["client:0"].params_after is None and views["client:0"].public == START
    assert views["client:1"].participants == {0, 1}


def test_clients_need_not_be_told_who_took_part() -> None:
    views = _views(_context(), clients_told_participants=False)

    assert views["client:0"].participants == frozenset() and views["client:0"].params_after is not None
    assert views[SERVER].participants == {0, 1}


def test_an_aborted_round_finishes_nobody_and_releases_the_unchanged_model() -> None:
    context = _context()

    views = observer_views(context, None, participants=(), public=START)

    assert all(views[f"client:{c}"].params_after is None for c in range(3))
    assert torch.equal(views[PUBLIC].params_after, context.params_before)


def test_under_models_clients_only_the_clients_hold_a_global_model() -> None:
    views = _views(_context(), models="clients")

    for observer in (SERVER, EAVESDROPPER):
        assert views[observer].params_before is None and views[observer].params_after is None
    assert views["client:0"].params_before is not None and views["client:0"].params_after is not None


@pytest.mark.parametrize("final", [False, True])
def test_under_models_final_nothing_but_the_released_model_is_opened(final: bool) -> None:
    views = observer_views(_context(final=final), torch.ones(2), participants=(), public=START, models="final")

    for observer in (SERVER, EAVESDROPPER, "client:0", "client:2"):
        view = views[observer]
        assert view.params_before is None and view.participants == frozenset() and view.public == START
        assert (view.params_after is not None) == final
        assert "update" not in view.own
    assert set(views["client:0"].own) == {"data_indices"}


def test_an_unknown_disclosure_and_an_undeclared_key_are_rejected() -> None:
    with pytest.raises(ValueError, match="models must be one of clear, clients, final"):
        _views(_context(), models="server")
    with pytest.raises(ValueError, match="received key 'plain:client:0'"):
        observer_views(_context(), torch.ones(2), participants=(0,), public=START, wire={"plain:client:0": b""})


# -- what every scheme shows whom ------------------------------------------------------

# The simulator publishes these every round.
ROUND = {"algorithm", "lr", "local_epochs", "batch_size", "server_lr", "weighting", "loss"}
DP = {"expected_clients", "clip_norm", "noise_multiplier", "delta", "accountant"}
LDP = {"ldp_clip_norm", "ldp_noise_multiplier", "ldp_delta", "ldp_accountant", "ldp_epsilon"}
SECAGG = {"ring_bits", "clip_range", "quantization_step", "threshold"}
COMPRESSION = {"compression_method", "compression_keep"}
HE = {"scheme", "poly_modulus_degree", "coeff_mod_bit_sizes", "scale_bits"}
SECAGG_WIRE = {"keys", "share", "masked", "unmask"}
INBOX = {"keys", "share"}  # a secagg client gets every public key and the shares sent to it
OWN = {"update", "data_indices"}
SECAGG_OWN = OWN | {"clipped_values"}


@dataclass(frozen=True)
class Seen:
    """What one role saw in the final round of the table's simulation."""

    models: str  # which global models: "before", "after", "before,after" or ""
    received: frozenset[str]  # kinds of received keys (leakage.views.ReceivedKey.kind)
    own: frozenset[str]
    told_participants: bool
    public: frozenset[str]


def seen(models: str, received: set[str], own: set[str], told: bool, public: set[str]) -> Seen:
    return Seen(models, frozenset(received), frozenset(own), told, frozenset(public))


NOTHING: set[str] = set()
RELEASED = seen("after", NOTHING, NOTHING, False, NOTHING)

# Roles: the server, the eavesdropper, a client whose upload arrived ("finished"), a
# client that dropped ("dropped"), and the public. Scheme docstrings say the same in words.
TABLE: dict[str, dict[str, Seen]] = {
    "plain": {
        "server": seen("before,after", {"update"}, NOTHING, True, ROUND | {"weights"}),
        "eavesdropper": seen("before,after", {"update"}, NOTHING, True, NOTHING),
        "finished": seen("before,after", NOTHING, OWN, True, ROUND | {"weights"}),
        "dropped": seen("before", NOTHING, OWN, False, ROUND),
        "public": RELEASED,
    },
    "ldp": {
        "server": seen("before,after", {"update"}, NOTHING, True, ROUND | LDP | {"weights"}),
        "eavesdropper": seen("before,after", {"update"}, NOTHING, True, NOTHING),
        "finished": seen("before,after", NOTHING, OWN | {"sent"}, True, ROUND | LDP | {"weights"}),
        "dropped": seen("before", NOTHING, OWN | {"sent"}, False, ROUND | LDP),
        "public": RELEASED,
    },
    "dp": {
        "server": seen("before,after", {"update"}, NOTHING, True, ROUND | DP | {"epsilon"}),
        "eavesdropper": seen("before,after", {"update"}, NOTHING, True, NOTHING),
        "finished": seen("before,after", NOTHING, OWN | {"sent"}, False, ROUND | DP | {"epsilon"}),
        "dropped": seen("before", NOTHING, OWN | {"sent"}, False, ROUND | DP),
        "public": RELEASED,
    },
    "secagg": {
        "server": seen(
            "before,after", SECAGG_WIRE | {"aggregate"}, NOTHING, True, ROUND | SECAGG | {"neighbours", "total_weight"}
        ),
        "eavesdropper": seen("before,after", SECAGG_WIRE, NOTHING, True, NOTHING),
        "finished": seen("before,after", INBOX, SECAGG_OWN, True, ROUND | SECAGG | {"neighbours"}),
        "dropped": seen("before", INBOX, SECAGG_OWN, False, ROUND | SECAGG),
        "public": RELEASED,
    },
    "compression,secagg": {
        "server": seen(
            "before,after",
            SECAGG_WIRE | {"aggregate"},
            NOTHING,
            True,
            ROUND | SECAGG | COMPRESSION | {"neighbours", "total_weight"},
        ),
        "eavesdropper": seen("before,after", SECAGG_WIRE, NOTHING, True, NOTHING),
        "finished": seen(
            "before,after", INBOX, SECAGG_OWN | {"sent"}, True, ROUND | SECAGG | COMPRESSION | {"neighbours"}
        ),
        "dropped": seen("before", INBOX, SECAGG_OWN | {"sent"}, False, ROUND | SECAGG | COMPRESSION),
        "public": RELEASED,
    },
    "he": {
        "server": seen("", {"public_context", "ciphertext", "aggregate"}, NOTHING, True, ROUND | HE),
        "eavesdropper": seen("", {"public_context", "ciphertext", "aggregate"}, NOTHING, True, NOTHING),
        "finished": seen("before,after", {"aggregate"}, OWN, True, ROUND | HE | {"total_weight"}),
        "dropped": seen("before", NOTHING, OWN, False, ROUND | HE),
        "public": RELEASED,
    },
    "mpc": {
        "server": seen("after", NOTHING, NOTHING, False, ROUND | {"mpc_backend"}),
        "eavesdropper": seen("after", NOTHING, NOTHING, False, ROUND | {"mpc_backend"}),
        "finished": seen("after", NOTHING, {"data_indices"}, False, ROUND | {"mpc_backend"}),
        "dropped": seen("after", NOTHING, {"data_indices"}, False, ROUND | {"mpc_backend"}),
        "public": RELEASED,
    },
}

OPTIONS: dict[str, dict[str, Any]] = {
    "ldp": {"clip_norm": 1.0, "noise_multiplier": 0.1},
    "dp": {"clip_norm": 1.0, "noise_multiplier": 0.1},
    "secagg": {"threshold": 2, "dropout_stage": "masked_input"},
    "compression,secagg": {"compression": {"keep": 0.5}, "secagg": {"threshold": 2, "dropout_stage": "masked_input"}},
}


def _seen(view: RoundView) -> Seen:
    shown = (("before", view.params_before), ("after", view.params_after))
    models = ",".join(name for name, model in shown if model is not None)
    kinds = {parse_received_key(key).kind for key in view.received}
    return seen(models, kinds, set(view.own), bool(view.participants), set(view.public))


@pytest.mark.parametrize("name", list(TABLE))
def test_each_scheme_shows_each_observer_what_the_table_says(name: str, tiny_digits: Any) -> None:
    if name == "he":
        pytest.importorskip("tenseal")
    scheme = create_scheme(name, **OPTIONS.get(name, {}))

    transcript = simulate(dataset=tiny_digits, scheme=scheme, n_clients=5, rounds=2, seed=3, dropout=0.3)

    final = transcript.rounds[-1]
    finished, dropped = final.survivors[0], (set(final.sampled) - set(final.survivors)).pop()
    roles = {
        "server": final.views[SERVER],
        "eavesdropper": final.views[EAVESDROPPER],
        "finished": final.views[f"client:{finished}"],
        "dropped": final.views[f"client:{dropped}"],
        "public": final.views[PUBLIC],
    }
    assert set(final.views) == {SERVER, EAVESDROPPER, PUBLIC} | {f"client:{c}" for c in final.sampled}
    assert {role: _seen(view) for role, view in roles.items()} == TABLE[name]
    assert PUBLIC not in transcript.rounds[0].views
