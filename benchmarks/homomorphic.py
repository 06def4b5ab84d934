"""Cost of the ``he`` scheme (CKKS via TenSEAL) against plain float aggregation.

Prints one JSON object. N clients each hold a random float32 update of ``dim`` values
(normal, standard deviation 0.01) and an integer weight in [10, 100]; every client
encrypts ``[w_i u_i, w_i]`` as the scheme does. Timed in the same process, with one
torch thread:

- ``keygen_s``: one deployment's CKKS keys (secret context and public context);
- ``encrypt_s_per_client``: one client's encryption and serialization (mean over clients);
- ``aggregate_s``: the server's deserialization and sum of N uploads with the public context;
- ``decrypt_s``: one client's decryption of the aggregate;
- ``plain_sum_s``: the same weighted sum of the plaintext updates with numpy (float64),
  the reference the encrypted pipeline replaces;
- ``round_s``: one full round of the scheme (``HomomorphicAggregation.run_round``)
  against ``plain_round_s`` (``PlainAggregation.run_round``) on the same updates.

``ciphertext_bytes_per_parameter`` is one upload's size over ``dim`` (float32 is 4
bytes); ``max_abs_error_sum`` compares the decrypted ``sum_i w_i u_i`` with the numpy
sum, ``max_abs_error_mean`` the resulting FedAvg step with the plain one.

Usage: python benchmarks/homomorphic.py [--dim 100000] [--clients 10] [--quick]
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from collections.abc import Callable

import numpy as np
import torch

QUICK_DIM = 5_000


def _seconds(function: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    result = function()
    return time.perf_counter() - start, result


def _best_of(function: Callable[[], object], *, min_seconds: float) -> float:
    """Seconds per call of ``function``: the best of repeated runs lasting ``min_seconds``."""
    function()  # warm up
    best = float("inf")
    spent = 0.0
    while spent < min_seconds:
        elapsed, _ = _seconds(function)
        best = min(best, elapsed)
        spent += elapsed
    return best


def run(dim: int, clients: int) -> dict[str, object]:
    from defenses import he
    from leakage.aggregation import RoundContext
    from leakage.aggregation.plain import PlainAggregation

    rng = np.random.default_rng(0)
    updates = (0.01 * rng.standard_normal((clients, dim))).astype(np.float32)
    weights = rng.integers(10, 101, clients).astype(np.float64)
    weighted = [np.append(w * u.astype(np.float64), w) for w, u in zip(weights, updates)]
    scheme = he.HomomorphicAggregation()
    options = scheme.public_parameters()

    keygen_s, keys = _seconds(
        lambda: he.generate_keys(
            poly_modulus_degree=scheme.poly_modulus_degree,
            coeff_mod_bit_sizes=scheme.coeff_mod_bit_sizes,
            scale_bits=scheme.scale_bits,
        )
    )
    assert isinstance(keys, he.KeySet)
    encrypt_times, uploads = [], []
    for vector in weighted:
        elapsed, message = _seconds(lambda vector=vector: he.encrypt_vector(keys, vector))
        assert isinstance(message, bytes)
        encrypt_times.append(elapsed)
        uploads.append(message)
    aggregate_s, aggregate = _seconds(lambda: he.sum_encrypted(keys.public_context, uploads))
    assert isinstance(aggregate, bytes)
    decrypt_s, plaintext = _seconds(lambda: he.decrypt_vector(keys, aggregate))
    assert isinstance(plaintext, np.ndarray)

    def plain_sum() -> np.ndarray:
        return weights @ updates.astype(np.float64)

    plain_sum_s = _best_of(plain_sum, min_seconds=0.5)
    reference = plain_sum()
    plain_mean = reference / weights.sum()
    he_mean = plaintext[:-1] / plaintext[-1]

    context = RoundContext(
        round_index=0,
        is_final_round=True,
        params_before=torch.zeros(dim),
        client_ids=tuple(range(clients)),
        updates=torch.from_numpy(updates),
        weights=torch.from_numpy(weights),
        dropped=frozenset(),
        server_lr=1.0,
        public={},
        client_data={c: torch.tensor([c]) for c in range(clients)},
    )
    scheme.run_round(context)  # the round's keys are made here, outside the timing
    round_s, _ = _seconds(lambda: scheme.run_round(context))
    plain_round_s = _best_of(lambda: PlainAggregation().run_round(context), min_seconds=0.5)

    return {
        "dim": dim,
        "clients": clients,
        "torch_threads": torch.get_num_threads(),
        "he_parameters": options,
        "ciphertexts_per_client": len(he.split_ciphertexts(uploads[0])),
        "keygen_s": round(keygen_s, 4),
        "encrypt_s_per_client": round(float(np.mean(encrypt_times)), 4),
        "aggregate_s": round(aggregate_s, 4),
        "decrypt_s": round(decrypt_s, 4),
        "plain_sum_s": round(plain_sum_s, 6),
        "encrypted_pipeline_over_plain_sum": round(
            (sum(encrypt_times) + aggregate_s + decrypt_s) / plain_sum_s, 1
        ),
        "round_s": round(round_s, 3),
        "plain_round_s": round(plain_round_s, 6),
        "ciphertext_bytes_per_parameter": round(len(uploads[0]) / dim, 2),
        "plaintext_bytes_per_parameter": 4,
        "max_abs_error_sum": float(np.abs(plaintext[:-1] - reference).max()),
        "max_abs_error_weight": float(abs(plaintext[-1] - weights.sum())),
        "max_abs_error_mean": float(np.abs(he_mean - plain_mean).max()),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--dim", type=int, default=100_000, help="parameters per update")
    parser.add_argument("--clients", type=int, default=10, help="clients whose uploads are added")
    parser.add_argument("--quick", action="store_true", help=f"use dim={QUICK_DIM}")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(json.dumps(run(QUICK_DIM if args.quick else args.dim, args.clients), indent=2))


if __name__ == "__main__":
    main()
