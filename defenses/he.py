"""``he``: weighted FedAvg under additively homomorphic encryption (CKKS, via TenSEAL).

TenSEAL is an optional dependency (``pip install 'leakage[he]'``). It is imported only
when keys are generated or ciphertexts handled, so this module imports without it.
"""

from __future__ import annotations

import numbers
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

import numpy as np
import torch
from numpy.typing import NDArray

from leakage.aggregation import (
    SCHEMES,
    AggregationScheme,
    Deployment,
    RoundContext,
    RoundOutcome,
    observer_views,
    weighted_mean,
)
from leakage.checks import require_choice, require_int
from leakage.errors import ConfigError
from leakage.views import Message, PublicValue, sender_key

__all__ = [
    "HomomorphicAggregation",
    "KeySet",
    "PolyModulusDegree",
    "decrypt_vector",
    "encrypt_vector",
    "generate_keys",
    "split_ciphertexts",
    "sum_encrypted",
]

PolyModulusDegree = Literal[8192, 16384, 32768]
_DEGREES: tuple[PolyModulusDegree, ...] = get_args(PolyModulusDegree)

_MISSING_TENSEAL = "scheme 'he' needs TenSEAL: pip install 'leakage[he]'"
# Largest total coefficient-modulus size (bits) with 128-bit security (HE standard, as SEAL enforces).
_MAX_MODULUS_BITS: dict[int, int] = {8192: 218, 16384: 438, 32768: 881}
_PRIME_BITS = (20, 60)  # SEAL's range for one coefficient-modulus prime
_LENGTH = struct.Struct("<Q")
# Bits kept above the scale for the integer part of sums (and their sign).
_HEADROOM_BITS = 3
# A fresh or summed CKKS slot is off by well under 2**_NOISE_BITS / scale.
_NOISE_BITS = 12


def _import_tenseal() -> Any:
    """Return the ``tenseal`` module, or raise ConfigError saying how to install it."""
    try:
        import tenseal
    except ModuleNotFoundError as error:
        if error.name != "tenseal":  # TenSEAL is there but broken: say so
            raise
        raise ConfigError(_MISSING_TENSEAL) from None
    return tenseal


@dataclass(frozen=True)
class KeySet:
    """The key material of one deployment, as each party holds it.

    Attributes:
        secret_context: a TenSEAL CKKS context holding the secret key; every client
            (and the key authority that generated it) holds a copy.
        public_context: the server's context: encryption parameters and public key,
            no secret key, so it can add ciphertexts but not decrypt them.
        public_context_bytes: ``public_context`` as sent over the wire to the server.
        slots: values one ciphertext holds (``poly_modulus_degree / 2``).
    """

    secret_context: Any
    public_context: Any
    public_context_bytes: bytes
    slots: int


def generate_keys(*, poly_modulus_degree: int, coeff_mod_bit_sizes: Sequence[int], scale_bits: int) -> KeySet:
    """Return a fresh CKKS key set; SEAL draws the secret key from the OS's randomness.

    Only addition is needed, so neither Galois nor relinearisation keys reach the server.

    Raises:
        ConfigError: TenSEAL is not installed, or SEAL rejects the parameters.
    """
    tenseal = _import_tenseal()
    try:
        secret = tenseal.context(
            tenseal.SCHEME_TYPE.CKKS,
            poly_modulus_degree=poly_modulus_degree,
            coeff_mod_bit_sizes=list(coeff_mod_bit_sizes),
        )
    except (ValueError, RuntimeError) as error:
        raise ConfigError(
            f"coeff_mod_bit_sizes {list(coeff_mod_bit_sizes)} are not valid for "
            f"poly_modulus_degree {poly_modulus_degree}: {error}"
        ) from None
    secret.global_scale = 2.0**scale_bits
    public_bytes = secret.serialize(
        save_public_key=True, save_secret_key=False, save_galois_keys=False, save_relin_keys=False
    )
    return KeySet(
        secret_context=secret,
        public_context=tenseal.context_from(public_bytes),
        public_context_bytes=public_bytes,
        slots=poly_modulus_degree // 2,
    )


def _join_ciphertexts(parts: Sequence[bytes]) -> bytes:
    return b"".join(_LENGTH.pack(len(part)) + part for part in parts)


def split_ciphertexts(message: bytes) -> list[bytes]:
    """Return the serialized ciphertexts a ``he`` message is made of, in slot order.

    A message is each ciphertext's length (8 bytes, little endian) followed by its
    TenSEAL serialization; vectors longer than one ciphertext's slots span several.

    >>> split_ciphertexts(bytes([2, 0, 0, 0, 0, 0, 0, 0]) + b"ab" + bytes([1] + [0] * 7) + b"c")
    [b'ab', b'c']
    """
    parts: list[bytes] = []
    offset = 0
    while offset < len(message):
        (length,) = _LENGTH.unpack_from(message, offset)
        offset += _LENGTH.size
        parts.append(message[offset : offset + length])
        offset += length
    return parts


def encrypt_vector(keys: KeySet, values: NDArray[np.float64]) -> bytes:
    """Return ``values`` ``[n]`` encrypted under ``keys`` as one message (``ceil(n / slots)`` ciphertexts)."""
    tenseal = _import_tenseal()
    context = keys.secret_context
    return _join_ciphertexts(
        [
            tenseal.ckks_vector(context, values[start : start + keys.slots].tolist()).serialize()
            for start in range(0, len(values), keys.slots)
        ]
    )


def sum_encrypted(public_context: Any, messages: Sequence[bytes]) -> bytes:
    """Return the encrypted slot-wise sum of ``messages`` (at least one), using only a public context."""
    tenseal = _import_tenseal()
    totals = [tenseal.ckks_vector_from(public_context, part) for part in split_ciphertexts(messages[0])]
    for message in messages[1:]:
        for total, part in zip(totals, split_ciphertexts(message), strict=True):
            total.add_(tenseal.ckks_vector_from(public_context, part))
    return _join_ciphertexts([total.serialize() for total in totals])


def decrypt_vector(keys: KeySet, message: bytes) -> NDArray[np.float64]:
    """Return the plaintext ``[n]`` of ``message``; needs the secret key in ``keys``."""
    tenseal = _import_tenseal()
    parts = [tenseal.ckks_vector_from(keys.secret_context, part).decrypt() for part in split_ciphertexts(message)]
    return np.concatenate([np.asarray(part, dtype=np.float64) for part in parts])


@SCHEMES.register("he")
class HomomorphicAggregation(AggregationScheme):
    """Weighted FedAvg where the server adds CKKS ciphertexts and never sees a plaintext.

    CKKS approximate homomorphic encryption (Cheon, Kim, Kim and Song, "Homomorphic
    encryption for arithmetic of approximate numbers", ASIACRYPT 2017) through TenSEAL
    (Benaissa et al., "TenSEAL: A library for encrypted tensor operations using
    homomorphic encryption", 2021). Each arriving client ``i`` encrypts the vector
    ``[n_i u_i, n_i]`` (its weighted update with its weight in one extra slot); the
    server adds the ciphertexts of the clients whose upload arrived; the clients decrypt
    the sum and apply ``delta = sum_i n_i u_i / sum_i n_i``, so
    ``params_after = params_before + server_lr * delta``. Without arrivals the model is
    unchanged.

    Keys, as in the usual HE-for-FL designs: one CKKS key pair per deployment, made by
    the clients (a key authority among them) in :meth:`prepare`, so a fresh pair per
    simulation. Every client holds the secret key; the server holds only a public
    context (parameters and public key). Consequences:

    - the server and an eavesdropper see only ciphertexts and the public context;
    - the server never holds the plaintext model either: only the clients decrypt and
      keep it, so the server's and eavesdropper's views have no parameters at all;
    - every client could decrypt any peer's upload it intercepts or is relayed, and
      every participant decrypts the aggregate and the total weight: with two
      participants, the other's update is ``(W delta - n_self u_self) / (W - n_self)``,
      exactly as under secure aggregation.

    Views:

    - ``server``: ``received`` holds ``"public_context"``, each arriving client's
      upload as ``"ciphertext:client:<id>"`` and the summed ``"aggregate"`` (bytes, see
      :func:`split_ciphertexts`); ``participants`` are the arriving clients.
    - ``eavesdropper``: the same bytes, which all cross the wire.
    - ``client:<id>``: its own update and data, the model it started from and, if its
      upload arrived, the ``"aggregate"`` ciphertext, the decrypted new model and
      ``total_weight`` (the decrypted weight slot) in ``public``.
    - ``public``: only the final released model, in the last round.

    CKKS is approximate: with the default scale ``2**40`` each decrypted slot is off by
    about ``1e-8``, well below float32 rounding of the model. SEAL's randomness (keys,
    encryption noise) comes from the operating system and cannot be seeded from Python,
    so ciphertext bytes differ between runs and the model differs at the ``1e-7`` level:
    compare ``he`` runs with a tolerance, not bit for bit.

    Args:
        poly_modulus_degree: CKKS ring dimension ``N``; one ciphertext holds ``N / 2`` values.
        coeff_mod_bit_sizes: bit sizes of the coefficient-modulus primes; the last is
            the special (key-switching) prime, the others hold the data. Their total
            must meet 128-bit security for ``N`` (218, 438, 881 bits).
        scale_bits: CKKS scale ``2**scale_bits``; more bits, smaller error. The sum of
            weighted updates must stay below ``2**(data bits - scale_bits - 2)``.

    Raises:
        ConfigError: an option is out of range (the message names it).
    """

    name = "he"

    def __init__(
        self,
        *,
        poly_modulus_degree: PolyModulusDegree = 8192,
        coeff_mod_bit_sizes: Sequence[int] = (60, 40, 60),
        scale_bits: int = 40,
    ) -> None:
        self.poly_modulus_degree = require_choice("poly_modulus_degree", poly_modulus_degree, _DEGREES)
        self.coeff_mod_bit_sizes = _check_coeff_sizes(coeff_mod_bit_sizes, self.poly_modulus_degree)
        self.scale_bits = _check_scale_bits(scale_bits, self.coeff_mod_bit_sizes)
        self._keys: KeySet | None = None

    @property
    def capacity(self) -> float:
        """Bound on any decrypted slot: larger sums wrap around the plaintext modulus."""
        return 2.0 ** (sum(self.coeff_mod_bit_sizes[:-1]) - self.scale_bits - _HEADROOM_BITS + 1)

    def prepare(self, deployment: Deployment) -> None:
        """Generate this deployment's keys; check the heaviest round's weight fits a slot.

        Raises:
            ConfigError: TenSEAL is missing, or the parameters cannot hold the weights.
        """
        if deployment.max_round_weight >= self.capacity:
            raise ConfigError(self._overflow_message(deployment.max_round_weight))
        self._keys = self._generate_keys()

    def public_parameters(self) -> dict[str, PublicValue]:
        return {
            "scheme": self.name,
            "poly_modulus_degree": self.poly_modulus_degree,
            "coeff_mod_bit_sizes": list(self.coeff_mod_bit_sizes),
            "scale_bits": self.scale_bits,
        }

    def run_round(self, context: RoundContext) -> RoundOutcome:
        if self._keys is None:  # run without a deployment (a single round): keys now
            self._keys = self._generate_keys()
        keys = self._keys
        survivors = context.arriving
        public = {**context.public, **self.public_parameters()}
        weighted = self._weighted_updates(context, survivors)
        uploads = {client: encrypt_vector(keys, weighted[client]) for client in survivors}
        if survivors:
            aggregate = sum_encrypted(keys.public_context, [uploads[c] for c in survivors])
            plaintext = decrypt_vector(keys, aggregate)  # done by each arriving client
            total_weight = float(plaintext[-1])
            sums = torch.from_numpy(plaintext[:-1])
            # Zero total weight decrypts to CKKS noise, not 0: dividing by it would blow up.
            has_weight = total_weight > 2.0 ** (_NOISE_BITS - self.scale_bits)
            delta = sums / total_weight if has_weight else torch.zeros_like(sums)
            params_after = context.apply(delta.to(context.params_before.dtype))
            reference = weighted_mean(context.updates.double(), context.arrived_weights)
            metrics = {
                "ciphertext_bytes_per_client": float(np.mean([len(m) for m in uploads.values()])),
                "aggregate_max_abs_error": float((delta - reference).abs().max()),
            }
        else:
            aggregate, total_weight, params_after, metrics = b"", 0.0, context.params_before, {}
        wire: dict[str, Message] = {"public_context": keys.public_context_bytes}
        wire.update({sender_key("ciphertext", c): uploads[c] for c in survivors})
        if survivors:
            wire["aggregate"] = aggregate
        arrived = frozenset(survivors)
        views = observer_views(
            context,
            params_after,
            participants=arrived,
            public=public,
            wire=wire,
            # every arriving client gets the summed ciphertext back and decrypts it
            client_received=lambda client: {"aggregate": aggregate} if client in arrived else {},
            finished_public={"total_weight": total_weight},
            models="clients",
        )
        return RoundOutcome(params_after=params_after, survivors=survivors, views=views, metrics=metrics)

    def _generate_keys(self) -> KeySet:
        return generate_keys(
            poly_modulus_degree=self.poly_modulus_degree,
            coeff_mod_bit_sizes=self.coeff_mod_bit_sizes,
            scale_bits=self.scale_bits,
        )

    def _weighted_updates(self, context: RoundContext, survivors: Sequence[int]) -> dict[int, NDArray[np.float64]]:
        """Per arriving client, ``[n_i u_i, n_i]`` in float64; raise if their sum could wrap."""
        weighted: dict[int, NDArray[np.float64]] = {}
        bound = 0.0
        for client in survivors:
            row = context.row(client)
            weight = float(context.weights[row])
            vector = np.append(weight * context.updates[row].double().numpy(), weight)
            bound += float(np.abs(vector).max())
            weighted[client] = vector
        if bound >= self.capacity:
            raise ConfigError(self._overflow_message(bound))
        return weighted

    def _overflow_message(self, value: float) -> str:
        return (
            f"round sums up to {value:.3g} do not fit the CKKS plaintext space "
            f"(|sum| < {self.capacity:.3g} with coeff_mod_bit_sizes {list(self.coeff_mod_bit_sizes)} "
            f"and scale_bits {self.scale_bits}): add data bits to coeff_mod_bit_sizes or lower scale_bits"
        )


def _check_coeff_sizes(value: object, degree: int) -> tuple[int, ...]:
    low, high = _PRIME_BITS
    if (
        isinstance(value, (str, bytes))
        or not isinstance(value, Sequence)
        or len(value) < 2
        or any(isinstance(bits, bool) or not isinstance(bits, numbers.Integral) for bits in value)
        or any(not low <= int(bits) <= high for bits in value)
    ):
        raise ConfigError(
            f"coeff_mod_bit_sizes must be a list of at least 2 integers in [{low}, {high}], got {value!r}"
        )
    sizes = tuple(int(bits) for bits in value)
    if sum(sizes) > _MAX_MODULUS_BITS[degree]:
        raise ConfigError(
            f"coeff_mod_bit_sizes must total at most {_MAX_MODULUS_BITS[degree]} bits for 128-bit security "
            f"with poly_modulus_degree {degree}, got {sum(sizes)} ({list(sizes)})"
        )
    return sizes


def _check_scale_bits(value: object, coeff_sizes: tuple[int, ...]) -> int:
    low, high = _PRIME_BITS
    scale_bits = require_int("scale_bits", value, minimum=low, maximum=high)
    data_bits = sum(coeff_sizes[:-1])
    if scale_bits > data_bits - _HEADROOM_BITS:
        raise ConfigError(
            f"scale_bits must be at most {data_bits - _HEADROOM_BITS}: the data primes of "
            f"coeff_mod_bit_sizes {list(coeff_sizes)} hold {data_bits} bits, got scale_bits {scale_bits}"
        )
    return scale_bits
