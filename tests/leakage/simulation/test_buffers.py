"""Models with buffers end to end: each client's running statistics, their aggregate, who sees which."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn

from leakage import load_dataset, simulate
from leakage.models import BufferLayout, flatten_buffers
from leakage.transcript import Transcript


def _bn_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 10)
    )


def _run(**settings: Any) -> Transcript:
    options: dict[str, Any] = dict(
        model=_bn_net(), n_clients=4, rounds=2, algorithm="fedavg", batch_size=3,
        partition_options={"samples_per_client": 6}, seed=2,
    )
    options.update(settings)
    return simulate(**options)


def test_the_buffer_layout_names_running_statistics_and_the_counter() -> None:
    layout = BufferLayout.of(_bn_net())
    assert layout.names == ("1.running_mean", "1.running_var", "1.num_batches_tracked")
    assert layout.num_entries == 9
    assert flatten_buffers(_bn_net()).tolist()[:4] == [0.0] * 4


def test_each_clients_buffers_are_what_its_own_training_moves() -> None:
    """Oracle: a plain nn.Module in training mode, run on the client's batches in its order."""
    transcript = _run(rounds=1, algorithm="fedsgd", batch_size=None)
    dataset = load_dataset("digits")
    record, truth = transcript.rounds[0], transcript.truth.rounds[0]
    for client in record.sampled:
        net = _bn_net()
        net.train()(dataset.inputs[truth.sample_order[client]])  # the forward moves the running statistics
        view = record.views[f"client:{client}"]
        torch.testing.assert_close(view.own["buffers"], flatten_buffers(net))


def test_the_loop_and_vmap_give_the_same_buffers() -> None:
    vectorised, loop = _run(), _run(vectorise=False)
    for a, b in zip(vectorised.rounds, loop.rounds, strict=True):
        torch.testing.assert_close(a.buffers_after, b.buffers_after)
        torch.testing.assert_close(a.params_after, b.params_after)


def test_the_server_averages_the_buffers_it_receives_weighted_by_samples() -> None:
    transcript = _run(partition="quantity", partition_options={"alpha": 1.0})  # unequal sample counts
    for record in transcript.rounds:
        server = record.views["server"]
        weights = {int(c): float(w) for c, w in server.public["weights"].items()}
        received = {c: server.received[f"buffers:client:{c}"] for c in record.survivors}
        total = sum(weights[c] for c in record.survivors)
        mean = sum(weights[c] / total * received[c].double() for c in record.survivors)
        torch.testing.assert_close(record.buffers_after, mean.float())
    public = transcript.rounds[-1].views["public"]  # the released model, with its buffers
    assert public.buffers_after is not None
    torch.testing.assert_close(public.buffers_after, transcript.final_buffers)


@pytest.mark.parametrize("scheme", ["secagg", "he"])
def test_under_secure_aggregation_no_single_clients_buffers_are_seen(scheme: str) -> None:
    transcript = _run(scheme=scheme, rounds=1, n_clients=3)
    record = transcript.rounds[0]
    for name, view in record.views.items():
        assert not any(key.startswith("buffers:") for key in view.received), name
        if name.startswith("client:"):
            assert "buffers" in view.own  # its own, which it computed
    # the averaged buffers travel with the released model, to whoever gets it
    for view in record.views.values():
        assert (view.buffers_after is not None) == (view.params_after is not None)
    assert record.views["client:0"].buffers_after is not None


def test_the_model_rebuilt_from_the_transcript_holds_the_final_buffers(tmp_path: Any) -> None:
    transcript = _run()
    model = transcript.build_model()
    torch.testing.assert_close(flatten_buffers(model), transcript.final_buffers)
    transcript.save(tmp_path / "t.pt")
    loaded = Transcript.load(tmp_path / "t.pt")
    assert loaded.buffer_layout == transcript.buffer_layout
    torch.testing.assert_close(loaded.rounds[1].buffers_after, transcript.rounds[1].buffers_after)
    torch.testing.assert_close(loaded.rounds[1].views["server"].buffers_after, transcript.rounds[1].buffers_after)


def test_a_model_without_buffers_carries_none() -> None:
    transcript = simulate(n_clients=2, rounds=1)
    assert transcript.buffer_layout.num_entries == 0
    assert transcript.rounds[0].buffers_after.numel() == 0
    assert transcript.rounds[0].views["server"].buffers_after is None
