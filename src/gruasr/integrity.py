"""Verified folders: a SHA-256 manifest of every file, and optional Ed25519 signatures over it.

A model folder carries `checksums.sha256`, one line per file in the format of coreutils `sha256sum`
("<64 hex>  <name>", sorted by name), so `sha256sum -c checksums.sha256` run inside the folder checks it with a
tool that is not ours. Reading a folder refuses, before anything in it is parsed: a missing manifest, a listed
file that is missing, a file that is present but not listed (hidden files included), a subfolder, a symbolic
link (it could point anywhere; links are never followed), a malformed line, a name with "/" or "..", and a
file whose SHA-256 differs from the listed one. A manifest alone catches corruption and edits by someone who
does not also rewrite the manifest; a signature also catches those who do:

    checksums.sha256.sig   64 raw bytes: an Ed25519 signature over the exact bytes of checksums.sha256
                           (`openssl pkeyutl -verify -pubin -inkey KEY.pub -rawin -in checksums.sha256
                           -sigfile checksums.sha256.sig` checks it). The one file the manifest does not list.

With trusted keys given, only a folder whose manifest is signed by one of them is read: unsigned, badly signed
and signed-by-another-key folders are refused alike. Keys are PEM files: a PKCS#8 private key (mode 0600) and
its SubjectPublicKeyInfo public key, as `gruasr model keygen` and `openssl genpkey -algorithm ed25519` write.

    from gruasr.integrity import check_folder, write_manifest
    write_manifest(folder)                               # what every writer of a model folder does last
    files = check_folder(folder, trusted_keys=["release.pub"])   # or CheckpointError naming file and fault
    data = files.read("model.json")                      # bytes, hashed as read: the bytes checked are parsed

`cryptography` is imported only when keys are used.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

from gruasr.errors import CheckpointError, ConfigError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

MANIFEST = "checksums.sha256"
SIGNATURE = "checksums.sha256.sig"
#: a trusted key: a PEM public key file, or the key itself
TrustedKey: TypeAlias = "str | os.PathLike[str] | Ed25519PublicKey"

_CHUNK = 1 << 20
_MAX_MANIFEST = 1 << 20  # a manifest lists a handful of files; anything this big is not one
_SIGNATURE_BYTES = 64
_FORBIDDEN = frozenset("/\\\0\n\r")
_LINK = (
    "a symbolic link; a model folder holds regular files only (a link could point anywhere): replace it by the "
    "file itself, then rewrite the manifest (gruasr model manifest) if you trust it"
)
_log = logging.getLogger(__name__)


def _open(path: Path) -> int:
    """A read-only descriptor of a regular file, never through a symbolic link (O_NOFOLLOW: a link swapped in
    after the folder was listed is refused too)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise CheckpointError(f"{path}: missing") from None
    except OSError as err:
        if path.is_symlink():
            raise CheckpointError(f"{path}: {_LINK}") from None
        raise CheckpointError(f"{path}: cannot be read ({err.strerror})") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise CheckpointError(f"{path}: not a regular file")
    return fd


def sha256(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB chunks (links not followed)."""
    digest = hashlib.sha256()
    with os.fdopen(_open(Path(path)), "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def _read(path: Path, limit: int = -1) -> bytes:
    """A file's bytes (at most `limit` + 1 of them when a limit is given: the caller sees it is too long)."""
    with os.fdopen(_open(path), "rb") as f:
        return f.read() if limit < 0 else f.read(limit + 1)


def listing(folder: Path) -> list[str]:
    """The names of the files a manifest of `folder` covers: every regular file but the manifest and its
    signature. CheckpointError for a symbolic link, subfolder or other non-file, or a name sha256sum would have
    to escape."""
    names = []
    with os.scandir(folder) as entries:
        for entry in entries:
            where = folder / entry.name
            if entry.is_symlink():
                raise CheckpointError(f"{where}: {_LINK}")
            if entry.is_dir(follow_symlinks=False):
                raise CheckpointError(f"{where}: a subfolder; a model folder holds no subfolders: move it out")
            if not entry.is_file(follow_symlinks=False):
                raise CheckpointError(f"{where}: not a regular file; a model folder holds regular files only")
            if entry.name in (MANIFEST, SIGNATURE):
                continue
            if _FORBIDDEN & set(entry.name):
                raise CheckpointError(f"{where}: a file name with a newline or backslash cannot be listed: rename it")
            names.append(entry.name)
    return sorted(names)


@dataclass(frozen=True)
class WrittenManifest:
    """What write_manifest did: the manifest's path, the names it lists, and whether a signature of the previous
    manifest was removed (a manifest that changed invalidates it)."""

    path: Path
    names: tuple[str, ...]
    removed_signature: bool


def write_manifest(folder: str | os.PathLike[str]) -> WrittenManifest:
    """(Re)write FOLDER/checksums.sha256 for the files there now: this trusts them as they are. Written under a
    temporary name and renamed into place. A signature over a different previous manifest is removed (it could
    only fail); one over identical bytes stays valid and is kept."""
    folder = Path(folder)
    tmp = folder / f".{MANIFEST}.tmp"
    for leftover in (tmp, folder / f".{SIGNATURE}.tmp"):  # of a write that was killed: never to be listed
        leftover.unlink(missing_ok=True)
    names = listing(folder)
    text = "".join(f"{sha256(folder / name)}  {name}\n" for name in names).encode("utf-8")
    path = folder / MANIFEST
    old = _read(path, _MAX_MANIFEST) if path.is_file() and not path.is_symlink() else None
    tmp.write_bytes(text)
    os.replace(tmp, path)
    removed = False
    if old != text and (folder / SIGNATURE).exists():
        (folder / SIGNATURE).unlink()
        removed = True
    return WrittenManifest(path, tuple(names), removed)


def parse_manifest(data: bytes, where: Path) -> dict[str, str]:
    """sha256sum lines ("<64 hex>  <name>", or " *<name>") -> {name: lowercase hex}. Names must be plain file
    names: no "/", no "..", no backslash escapes, no duplicates."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise CheckpointError(f"{where}: not UTF-8 text, not a sha256sum manifest") from None
    lines = text.split("\n")
    if lines[-1] == "":  # the final newline (sha256sum writes one; a missing one is tolerated, as it does)
        lines.pop()
    digests: dict[str, str] = {}
    for number, line in enumerate(lines, 1):
        hexdigest, name = line[:64], line[66:]
        if (
            len(line) < 67
            or line[64:66] not in ("  ", " *")
            or any(c not in "0123456789abcdefABCDEF" for c in hexdigest)
        ):
            raise CheckpointError(
                f"{where}:{number}: malformed line {line[:100]!r}; expected '<64 hex digits>  <file name>' as "
                "sha256sum writes it: rewrite it with `gruasr model manifest` if you trust the folder"
            )
        if name in (".", "..", MANIFEST, SIGNATURE) or _FORBIDDEN & set(name):
            raise CheckpointError(
                f"{where}:{number}: {name!r} is not a file of this folder (a manifest lists plain file names, no "
                "'/', no '..', not itself): refused"
            )
        if name in digests:
            raise CheckpointError(f"{where}:{number}: {name!r} is listed twice")
        digests[name] = hexdigest.lower()
    if not digests:
        raise CheckpointError(f"{where}: lists no files")
    return digests


@dataclass(frozen=True)
class CheckedFolder:
    """A folder whose listing matched its manifest (and whose signature, when keys were given, verified).
    `read` hands out a listed file's bytes after hashing exactly those bytes, so what is parsed is what was
    checked. `digests` is None only for a folder without a manifest read with `allow_missing_manifest`."""

    path: Path
    digests: Mapping[str, str] | None
    manifest: bytes = b""  # the manifest's exact bytes, as checked
    signed_by: str | None = None  # the fingerprint of the trusted key that signed the manifest
    signature_present: bool = False

    def has(self, name: str) -> bool:
        return name in self.digests if self.digests is not None else (self.path / name).is_file()

    def read(self, name: str) -> bytes:
        """The bytes of FOLDER/name, checked against the manifest (CheckpointError when not listed or changed)."""
        if self.digests is not None and name not in self.digests:
            raise CheckpointError(f"{self.path / name}: missing (not in the folder, not in its {MANIFEST})")
        data = _read(self.path / name)
        if self.digests is not None:
            _match(self.path, name, hashlib.sha256(data).hexdigest(), self.digests[name])
        return data


def _match(folder: Path, name: str, actual: str, expected: str) -> None:
    if actual != expected:
        raise CheckpointError(
            f"{folder / name}: SHA-256 mismatch ({actual}, its {MANIFEST} lists {expected}): the file was changed "
            "after the folder was written (tampered with or corrupted). Do not use it: restore the folder from "
            "its source or bundle it again (gruasr model bundle)"
        )


def check_folder(
    folder: str | os.PathLike[str],
    trusted_keys: Sequence[TrustedKey] | TrustedKey | None = None,
    *,
    deferred: Iterable[str] = (),
    allow_missing_manifest: bool = False,
) -> CheckedFolder:
    """Check FOLDER against its checksums.sha256: the signature first (with `trusted_keys`: over the manifest's
    raw bytes, before they are parsed), then the listing (exactly the listed files, regular, no links, no
    subfolders), then every file's SHA-256, except the `deferred` ones: the caller reads those with
    CheckedFolder.read, which hashes the bytes it returns. `allow_missing_manifest` (for re-bundling a training
    run made before manifests, never for recognition) lets a folder without one through, unchecked, with a
    logged warning. Every fault is a CheckpointError naming the folder, the file and what to do."""
    folder = Path(folder)
    keys = public_keys(trusted_keys)
    if not folder.is_dir():
        raise CheckpointError(f"model not found: {folder}")
    manifest = folder / MANIFEST
    if not manifest.exists() and not manifest.is_symlink():
        if allow_missing_manifest and not keys:
            _log.warning("%s: no %s (written by a gruasr before manifests): its files are not checked", folder,
                         MANIFEST)  # fmt: skip
            listing(folder)
            return CheckedFolder(folder, None)
        raise CheckpointError(
            f"{folder}: no {MANIFEST}, the SHA-256 manifest every model folder carries, so its files cannot be "
            f"checked. If you trust this folder (made by a gruasr before manifests), write one with "
            f"`gruasr model manifest {folder}`; otherwise bundle the model again"
        )
    data = _read(manifest, _MAX_MANIFEST)
    if len(data) > _MAX_MANIFEST:
        raise CheckpointError(f"{manifest}: over {_MAX_MANIFEST} bytes, too large to be a model folder's manifest")
    signature_present = (folder / SIGNATURE).exists() or (folder / SIGNATURE).is_symlink()
    signed_by = _check_signature(folder, data, keys) if keys else None
    digests = parse_manifest(data, manifest)
    present = listing(folder)
    missing = sorted(set(digests) - set(present))
    if missing:
        raise CheckpointError(
            f"{folder / missing[0]}: missing, though {MANIFEST} lists it ({len(missing)} listed file(s) missing: "
            f"{', '.join(missing[:5])}): the folder is incomplete; restore it or bundle it again"
        )
    extra = [name for name in present if name not in digests]
    if extra:
        raise CheckpointError(
            f"{folder / extra[0]}: not listed in {MANIFEST} ({len(extra)} unlisted file(s): {', '.join(extra[:5])}); "
            "a model folder holds only the files its manifest lists: remove it, or, if you trust it, rewrite the "
            f"manifest with `gruasr model manifest {folder}`"
        )
    skip = set(deferred)
    for name in present:
        if name not in skip:
            _match(folder, name, sha256(folder / name), digests[name])
    return CheckedFolder(folder, digests, data, signed_by, signature_present)


# -- Ed25519 keys and signatures (RFC 8032) ----------------------------------------------------------------


def fingerprint(key: Ed25519PublicKey) -> str:
    """A short name of a public key for messages: "ed25519:" + the first 16 hex digits of the SHA-256 of its
    32 raw bytes."""
    from cryptography.hazmat.primitives import serialization

    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "ed25519:" + hashlib.sha256(raw).hexdigest()[:16]


def load_public_key(path: str | os.PathLike[str]) -> Ed25519PublicKey:
    """An Ed25519 public key from a PEM file (SubjectPublicKeyInfo: `gruasr model keygen`'s NAME.pub, or
    `openssl pkey -pubout`). ConfigError when it is missing or not one."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    path = Path(path)
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except OSError as err:
        raise ConfigError(f"trusted key {path}: cannot read it ({err.strerror})") from None
    except ValueError:
        raise ConfigError(
            f"trusted key {path}: not a PEM public key (expected '-----BEGIN PUBLIC KEY-----', as "
            "`gruasr model keygen` writes to NAME.pub; a private key is never a trusted key)"
        ) from None
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigError(f"trusted key {path}: a {type(key).__name__}, not an Ed25519 public key")
    return key


def public_keys(trusted: Sequence[TrustedKey] | TrustedKey | None) -> list[Ed25519PublicKey]:
    """The trusted keys as key objects: paths are read (load_public_key). None or empty: no keys, signatures
    are not required."""
    if trusted is None:
        return []
    if isinstance(trusted, (str, os.PathLike)) or not isinstance(trusted, Sequence):
        trusted = [trusted]
    if not trusted:
        return []
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    keys = []
    for key in trusted:
        if isinstance(key, (str, os.PathLike)):
            key = load_public_key(key)
        if not isinstance(key, Ed25519PublicKey):
            raise ConfigError(f"a trusted key must be a PEM file path or an Ed25519PublicKey, got {type(key).__name__}")
        keys.append(key)
    return keys


def _check_signature(folder: Path, manifest: bytes, keys: Sequence[Ed25519PublicKey]) -> str:
    from cryptography.exceptions import InvalidSignature

    names = ", ".join(fingerprint(k) for k in keys)
    path = folder / SIGNATURE
    if not path.exists() and not path.is_symlink():
        raise CheckpointError(
            f"{folder}: unsigned (no {SIGNATURE}), and only folders signed by a trusted key ({names}) are "
            f"accepted: have it signed (gruasr model sign {folder} --key KEY) or use a signed copy"
        )
    signature = _read(path, _SIGNATURE_BYTES)
    if len(signature) != _SIGNATURE_BYTES:
        raise CheckpointError(f"{path}: not 64 bytes, so not a raw Ed25519 signature: refused")
    for key in keys:
        try:
            key.verify(signature, manifest)
        except InvalidSignature:
            continue
        return fingerprint(key)
    raise CheckpointError(
        f"{path}: not a valid signature of {MANIFEST} by any trusted key ({names}): the manifest was changed after "
        "it was signed, or another key signed it. Do not use the folder"
    )


def generate_keys(name: str | os.PathLike[str]) -> tuple[Path, Path, str]:
    """A new Ed25519 key pair: NAME.key (PKCS#8 PEM private key, unencrypted, created with mode 0600) and
    NAME.pub (SubjectPublicKeyInfo PEM). Refuses to overwrite either. Returns both paths and the fingerprint."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    base = Path(name)
    if base.suffix in (".key", ".pub"):
        base = base.with_suffix("")
    private_path, public_path = base.with_name(base.name + ".key"), base.with_name(base.name + ".pub")
    for path in (private_path, public_path):
        if path.exists() or path.is_symlink():
            raise ConfigError(f"{path} already exists: keys are never overwritten; choose another --out")
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    for path, data, mode in ((private_path, private, 0o600), (public_path, public, 0o644)):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
    return private_path, public_path, fingerprint(key.public_key())


def sign_folder(folder: str | os.PathLike[str], key_path: str | os.PathLike[str]) -> tuple[Path, str]:
    """Sign FOLDER's manifest with the Ed25519 private key in `key_path` (PKCS#8 PEM, unencrypted), after checking
    that every file matches it (a signature vouches for the files, not only the list). Writes
    checksums.sha256.sig; returns its path and the key's fingerprint."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key_path = Path(key_path)
    try:
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except OSError as err:
        raise ConfigError(f"signing key {key_path}: cannot read it ({err.strerror})") from None
    except (ValueError, TypeError) as err:
        raise ConfigError(f"signing key {key_path}: not an unencrypted PEM private key ({err})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"signing key {key_path}: a {type(key).__name__}, not an Ed25519 private key")
    checked = check_folder(folder)
    path = checked.path / SIGNATURE
    tmp = checked.path / f".{SIGNATURE}.tmp"
    tmp.write_bytes(key.sign(checked.manifest))
    os.replace(tmp, path)
    return path, fingerprint(key.public_key())
