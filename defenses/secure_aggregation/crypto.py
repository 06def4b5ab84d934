"""Key agreement, key derivation and authenticated encryption between two clients.

Bonawitz et al. (CCS 2017) need a key-agreement scheme (here X25519 Diffie-Hellman,
RFC 7748), a key-derivation function (HKDF-SHA256, RFC 5869) so that the raw shared
point becomes a uniform 32-byte key bound to its purpose and session, and an
authenticated cipher for the shares that clients relay through the server (AES-256-GCM,
whose associated data binds each ciphertext to its session, sender and recipient, so
a share replayed into another round or redirected to another client fails to decrypt).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import (
    X25519PrivateKey,
    X25519PublicKey,
)
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = ["KeyPair", "agree", "decrypt_for", "encrypt_for"]

_RAW = serialization.Encoding.Raw


@dataclass(frozen=True)
class KeyPair:
    """An X25519 key pair.

    Attributes:
        secret: the 32-byte private key (what Shamir shares protect).
        public: the 32-byte public key.
        private_key: the parsed private key, kept so agreements need not re-parse it.
    """

    secret: bytes
    public: bytes
    private_key: X25519PrivateKey

    @classmethod
    def from_secret(cls, secret: bytes) -> KeyPair:
        """Return the key pair of the 32-byte private key ``secret``."""
        private_key = X25519PrivateKey.from_private_bytes(secret)
        public = private_key.public_key().public_bytes(_RAW, serialization.PublicFormat.Raw)
        return cls(secret, public, private_key)

    @classmethod
    def generate(cls, entropy: Callable[[int], bytes]) -> KeyPair:
        """Return a fresh key pair drawn from ``entropy`` (``os.urandom`` in real runs)."""
        return cls.from_secret(entropy(32))


def agree(own: KeyPair, peer_public: bytes, *, purpose: bytes, session: bytes) -> bytes:
    """Return a 32-byte key both parties derive: HKDF(X25519(own secret, peer_public)).

    ``purpose`` separates keys used for different jobs (mask seeds, share encryption),
    ``session`` separates rounds, so no key is ever used twice.

    >>> import os
    >>> a, b = KeyPair.generate(os.urandom), KeyPair.generate(os.urandom)
    >>> agree(a, b.public, purpose=b"m", session=b"r1") == agree(b, a.public, purpose=b"m", session=b"r1")
    True
    """
    shared = own.private_key.exchange(X25519PublicKey.from_public_bytes(peer_public))
    kdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=session, info=b"leakage-secagg/" + purpose)
    return kdf.derive(shared)


def encrypt_for(key: bytes, plaintext: bytes, *, associated: bytes, entropy: Callable[[int], bytes]) -> bytes:
    """Return ``nonce || AES-256-GCM(key, plaintext, associated)``."""
    nonce = entropy(12)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, associated)


def decrypt_for(key: bytes, ciphertext: bytes, *, associated: bytes) -> bytes:
    """Return the plaintext of :func:`encrypt_for`'s output.

    Raises:
        ValueError: the ciphertext was altered, or belongs to another session,
            sender or recipient than ``associated`` says.
    """
    try:
        return AESGCM(key).decrypt(ciphertext[:12], ciphertext[12:], associated)
    except InvalidTag:
        raise ValueError("share ciphertext failed authentication (altered, replayed or misdirected)") from None
