"""Verified model folders (gruasr.integrity through gruasr.bundle): the SHA-256 manifest refuses a tampered byte
in any file, extra, missing and linked files, subfolders and malformed manifests, before anything is parsed;
coreutils `sha256sum -c` agrees with our manifests; Ed25519 signatures round-trip, refuse unsigned, re-hashed
and other-key folders under --trusted-key, and interoperate with `openssl pkeyutl` both ways; the CLI's
manifest, keygen, sign and verify; every writer of a model folder leaves a manifest; no pickle in src."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
import torch

from gruasr.bundle import PRETRAINED, load_bundle, save_model, verify, write_model_files
from gruasr.cli.main import main
from gruasr.errors import CheckpointError, ConfigError
from gruasr.integrity import (
    MANIFEST,
    SIGNATURE,
    check_folder,
    fingerprint,
    generate_keys,
    load_public_key,
    sign_folder,
    write_manifest,
)
from gruasr.recognizer import OfflineRecognizer
from gruasr.training.checkpoint import save_checkpoint

from .test_bundle import saved, small_bundle

SRC = Path(__file__).resolve().parents[1] / "src" / "gruasr"
SAMPLE = SRC / "samples" / "call.wav"
OPENSSL = shutil.which("openssl")
SHA256SUM = shutil.which("sha256sum")
needs_openssl = pytest.mark.skipif(OPENSSL is None, reason="the openssl program is not installed")
needs_sha256sum = pytest.mark.skipif(SHA256SUM is None, reason="coreutils sha256sum is not installed")


@pytest.fixture
def telephone(tmp_path: Path) -> Path:
    """A copy of the bundled telephone model to tamper with."""
    return Path(shutil.copytree(PRETRAINED / "telephone", tmp_path / "telephone"))


def _sha256sum_check(folder: Path) -> subprocess.CompletedProcess[str]:
    """coreutils checking our manifest, run inside the folder as a user would."""
    return subprocess.run(
        [str(SHA256SUM), "--check", "--strict", MANIFEST], cwd=folder, capture_output=True, text=True, check=False
    )


def _flip_byte(path: Path, position: float = 0.5) -> None:
    data = bytearray(path.read_bytes())
    data[int(position * (len(data) - 1))] ^= 0x20
    path.write_bytes(bytes(data))


# -- the manifest ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["telephone", "telephone-streaming"])
@needs_sha256sum
def test_the_bundled_models_carry_a_manifest_of_every_file_that_sha256sum_accepts(name: str) -> None:
    folder = PRETRAINED / name
    files = check_folder(folder)
    assert sorted(files.digests or {}) == sorted(p.name for p in folder.iterdir() if p.name != MANIFEST)
    assert set(files.digests or {}) >= {"model.json", "model.safetensors", "lm.arpa", "lexicon.txt", "RECIPE.md"}
    lines = (folder / MANIFEST).read_text().splitlines()
    assert lines == sorted(lines, key=lambda line: line[66:])
    facts = verify(folder)
    assert facts["files"] == sorted(files.digests or {}) and facts["lm"] is not None
    result = _sha256sum_check(folder)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", ["model.safetensors", "lm.arpa", "model.json", "lexicon.txt", "RECIPE.md"])
def test_a_tampered_byte_in_any_model_file_is_refused_before_it_is_parsed(telephone: Path, name: str) -> None:
    _flip_byte(telephone / name)
    with pytest.raises(CheckpointError, match=rf"{re.escape(name)}: SHA-256 mismatch .*gruasr model bundle"):
        load_bundle(telephone)
    with pytest.raises(CheckpointError, match=rf"{re.escape(name)}: SHA-256 mismatch"):
        OfflineRecognizer.load(telephone)
    if SHA256SUM is not None:  # an independent tool sees the same fault
        result = _sha256sum_check(telephone)
        assert result.returncode != 0 and f"{name}: FAILED" in result.stdout


def test_the_lm_is_hashed_again_as_it_is_read_for_parsing(telephone: Path) -> None:
    bundle = load_bundle(telephone)
    _flip_byte(telephone / "lm.arpa")  # changed between loading the model and reading the LM
    with pytest.raises(CheckpointError, match="lm.arpa: SHA-256 mismatch"):
        bundle.language_model()


def test_extra_missing_and_non_regular_files_are_refused(tmp_path: Path) -> None:
    folder = saved(tmp_path / "m")
    assert sorted(p.name for p in folder.iterdir()) == [MANIFEST, "model.json", "model.safetensors"]

    def refused(match: str) -> None:
        with pytest.raises(CheckpointError, match=match):
            load_bundle(folder)

    (folder / "notes.txt").write_text("hello")
    refused(r"notes.txt: not listed in checksums.sha256 .*gruasr model manifest")
    (folder / "notes.txt").unlink()
    (folder / ".DS_Store").write_bytes(b"\0")  # hidden files are files too
    refused(r"\.DS_Store: not listed")
    (folder / ".DS_Store").unlink()
    (folder / "sub").mkdir()
    refused("sub: a subfolder")
    (folder / "sub").rmdir()

    weights = folder / "model.safetensors"
    shutil.copy2(weights, tmp_path / "elsewhere.safetensors")
    weights.unlink()
    refused(r"model.safetensors: missing, though checksums.sha256 lists it")
    weights.symlink_to(tmp_path / "elsewhere.safetensors")  # the same bytes, behind a link: refused outright
    refused(r"model.safetensors: a symbolic link")
    weights.unlink()
    shutil.copy2(tmp_path / "elsewhere.safetensors", weights)
    load_bundle(folder)

    manifest = folder / MANIFEST
    shutil.move(manifest, tmp_path / MANIFEST)
    manifest.symlink_to(tmp_path / MANIFEST)
    refused(r"checksums.sha256: a symbolic link")
    manifest.unlink()
    refused(rf"no checksums.sha256, .*`gruasr model manifest {re.escape(str(folder))}`")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="not a gruasr model"):
        load_bundle(tmp_path / "empty")


@pytest.mark.parametrize(
    ("manifest", "match"),
    [
        (b"", "lists no files"),
        (b"\xff\xfe not text\n", "not UTF-8"),
        (b"{digest} model.json\n", "malformed line"),  # one space
        (b"{short}  model.json\n", "malformed line"),
        (b"{digest}  model.json extra\n", "not listed|missing"),  # a name with a space is just another name
        (b"zz" + b"0" * 62 + b"  model.json\n", "malformed line"),
        (b"{digest}  ../model.json\n", "not a file of this folder"),
        (b"{digest}  sub/model.json\n", "not a file of this folder"),
        (b"{digest}  ..\n", "not a file of this folder"),
        (b"{digest}  checksums.sha256\n", "not a file of this folder"),
        (b"{digest}  model.json\n{digest}  model.json\n", "listed twice"),
        (b"# a comment\n", "malformed line"),
        (b"{digest}  model.json\r\n", "malformed line|not a file of this folder"),
    ],
)
def test_malformed_manifests_are_refused(tmp_path: Path, manifest: bytes, match: str) -> None:
    folder = saved(tmp_path / "m")
    digest = (folder / MANIFEST).read_text().split()[0].encode()
    text = manifest.replace(b"{digest}", digest).replace(b"{short}", digest[:60])
    (folder / MANIFEST).write_bytes(text)
    with pytest.raises(CheckpointError, match=match) as caught:
        load_bundle(folder)
    assert str(folder) in str(caught.value)


@needs_sha256sum
def test_manifests_written_by_sha256sum_itself_are_accepted_text_or_binary_mode(tmp_path: Path) -> None:
    folder = saved(tmp_path / "m")
    for flag in ("--text", "--binary"):  # "<hex>  name" and "<hex> *name"
        names = sorted(p.name for p in folder.iterdir() if p.name != MANIFEST)
        listing = subprocess.run([str(SHA256SUM), flag, *names], cwd=folder, capture_output=True, check=True).stdout
        (folder / MANIFEST).write_bytes(listing)
        assert load_bundle(folder).path == folder


def test_without_a_manifest_only_bundling_input_is_read_with_a_warning(tmp_path: Path, caplog) -> None:
    folder = saved(tmp_path / "m")
    (folder / MANIFEST).unlink()  # a run's model written by a gruasr before manifests
    with pytest.raises(CheckpointError, match="gruasr model manifest"):
        load_bundle(folder)
    with caplog.at_level(logging.WARNING, logger="gruasr.integrity"):
        bundle = load_bundle(folder, allow_missing_manifest=True)
    assert bundle.model is not None and "no checksums.sha256" in caplog.text
    keys = generate_keys(tmp_path / "k")
    with pytest.raises(CheckpointError, match="no checksums.sha256"):  # a signature needs a manifest
        load_bundle(folder, allow_missing_manifest=True, trusted_keys=[keys[1]])


def test_every_writer_of_a_model_folder_leaves_a_manifest(tmp_path: Path) -> None:
    b = small_bundle()
    folder = save_model(tmp_path / "saved", b.model, b.features, b.cmvn, b.tokens)
    assert check_folder(folder).digests is not None
    (tmp_path / "plain").mkdir()
    write_model_files(tmp_path / "plain", b.model, b.features, b.cmvn, b.tokens)
    load_bundle(tmp_path / "plain")
    (folder / "lm.arpa").write_text("\\data\\\nngram 1=1\n\n\\1-grams:\n-1.0 yes\n\n\\end\\\n")
    write_manifest(folder)
    save_model(folder, b.model, b.features, b.cmvn, b.tokens)  # keeps lm.arpa, lists it
    assert "lm.arpa" in (check_folder(folder).digests or {})
    optimizer = torch.optim.AdamW(b.model.parameters())
    args = {"model": b.model, "features": b.features, "cmvn": b.cmvn, "tokens": b.tokens}
    checkpoint = save_checkpoint(tmp_path / "epoch-000", args, optimizer, {"epoch": 0})
    assert set(check_folder(checkpoint).digests or {}) == {"model.json", "model.safetensors", "trainer.json",
                                                           "trainer.safetensors"}  # fmt: skip
    load_bundle(checkpoint)


def test_no_pickle_anywhere_in_the_package() -> None:
    """Weights are safetensors and everything else JSON: torch.load and pickle could run code from a file."""
    offenders = []
    for path in SRC.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        for pattern in ("torch.load(", "import pickle", "from pickle", "weights_only", "joblib", "dill"):
            if pattern in text:
                offenders.append(f"{path.relative_to(SRC)}: {pattern}")
    assert offenders == []


# -- signatures --------------------------------------------------------------------------------------------


def test_keygen_writes_a_private_key_only_its_owner_reads_and_never_overwrites(tmp_path: Path) -> None:
    private, public, name = generate_keys(tmp_path / "release")
    assert (private.name, public.name) == ("release.key", "release.pub")
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert private.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    assert public.read_text().startswith("-----BEGIN PUBLIC KEY-----")
    assert fingerprint(load_public_key(public)) == name and name.startswith("ed25519:")
    with pytest.raises(ConfigError, match="already exists"):
        generate_keys(tmp_path / "release")
    with pytest.raises(ConfigError, match="a private key is never a trusted key"):
        load_public_key(private)
    with pytest.raises(ConfigError, match="cannot read it"):
        load_public_key(tmp_path / "nothing.pub")


def test_a_signed_folder_loads_under_its_key_and_every_forgery_is_refused(telephone: Path, tmp_path: Path) -> None:
    private, public, name = generate_keys(tmp_path / "release")
    _, other, _ = generate_keys(tmp_path / "other")
    with pytest.raises(CheckpointError, match=rf"unsigned .*{name}.*gruasr model sign"):
        load_bundle(telephone, trusted_keys=[public])
    signature, signer = sign_folder(telephone, private)
    assert signature.name == SIGNATURE and len(signature.read_bytes()) == 64 and signer == name
    assert check_folder(telephone, [public]).signed_by == name
    assert load_bundle(telephone, trusted_keys=[other, public]).files.signed_by == name  # any one of them
    assert load_bundle(telephone, trusted_keys=[load_public_key(public)]).files.signed_by == name  # key objects
    assert verify(telephone, trusted_keys=str(public))["signed_by"] == name  # one path alone
    assert verify(telephone)["signature_present"]  # no keys: the signature is allowed and not checked
    with pytest.raises(CheckpointError, match=r"not a valid signature of checksums.sha256 by any trusted key"):
        load_bundle(telephone, trusted_keys=[other])

    # an attacker edits the LM and rewrites the manifest consistently, but cannot sign it
    good = (telephone / MANIFEST).read_bytes()
    with (telephone / "lm.arpa").open("a") as f:
        f.write("\n")
    forged = re.sub(rb"\S+(  lm.arpa)", lambda m: _digest(telephone / "lm.arpa") + m.group(1), good)
    (telephone / MANIFEST).write_bytes(forged)
    load_bundle(telephone)  # without keys the manifest alone cannot tell
    with pytest.raises(CheckpointError, match="changed after it was signed"):
        load_bundle(telephone, trusted_keys=[public])
    with pytest.raises(CheckpointError, match="changed after it was signed"):
        OfflineRecognizer.load(telephone, trusted_keys=[public])

    (telephone / MANIFEST).write_bytes(good)
    (telephone / SIGNATURE).write_bytes(b"\0" * 10)
    with pytest.raises(CheckpointError, match="not a raw Ed25519 signature"):
        load_bundle(telephone, trusted_keys=[public])


def _digest(path: Path) -> bytes:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest().encode()


def test_rewriting_a_manifest_keeps_a_signature_only_while_it_still_holds(tmp_path: Path) -> None:
    folder = saved(tmp_path / "m")
    private, public, _ = generate_keys(tmp_path / "k")
    sign_folder(folder, private)
    assert not write_manifest(folder).removed_signature  # the same bytes: still signed
    load_bundle(folder, trusted_keys=[public])
    (folder / "lexicon.txt").write_text("yes\nno\n")
    assert write_manifest(folder).removed_signature and not (folder / SIGNATURE).exists()
    (folder / "RECIPE.md").write_text("changed")
    with pytest.raises(CheckpointError, match="RECIPE.md: not listed"):
        sign_folder(folder, private)  # a signature vouches for the files: only a folder that checks is signed


@needs_openssl
def test_openssl_verifies_our_signatures_and_we_accept_openssls(telephone: Path, tmp_path: Path) -> None:
    private, public, _ = generate_keys(tmp_path / "ours")
    sign_folder(telephone, private)
    command = [str(OPENSSL), "pkeyutl", "-verify", "-pubin", "-inkey", str(public), "-rawin",
               "-in", MANIFEST, "-sigfile", SIGNATURE]  # fmt: skip
    result = subprocess.run(command, cwd=telephone, capture_output=True, text=True, check=False)
    assert result.returncode == 0 and "Signature Verified Successfully" in result.stdout, result.stderr
    forged = telephone / MANIFEST
    forged.write_bytes(forged.read_bytes().replace(b"lm.arpa", b"lm.arpb"))
    assert subprocess.run(command, cwd=telephone, capture_output=True, check=False).returncode != 0

    write_manifest(telephone)  # restore a consistent, unsigned folder; now OpenSSL makes the key and signs
    key, pub = tmp_path / "openssl.key", tmp_path / "openssl.pub"
    subprocess.run([str(OPENSSL), "genpkey", "-algorithm", "ed25519", "-out", str(key)], check=True)
    subprocess.run([str(OPENSSL), "pkey", "-in", str(key), "-pubout", "-out", str(pub)], check=True)
    subprocess.run([str(OPENSSL), "pkeyutl", "-sign", "-inkey", str(key), "-rawin", "-in", MANIFEST,
                    "-out", SIGNATURE], cwd=telephone, check=True)  # fmt: skip
    assert load_bundle(telephone, trusted_keys=[pub]).files.signed_by == fingerprint(load_public_key(pub))
    with pytest.raises(CheckpointError, match="not a valid signature"):
        load_bundle(telephone, trusted_keys=[public])
    sign_folder(telephone, key)  # and our signer takes OpenSSL's PKCS#8 key
    load_bundle(telephone, trusted_keys=[pub])


# -- the CLI -----------------------------------------------------------------------------------------------


def test_cli_manifest_keygen_sign_and_verify(telephone: Path, tmp_path: Path, capsys) -> None:
    (telephone / MANIFEST).unlink()  # a folder from before manifests
    assert main(["model", "verify", str(telephone)]) == 1
    err = capsys.readouterr().err
    assert f"gruasr model manifest {telephone}" in err and err.count("\n") == 1
    assert main(["model", "manifest", str(telephone)]) == 0
    assert "wrote" in capsys.readouterr().out and (telephone / MANIFEST).is_file()
    assert main(["model", "manifest", str(tmp_path)]) == 1  # not a model folder
    assert "not a gruasr model" in capsys.readouterr().err and not (tmp_path / MANIFEST).exists()

    keys = tmp_path / "release"
    assert main(["model", "keygen", "--out", str(keys)]) == 0
    out = capsys.readouterr().out
    assert "release.key" in out and "release.pub" in out
    assert main(["model", "keygen", "--out", str(keys)]) == 1 and "already exists" in capsys.readouterr().err
    assert main(["model", "keygen", "--out", str(tmp_path / "other")]) == 0
    capsys.readouterr()

    pub = str(keys) + ".pub"
    assert main(["model", "verify", str(telephone), "--trusted-key", pub]) == 1
    assert "unsigned" in capsys.readouterr().err
    assert main(["model", "sign", str(telephone), "--key", str(keys) + ".key"]) == 0
    assert "signed by ed25519:" in capsys.readouterr().out
    assert main(["model", "verify", str(telephone)]) == 0
    assert "signature not checked" in capsys.readouterr().out
    assert main(["model", "verify", str(telephone), "--trusted-key", str(tmp_path / "other.pub"),
                 "--trusted-key", pub]) == 0  # fmt: skip
    assert "5 files match checksums.sha256, signed by ed25519:" in capsys.readouterr().out
    assert main(["model", "verify", str(telephone), "--json", "--trusted-key", pub]) == 0
    assert json.loads(capsys.readouterr().out)["signed_by"].startswith("ed25519:")
    assert main(["model", "verify", str(telephone), "--trusted-key", str(tmp_path / "other.pub")]) == 1
    err = capsys.readouterr().err
    assert "not a valid signature" in err and err.count("\n") == 1
    assert main(["model", "verify", str(telephone), "--trusted-key", str(keys) + ".key"]) == 1
    assert "never a trusted key" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["transcribe", "call", "stream"])
def test_recognition_commands_take_trusted_keys(telephone: Path, tmp_path: Path, capsys, command: str) -> None:
    private, public, _ = generate_keys(tmp_path / "k")
    _, other, _ = generate_keys(tmp_path / "other")
    base = [command, str(SAMPLE), "--model", str(telephone), "--greedy"]
    if command == "call":
        base.append("--json")
    assert main([*base, "--trusted-key", str(public)]) == 1
    assert "unsigned" in capsys.readouterr().err
    sign_folder(telephone, private)
    assert main([*base, "--trusted-key", str(other)]) == 1
    assert "not a valid signature" in capsys.readouterr().err
    if command == "transcribe":  # one full run is enough to show a signed folder is used
        assert main([*base, "--trusted-key", str(other), "--trusted-key", str(public)]) == 0
        assert capsys.readouterr().out.strip()


def test_streaming_recognizer_load_passes_trusted_keys(tmp_path: Path) -> None:
    from gruasr.streaming import StreamingRecognizer

    folder = Path(shutil.copytree(PRETRAINED / "telephone-streaming", tmp_path / "s"))
    private, public, name = generate_keys(tmp_path / "k")
    with pytest.raises(CheckpointError, match="unsigned"):
        StreamingRecognizer.load(folder, trusted_keys=[public])
    sign_folder(folder, private)
    assert StreamingRecognizer.load(folder, trusted_keys=[public]).offline.bundle.files.signed_by == name
    assert os.path.exists(folder / SIGNATURE)
