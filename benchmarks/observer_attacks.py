"""Quality of the attacks on what observers see across rounds, as one JSON object.

Sections (each module's docstring says exactly what it measures):

- ``round_difference`` (``observer_round_difference.py``): the two-party subtraction under
  ``plain``, ``secagg`` and ``he`` and the peer image it lets iDLG reconstruct; N-1
  collusion; a lone attacker's cosine to the target for N in {2, 5, 10, 50, 100};
  the subtraction's error under central DP.
- ``disaggregation`` (``observer_disaggregation.py``): per-client recovery from secure
  aggregates versus the number of rounds (Lam et al. 2021).
- ``property_inference`` (``observer_property_inference.py``): AUC on Adult for N in
  {2, 4, 8, 16, 30} in the paper's population and a realistic one (Melis et al. 2019).
- ``binary_records`` (``observer_binary_records.py``): rounds needed, exact-record recovery
  rate and solve seconds for d in {8, 16, 32}, n in {1, ..., 50} (Li et al. 2019).

Every figure comes from a run made by this script; ``seconds`` says how long each
section took. Torch runs on one thread.

Usage: python benchmarks/observer_attacks.py [--quick] [--only SECTION ...]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import observer_binary_records
import observer_disaggregation
import observer_property_inference
import observer_round_difference

SECTIONS = {
    "round_difference": observer_round_difference.measure,
    "disaggregation": observer_disaggregation.measure,
    "property_inference": observer_property_inference.measure,
    "binary_records": observer_binary_records.measure,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer seeds, sizes and trials")
    parser.add_argument("--only", nargs="+", choices=sorted(SECTIONS), help="run only these sections")
    args = parser.parse_args()
    torch.set_num_threads(1)
    report: dict[str, Any] = {"quick": args.quick, "torch_threads": torch.get_num_threads(), "seconds": {}}
    for name, measure in SECTIONS.items():
        if args.only and name not in args.only:
            continue
        started = time.perf_counter()
        report[name] = measure(args.quick)
        report["seconds"][name] = round(time.perf_counter() - started, 1)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
