"""Signed, expiring person identities that SQL inside a session cannot forge.

The person roles' policies do not trust a setting the session can write;
they trust a token that the dashboard process signs with a key that only it
and the table owner hold. The token names the kind of person (clinician or
patient), their id, an expiry and the backend process it was issued for, and
carries an HMAC-SHA256 (RFC 2104) of those fields. Migration 0008 verifies it
inside the database with the server's built-in `sha256()` (no extension
needed), in a SECURITY DEFINER function that reads the key from a table
nobody else can read.

The key lives in a secret file (mode 0600): the dashboard reads it to sign,
`paceline db migrate` installs it into the database. Tokens are minted per
person session (one transaction), so a short lifetime costs nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

import psycopg

from paceline.store.secrets import SecretFileError, read_or_create_secret, read_secret, write_secret

# An administrator's token names their account; it opens no person role (migration 0010).
Kind = Literal["clinician", "patient", "admin"]
KINDS: Final = ("clinician", "patient", "admin")
KEY_BYTES: Final = 32
#: Long enough for any one person transaction; short enough that a token that
#: leaked into a log is worthless by the time anyone reads it.
DEFAULT_TTL_S: Final = 300
#: The HMAC block size of SHA-256 (RFC 2104 §2: B = 64 bytes).
_BLOCK: Final = 64
_VERSION: Final = "v1"


class IdentityKeyError(SecretFileError):
    """The identity key file is missing, malformed, or readable by others."""


@dataclass(frozen=True, repr=False)
class IdentityKey:
    """The HMAC key that signs person identities (never printed by `repr`)."""

    secret: bytes

    def __post_init__(self) -> None:
        """Refuse a key too short to be a secret."""
        if len(self.secret) < KEY_BYTES:
            raise ValueError(f"an identity key needs at least {KEY_BYTES} bytes")

    def __repr__(self) -> str:
        """Hide the secret."""
        return "IdentityKey(<secret>)"

    @classmethod
    def generate(cls) -> IdentityKey:
        """A fresh random key."""
        return cls(secrets.token_bytes(KEY_BYTES))

    @classmethod
    def load(cls, path: Path) -> IdentityKey:
        """Read a key file written by `save`; refuse one that group or others can read."""
        try:
            return cls._parse(path, read_secret(path))
        except IdentityKeyError:
            raise
        except SecretFileError as exc:
            raise IdentityKeyError(path, exc.reason) from exc

    @classmethod
    def load_or_create(cls, path: Path) -> IdentityKey:
        """The key in `path`, generating and saving one first if there is none."""
        try:
            return cls._parse(path, read_or_create_secret(path, cls.generate().secret.hex))
        except IdentityKeyError:
            raise
        except SecretFileError as exc:
            raise IdentityKeyError(path, exc.reason) from exc

    @classmethod
    def _parse(cls, path: Path, text: str) -> IdentityKey:
        try:
            return cls(bytes.fromhex(text))
        except ValueError as exc:
            raise IdentityKeyError(path, f"is not a hex key of at least {KEY_BYTES} bytes") from exc

    def save(self, path: Path) -> None:
        """Write the key to a new file with mode 0600 (in a 0700 directory if it creates one)."""
        write_secret(path, self.secret.hex())

    def pads(self) -> tuple[bytes, bytes]:
        """The inner and outer padded keys of HMAC (RFC 2104), as the database stores them."""
        key = self.secret if len(self.secret) <= _BLOCK else hashlib.sha256(self.secret).digest()
        key = key.ljust(_BLOCK, b"\0")
        return bytes(b ^ 0x36 for b in key), bytes(b ^ 0x5C for b in key)

    def sign(
        self,
        kind: Kind,
        person_id: int,
        *,
        backend_pid: int,
        ttl_s: int = DEFAULT_TTL_S,
        now_s: float | None = None,
    ) -> str:
        """A token naming `kind` `person_id`, valid for `ttl_s` on backend `backend_pid` only."""
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
        if isinstance(person_id, bool) or not isinstance(person_id, int) or person_id < 1:
            raise ValueError(f"person id must be a positive integer, not {person_id!r}")
        expires = int((time.time() if now_s is None else now_s) + ttl_s)
        message = f"{_VERSION}|{kind}|{person_id}|{expires}|{backend_pid}"
        mac = hmac.new(self.secret, message.encode("ascii"), hashlib.sha256).hexdigest()
        return f"{message}|{mac}"


def install_key(conn: psycopg.Connection[Any], key: IdentityKey) -> None:
    """Make the database verify tokens signed with `key` (tokens of an older key stop working).

    Runs as the owner (the migrate role or an administrator); nobody else may
    call the function it uses.
    """
    inner, outer = key.pads()
    with conn.transaction():
        conn.execute("SET LOCAL ROLE paceline_owner")
        conn.execute("SELECT paceline_set_identity_key(%s, %s)", (inner, outer))
