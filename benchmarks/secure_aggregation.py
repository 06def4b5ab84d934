"""Cost of one secure aggregation round: SecAgg against SecAgg+, with and without dropouts.

Prints one JSON object ``{"prg_bytes_per_s": ..., "results": [...], "targets": {...}}``.

``prg_bytes_per_s`` is the raw throughput of the PRG (AES-256-CTR from ``cryptography``
writing into a reused buffer), measured in the same run: the reference every client's
mask expansion is compared with. Each result runs the full protocol
(:func:`defenses.secure_aggregation.run_protocol`: key agreement, Shamir sharing,
encrypted shares, masking, unmasking) on ``dim`` real values per client in ``[-1, 1]``,
fixed-point encoded into ``Z_(2^32)``, and reports:

- ``client_s``: mean compute time of one client over all four stages;
- ``server_s``: the server's compute time (relaying, summing, rebuilding secrets,
  regenerating the masks of survivors and of dropped clients);
- ``round_s``: all of it run one after another, as a single-machine simulation pays;
- ``bytes_per_client``: what one client uploads (keys, shares, masked vector, revealed shares);
- ``mask_bytes_per_s``: PRG bytes a client generated per second spent expanding and
  adding its masks, and ``mask_fraction_of_prg`` that over ``prg_bytes_per_s``;
- ``aggregate_max_abs_error``: largest error of the decoded sum against the float64 sum.

With ``dropout`` 0.1, that fraction of clients drops after sharing keys and before
sending its masked input: the case that makes the server rebuild the dropped clients'
mask keys and remove their pairwise masks. Timings use one torch thread.

Usage: python benchmarks/secure_aggregation.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import torch
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from defenses.secure_aggregation import (
    ProtocolConfig,
    RingEncoding,
    Stage,
    complete_graph,
    default_degree,
    harary_graph,
    run_protocol,
)


def prg_bytes_per_s(length_bytes: int = 400_000, repeats: int = 400) -> float:
    """Raw AES-256-CTR keystream throughput into a reused buffer (best of three)."""
    zeros = bytes(length_bytes)
    out = bytearray(length_bytes + 16)
    keys = [os.urandom(32) for _ in range(repeats)]
    best = 0.0
    for _ in range(3):
        start = time.perf_counter()
        for key in keys:
            Cipher(algorithms.AES(key), modes.CTR(bytes(16))).encryptor().update_into(zeros, out)
        best = max(best, length_bytes * repeats / (time.perf_counter() - start))
    return best


def run_setting(scheme: str, n_clients: int, dim: int, dropout: float, seed: int = 0) -> dict[str, object]:
    """Run one protocol round and return its figures."""
    rng = np.random.default_rng(seed)
    clients = list(range(n_clients))
    if scheme == "secagg":
        graph = complete_graph(clients)
        threshold = n_clients // 2 + 1
    else:
        degree = default_degree(n_clients)
        graph = harary_graph(clients, degree, rng)
        threshold = degree // 2 + 1
    encoding = RingEncoding.fitting(ring_bits=32, clip_range=1.0, max_total_weight=n_clients)
    values = torch.from_numpy(rng.uniform(-1, 1, (n_clients, dim)))
    words, _ = encoding.encode(values, torch.ones(n_clients), torch.Generator().manual_seed(seed))
    config = ProtocolConfig(os.urandom(16), 32, dim + 1, threshold, graph)
    dropped = rng.choice(n_clients, round(dropout * n_clients), replace=False)
    result = run_protocol(
        {c: words[c] for c in clients}, config, dropouts={int(c): Stage.MASKED_INPUT for c in dropped}
    )
    if result.total is None:
        raise RuntimeError(f"{scheme} n={n_clients} aborted: {result.aborted}")
    weighted, _ = encoding.decode_sum(result.total)
    survivors = sorted(result.survivors)
    error = float((weighted - values[survivors].sum(0)).abs().max())
    mask_bytes = sum(result.mask_bytes.values())
    mask_seconds = sum(result.mask_seconds.values())
    client_seconds = list(result.client_seconds.values())
    return {
        "scheme": scheme,
        "n_clients": n_clients,
        "dim": dim,
        "dropout": dropout,
        "neighbours": max(len(p) for p in graph.values()),
        "threshold": threshold,
        "survivors": len(survivors),
        "client_s": float(np.mean(client_seconds)),
        "server_s": result.server_seconds,
        "round_s": float(np.sum(client_seconds)) + result.server_seconds,
        "bytes_per_client": result.upload_bytes_per_client(),
        "mask_bytes_per_s": mask_bytes / mask_seconds,
        "aggregate_max_abs_error": error,
        "quantization_step": encoding.step,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes only (a smoke test)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    counts = (10, 50) if args.quick else (10, 50, 200)
    dims = (1_000,) if args.quick else (10_000, 100_000)
    prg = prg_bytes_per_s()
    results = []
    for n_clients in counts:
        for dim in dims:
            for dropout in (0.0, 0.1):
                for scheme in ("secagg", "secagg+"):
                    results.append(run_setting(scheme, n_clients, dim, dropout))
    for result in results:
        result["mask_fraction_of_prg"] = result["mask_bytes_per_s"] / prg  # type: ignore[operator]

    def pick(scheme: str, dropout: float) -> dict[str, object]:
        n, d = counts[-1], dims[-1]
        return next(r for r in results if (r["scheme"], r["n_clients"], r["dim"], r["dropout"]) == (scheme, n, d, dropout))

    targets = {
        "setting": {"n_clients": counts[-1], "dim": dims[-1]},
        "client_speedup_secagg_plus": pick("secagg", 0.0)["client_s"] / pick("secagg+", 0.0)["client_s"],  # type: ignore[operator]
        "server_speedup_secagg_plus_at_10pct_dropout": pick("secagg", 0.1)["server_s"] / pick("secagg+", 0.1)["server_s"],  # type: ignore[operator]
        "min_mask_fraction_of_prg": min(r["mask_fraction_of_prg"] for r in results),  # type: ignore[type-var]
    }
    print(json.dumps({"prg_bytes_per_s": prg, "results": results, "targets": targets}, indent=1))


if __name__ == "__main__":
    main()
