import pytest
import torch

from leakage import RoundView, Transcript, simulate
from leakage._transcript_io import transcript_from_data, transcript_to_data
from leakage.quantify import audit_transcript, score_transcript
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


def _targets_and_all(dataset, **settings):
    common = {"dataset": dataset, "n_clients": 6, "rounds": 3, "seed": 2, **settings}
    return simulate(record_truth="targets", truth_clients=[2], **common), simulate(**common)


def test_record_truth_targets_keeps_only_the_targets_truth(tiny_digits) -> None:
    targets, everything = _targets_and_all(tiny_digits, clients_per_round=4, model_options={"hidden": (8,)})

    assert targets.truth.record_truth == "targets" and everything.truth.record_truth == "all"
    sampled_target = 0
    for kept, full in zip(targets.truth.rounds, everything.truth.rounds, strict=True):
        assert kept.client_ids == full.client_ids and torch.equal(kept.weights, full.weights)
        expected = (2,) if 2 in kept.client_ids else ()
        assert kept.recorded_ids == expected and set(kept.sample_order) == set(expected)
        assert kept.updates.shape == (len(expected), full.updates.shape[1])
        for client in kept.client_ids:
            if client == 2:
                sampled_target += 1
                assert torch.equal(kept.update_of(2), full.update_of(2))
                assert torch.equal(kept.sample_order[2], full.sample_order[2])
            else:
                with pytest.raises(ValueError, match=rf"ground truth of client {client} .* was not recorded"):
                    kept.update_of(client)
    assert sampled_target > 0
    for kept_record, full_record in zip(targets.rounds, everything.rounds, strict=True):
        assert torch.equal(kept_record.params_after, full_record.params_after)


def test_an_unsampled_client_is_named_as_such(tiny_digits) -> None:
    transcript = simulate(dataset=tiny_digits, n_clients=6, clients_per_round=2, rounds=1, seed=0)
    absent = min(set(range(6)) - set(transcript.truth.rounds[0].client_ids))

    with pytest.raises(ValueError, match=f"client {absent} was not sampled in round 0"):
        transcript.truth.rounds[0].update_of(absent)


def test_the_transcript_says_how_much_truth_it_kept(tiny_digits) -> None:
    targets, everything = _targets_and_all(tiny_digits, scheme="mpc", model="logreg")
    size = everything.layout.num_parameters * 4

    kept, full = targets.truth.kept(), everything.truth.kept()

    assert full.to_dict() == {"record_truth": "all", "clients": list(range(6)), "updates_kept": 18,
                              "updates_sampled": 18, "update_bytes": 18 * size}
    assert kept.to_dict() == {"record_truth": "targets", "clients": [2], "updates_kept": 3,
                              "updates_sampled": 18, "update_bytes": 3 * size}
    # under mpc no view holds an update, so the kept rows are all the updates the transcript holds
    assert all(r.updates.untyped_storage().nbytes() == size for r in targets.truth.rounds)


def test_kept_truth_survives_the_disk(tiny_digits, tmp_path) -> None:
    targets, _ = _targets_and_all(tiny_digits, clients_per_round=4)

    targets.save(tmp_path / "t.pt")
    loaded = Transcript.load(tmp_path / "t.pt")

    assert loaded.truth.record_truth == "targets"
    for a, b in zip(targets.truth.rounds, loaded.truth.rounds, strict=True):
        assert a.recorded_ids == b.recorded_ids and torch.equal(a.updates, b.updates)


def test_a_format_1_transcript_still_loads_with_every_clients_truth(tiny_digits, tmp_path) -> None:
    transcript = simulate(dataset=tiny_digits, n_clients=3, rounds=1, seed=0)
    data = transcript_to_data(transcript)
    data["format"] = 1
    del data["truth"]["record_truth"]
    for round_data in data["truth"]["rounds"]:
        del round_data["recorded_ids"]

    loaded = transcript_from_data(data)

    assert loaded.truth.record_truth == "all"
    assert loaded.truth.rounds[0].recorded_ids == transcript.truth.rounds[0].client_ids
    assert torch.equal(loaded.truth.rounds[0].update_of(1), transcript.truth.rounds[0].update_of(1))


@pytest.mark.parametrize("scheme", ["plain", "secagg"])
def test_scoring_reads_nothing_but_the_targets_truth(tiny_digits, scheme) -> None:
    task = dict(model="mlp", model_options={"hidden": (8,), "activation": "sigmoid"}, algorithm="fedsgd",
                batch_size=1, lr=0.1, rounds=2, scheme=scheme)
    targets, everything = _targets_and_all(tiny_digits, **task)
    attacks = [("round_difference", {}), ("disaggregation", {}), ("idlg", {"max_evals": 20, "restarts": 1})]

    def rows(transcript):
        found = score_transcript(transcript, tiny_digits, observers=["server", "participant", "eavesdropper"],
                                 attacks=attacks, target=2, seed=0)
        return [row.to_dict() for row in found]

    scored = rows(targets)
    assert scored == rows(everything)
    assert any(row["status"] == "ok" for row in scored)


def test_the_audit_reads_nothing_but_client_0s_truth(tiny_digits) -> None:
    common = dict(dataset=tiny_digits, n_clients=4, rounds=12, seed=1, algorithm="fedsgd", batch_size=1,
                  partition="target", partition_options={"target_size": 2}, model="logreg")
    targets = simulate(record_truth="targets", truth_clients=[0], **common)
    everything = simulate(**common)

    def audit(transcript):
        return [result.to_dict() for result in audit_transcript(
            transcript, tiny_digits, observers=["server"], target=0, confidence=0.95, delta=1e-5)]

    assert audit(targets) == audit(everything)
