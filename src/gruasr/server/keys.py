"""API keys of `gruasr serve`: a keys file of SHA-256 hashes, each key with a name and its own limits.

    gruasr keys add alice --keys-file keys.json [--max-sessions 10] [--audio-hours-per-day 24]
    gruasr keys list --keys-file keys.json
    gruasr keys revoke alice --keys-file keys.json
    gruasr serve --keys-file keys.json

A key is `gk_` and 43 characters of a 256-bit random secret (`secrets.token_urlsafe(32)`), printed once by `add`
and never stored: the file holds only its SHA-256. A key of 256 random bits needs no slow password hash (nothing
can be guessed from its hash); the presented token's hash is compared with every stored hash in constant time
(`hmac.compare_digest`, no early exit), so timing says nothing about which key nearly matched. The file is
written atomically with mode 0600 and re-read by the server when it changes (a revoke takes effect on the next
connection, without a restart).

File format (JSON): {"format": "gruasr-keys", "version": 1, "keys": [{"name", "sha256", "created", "revoked",
"max_sessions", "audio_hours_per_day"}]}; a limit of 0 means "no limit of the key's own" (the server's limits
still apply).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import re
import secrets
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from gruasr.errors import ConfigError

FORMAT = "gruasr-keys"
VERSION = 1
PREFIX = "gk_"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")


def hash_key(token: str) -> str:
    """The stored form of a key: SHA-256 hex of its UTF-8 bytes."""
    return hashlib.sha256(token.encode("utf-8", errors="surrogatepass")).hexdigest()


def new_key() -> str:
    """A fresh key: the prefix and 256 random bits, URL-safe (it may travel as `?token=`)."""
    return PREFIX + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class ApiKey:
    """One key's record (never the key itself)."""

    name: str
    sha256: str
    created: float
    revoked: bool = False
    #: concurrent streaming sessions of this key at most; 0: only the server's limits
    max_sessions: int = 0
    #: audio this key may send per UTC day, hours; 0: no quota
    audio_hours_per_day: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise ConfigError(
                f"key name {self.name!r}: 1-64 letters, digits, '_', '.', '@' or '-', starting with a letter or digit"
            )
        if not isinstance(self.sha256, str) or not re.fullmatch(r"[0-9a-f]{64}", self.sha256):
            raise ConfigError(f"key {self.name!r}: sha256 must be 64 lowercase hex digits")
        if isinstance(self.max_sessions, bool) or not isinstance(self.max_sessions, int) or self.max_sessions < 0:
            raise ConfigError(f"key {self.name!r}: max_sessions must be an integer >= 0, got {self.max_sessions!r}")
        hours = self.audio_hours_per_day
        if isinstance(hours, bool) or not isinstance(hours, int | float) or not 0 <= hours < 1e6:
            raise ConfigError(f"key {self.name!r}: audio_hours_per_day must be a number >= 0, got {hours!r}")


class KeyStore:
    """The keys of one file; `authenticate(token)` gives the key's record or None. Re-reads the file when its
    modification time or size changes, so `gruasr keys revoke` takes effect on the next connection."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.keys: list[ApiKey] = []
        self._stamp: tuple[int, int] | None = None
        self.reload()

    # -- reading ------------------------------------------------------------------------------------------

    def reload(self) -> None:
        """Read the file (a missing file is an empty store: `add` creates it)."""
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            self.keys, self._stamp = [], None
            return
        self.keys = _parse(self.path)
        self._stamp = (stat.st_mtime_ns, stat.st_size)

    def _fresh(self) -> None:
        try:
            stat = self.path.stat()
            stamp: tuple[int, int] | None = (stat.st_mtime_ns, stat.st_size)
        except FileNotFoundError:
            stamp = None
        if stamp != self._stamp:
            try:
                self.reload()
            except ConfigError:  # a file being edited by hand: keep the keys we had, say so once per change
                self._stamp = stamp
                raise

    def authenticate(self, token: str | None) -> ApiKey | None:
        """The active key whose hash matches `token`, or None. Every stored hash is compared (constant time)."""
        self._fresh()
        if not token:
            return None
        digest = hash_key(token)
        found = None
        for key in self.keys:
            if hmac.compare_digest(key.sha256, digest) and not key.revoked:
                found = key
        return found

    @property
    def active(self) -> list[ApiKey]:
        return [k for k in self.keys if not k.revoked]

    # -- writing ------------------------------------------------------------------------------------------

    def add(self, name: str, max_sessions: int = 0, audio_hours_per_day: float = 0.0) -> str:
        """A new key under `name` (which must not be in use by an active key); returns the key, shown once."""
        self.reload()
        if any(k.name == name and not k.revoked for k in self.keys):
            raise ConfigError(f"a key named {name!r} exists in {self.path}: revoke it first or choose another name")
        token = new_key()
        key = ApiKey(name, hash_key(token), round(time.time(), 3), False, max_sessions, audio_hours_per_day)
        self.keys = [k for k in self.keys if k.name != name] + [key]
        self.save()
        return token

    def revoke(self, name: str) -> ApiKey:
        """Mark the active key `name` revoked (kept in the file, so its name stays in the record)."""
        self.reload()
        for n, key in enumerate(self.keys):
            if key.name == name and not key.revoked:
                self.keys[n] = replace(key, revoked=True)
                self.save()
                return self.keys[n]
        raise ConfigError(f"no active key named {name!r} in {self.path}")

    def save(self) -> None:
        """Write the file atomically (temporary file in the same folder, fsync, rename), mode 0600."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = {"format": FORMAT, "version": VERSION, "keys": [asdict(k) for k in self.keys]}
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(data, f, indent=1)
                f.write("\n")
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        stat = self.path.stat()
        self._stamp = (stat.st_mtime_ns, stat.st_size)


def _parse(path: Path) -> list[ApiKey]:
    try:
        data: Any = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise ConfigError(f"{path}: not a readable keys file ({err})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("keys"), list):
        raise ConfigError(f"{path}: not a gruasr keys file (expected {{'format': '{FORMAT}', 'keys': [...]}})")
    if data.get("version") != VERSION:
        raise ConfigError(f"{path}: keys file version {data.get('version')!r}, this gruasr reads {VERSION}")
    keys = []
    for item in data["keys"]:
        if not isinstance(item, dict):
            raise ConfigError(f"{path}: each key must be an object")
        try:
            keys.append(ApiKey(**item))
        except TypeError as err:
            raise ConfigError(f"{path}: bad key record ({err})") from None
    return keys
