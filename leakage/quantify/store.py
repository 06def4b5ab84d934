"""The job store: each finished job's result, kept in the output folder as it completes.

A long ``leakage score`` run loses nothing to a fault or an interrupt: every job's
result is written atomically to ``<out>/jobs/<key>.json`` the moment it finishes, and
``--resume`` loads those instead of running them again. A job's key hashes the
effective spec (after ``--quick``), the job (kind, deployment, size, scheme, seed,
sweep) and the package version, and ``manifest.json`` records the spec's hash and the
version, so a store written for another spec or another version is refused instead of
being mixed into a new report. Results are JSON (floats round-trip exactly), never
pickles: loading a store runs no code.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from leakage.errors import ConfigError
from leakage.files import write_atomically
from leakage.quantify.scoring import ScoreRow
from leakage.quantify.spec import DeploymentSpec

__all__ = ["STORE_FORMAT", "JobStore", "spec_hash"]

STORE_FORMAT = 1
_MANIFEST = "manifest.json"


def spec_hash(spec: DeploymentSpec) -> str:
    """A stable hash of the spec's plain data (the same spec always gives the same hash).

    >>> from leakage.quantify.spec import load_spec
    >>> spec_hash(load_spec()) == spec_hash(load_spec())
    True
    """
    text = json.dumps(spec.to_dict(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class JobStore:
    """Finished jobs of one run, one JSON file each, under ``folder``.

    Attributes:
        folder: where the results live (``<out>/jobs``).
        spec_hash: the hash of the spec the results belong to.
        version: the package version that computed them.
        kept: how many results the store held when it was opened (resumed jobs).
    """

    folder: Path
    spec_hash: str
    version: str
    kept: int = 0

    @classmethod
    def open(cls, folder: Path, spec: DeploymentSpec, *, version: str, resume: bool, fresh: bool) -> JobStore:
        """Open the store in ``folder`` for ``spec``.

        Without ``resume`` (or with ``fresh``) any earlier store is discarded and the run
        starts from nothing. With ``resume`` the earlier results are kept when they were
        written for this very spec and version.

        Raises:
            ConfigError: ``resume`` finds a store of another spec or version (and not
                ``fresh``), or one it cannot read.
        """
        digest = spec_hash(spec)
        manifest_path = folder / _MANIFEST
        if resume and not fresh and manifest_path.exists():
            manifest = _read_json(manifest_path)
            if manifest.get("format") != STORE_FORMAT or manifest.get("spec_hash") != digest:
                raise ConfigError(
                    f"--resume: the job store in {folder} was written for another spec; "
                    "run with --fresh to discard it and start again"
                )
            if manifest.get("version") != version:
                raise ConfigError(
                    f"--resume: the job store in {folder} was written by leakage {manifest.get('version')}, "
                    f"this is {version}; run with --fresh to discard it and start again"
                )
        elif folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True, exist_ok=True)
        manifest = {"format": STORE_FORMAT, "spec_hash": digest, "version": version, "spec": spec.to_dict()}
        write_atomically(manifest_path, json.dumps(manifest, indent=1) + "\n")
        kept = sum(1 for path in folder.glob("*.json") if path.name != _MANIFEST)
        return cls(folder, digest, version, kept)

    def key(self, job: Any) -> str:
        """The file name stem of ``job``'s result (a hash of the spec, the job and the version)."""
        identity = {
            "spec": self.spec_hash, "version": self.version, "kind": job.kind, "deployment": job.deployment.name,
            "n_clients": job.deployment.n_clients, "scheme": job.scheme, "seed": job.seed, "sweep": job.sweep,
        }
        text = json.dumps(identity, sort_keys=True)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]

    def load(self, job: Any) -> dict[str, Any] | None:
        """Return ``job``'s stored result, or ``None`` when it has not finished.

        Raises:
            ConfigError: the stored file is not a result (damaged by hand).
        """
        path = self.folder / f"{self.key(job)}.json"
        if not path.exists():
            return None
        data = _read_json(path)
        if "rows" in data:
            data["rows"] = [ScoreRow(**row) for row in data["rows"]]
        return data

    def save(self, job: Any, result: Mapping[str, Any]) -> None:
        """Write ``job``'s result atomically (a reader sees the whole file or none)."""
        data = dict(result)
        if "rows" in data:
            data["rows"] = [row.to_dict() for row in data["rows"]]
        write_atomically(self.folder / f"{self.key(job)}.json", json.dumps(data) + "\n")

    def finished(self) -> int:
        """How many job results the store holds now."""
        return sum(1 for path in self.folder.glob("*.json") if path.name != _MANIFEST)

    def size_bytes(self) -> int:
        """The store's size on disk, manifest included."""
        return sum(path.stat().st_size for path in self.folder.glob("*.json"))


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ConfigError(f"job store file {path} cannot be read: {error}; run with --fresh to start again") from None
    if not isinstance(data, dict):
        raise ConfigError(f"job store file {path} is not a result; run with --fresh to start again")
    return data
