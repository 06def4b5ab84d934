import torch

from leakage import RoundView, Transcript, simulate
from leakage.transcript import RoundRecord


def test_bytes_messages_survive_safe_loading(tiny_digits, tmp_path) -> None:
    transcript = simulate(dataset=tiny_digits, n_clients=2, rounds=1, seed=0)
    record = transcript.rounds[0]
    ciphertext = bytes(range(256)) * 3
    view = RoundView(round_index=0, observer="server", params_before=None, params_after=None,
                     received={"aggregate": ciphertext, "masked:client:0": torch.arange(3)})
    patched = Transcript(
        settings=transcript.settings,
        layout=transcript.layout,
        initial_params=transcript.initial_params,
        rounds=(RoundRecord(**{**record.__dict__, "views": {"server": view}}),),
        truth=transcript.truth,
    )

    patched.save(tmp_path / "t.pt")
    loaded = Transcript.load(tmp_path / "t.pt")

    received = loaded.rounds[0].views["server"].received
    assert received["aggregate"] == ciphertext
    assert torch.equal(received["masked:client:0"], torch.arange(3))


def test_shared_tensors_are_stored_once(tiny_digits, tmp_path) -> None:
    transcript = simulate(dataset=tiny_digits, n_clients=8, rounds=2, seed=0, model="mlp", model_options={"hidden": (64,)})
    transcript.save(tmp_path / "t.pt")

    updates_bytes = sum(t.updates.numel() * 4 for t in transcript.truth.rounds)
    # The server, eavesdropper and clients reference rows of the truth's update matrix.
    assert (tmp_path / "t.pt").stat().st_size < 1.6 * updates_bytes + 400_000


def test_ground_truth_reports_property_fractions(tiny_digits) -> None:
    transcript = simulate(dataset=tiny_digits, n_clients=4, rounds=1, seed=0)
    name = min(tiny_digits.properties)
    flags = tiny_digits.properties[name]

    fraction = transcript.truth.client_property_fraction(name, 2)

    assert fraction == float(flags[transcript.truth.partition[2]].float().mean())
