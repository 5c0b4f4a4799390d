"""Adapter folders: versioned LoRA adapters with a manifest, kept with the run.

Layout::

    RUN_DIR/adapters/<name>-v1/    adapter_config.json, adapter_model.safetensors (PEFT's files),
                   <name>-v2/      train.log, dataset.parquet, manifest.json
                   .jobs/          one folder per training job: job.json, train.log, result.json

A version appears only whole: training writes into a hidden temporary folder
and :func:`publish` renames it to the next free ``<name>-vN`` (N = 1, 2, …),
so a reader never sees half an adapter and two trainings of one name get two
versions. ``manifest.json`` says what the adapter is:

===============  ===========================================================
key              value
===============  ===========================================================
name, method     the adapter's name; ``sft`` / ``kto`` / ``dpo``
base             ``{"path", "hash"}``: the base model folder and :func:`weights_hash` of it
hyperparameters  the trainer's settings (epochs, lr, rank, max_steps, seed, …)
labels           ``{"fingerprint", "size", "rows"}``: :meth:`LabelStore.fingerprint` of the
                 label set, its label count and the training rows made from it
loss             ``{"final", "mean"}``: the last logged and the mean training loss
wall_s           training time in seconds
versions         trl, peft, torch, transformers versions
files            ``{file: {"size", "blake2b"}}`` of the adapter's files (checked on load)
created          UTC time, ISO 8601
===============  ===========================================================

The base hash is the BLAKE2b of the base folder's ``*.safetensors`` bytes
(name and content, in name order); hashing a 16 GB model takes a while, so
each file's hash is cached (``$SOCIUS_CACHE/weights-hashes.json`` or
``~/.cache/socius/…``) under its path, size and mtime.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from pathlib import Path

from socius.errors import ConfigError

__all__ = ["AdapterError", "MANIFEST", "adapters_dir", "adapter_versions", "latest_adapter", "load_manifest",
           "publish", "weights_hash", "write_json", "file_hashes"]

MANIFEST = "manifest.json"
PEFT_FILES = ("adapter_config.json", "adapter_model.safetensors")
REQUIRED_KEYS = ("name", "method", "base", "hyperparameters", "labels", "loss", "wall_s", "versions", "files")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.]*$")  # no "-v" ambiguity: hyphens are not allowed
_CHUNK = 1 << 22


class AdapterError(ConfigError):
    """An adapter folder that cannot be used (names the folder and what is wrong)."""


def adapters_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / "adapters"


def check_name(name: str) -> str:
    if not NAME_RE.match(name or ""):
        raise AdapterError(f"--name {name!r}: use letters, digits, '_' and '.' (the folder is <name>-vN)")
    return name


def _shareable(path: Path) -> None:
    """Give ``path`` the usual umask permissions (``mkstemp`` and some writers make files private)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, (0o777 if path.is_dir() else 0o666) & ~umask)


def write_json(path: Path, data) -> Path:
    """Write ``data`` as JSON atomically (temp file in the same folder + rename)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    _shareable(Path(tmp))
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=1, default=str)
            f.write("\n")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def _file_hash(path: Path) -> str:
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def file_hashes(folder: Path, names) -> dict:
    """``{name: {"size", "blake2b"}}`` of the files ``names`` in ``folder``."""
    return {n: {"size": (folder / n).stat().st_size, "blake2b": _file_hash(folder / n)} for n in names}


def _hash_cache_path() -> Path:
    root = os.environ.get("SOCIUS_CACHE")
    return (Path(root).expanduser() if root else Path.home() / ".cache" / "socius") / "weights-hashes.json"


def weights_hash(model_dir: str | Path, cache: Path | None = None) -> str:
    """BLAKE2b (hex) of a model folder's ``*.safetensors`` files (names and bytes, in name order).

    Each file's hash is cached under its resolved path, size and mtime (``cache``:
    default ``$SOCIUS_CACHE/weights-hashes.json``); raises :class:`AdapterError`
    for a folder without safetensors.
    """
    folder = Path(model_dir)
    files = sorted(folder.glob("*.safetensors")) if folder.is_dir() else []
    if not files:
        raise AdapterError(f"{folder}: not a model folder (no *.safetensors files)")
    cache = cache or _hash_cache_path()
    try:
        known = json.loads(cache.read_text())
    except (OSError, ValueError):
        known = {}
    total, changed = hashlib.blake2b(digest_size=16), False
    for f in files:
        st = f.stat()
        key = str(f.resolve())
        entry = known.get(key)
        if not (isinstance(entry, dict) and entry.get("size") == st.st_size and entry.get("mtime_ns") == st.st_mtime_ns):
            entry = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "blake2b": _file_hash(f)}
            known[key], changed = entry, True
        total.update(f"{f.name}\0{entry['blake2b']}\n".encode())
    if changed:
        try:
            cache.parent.mkdir(parents=True, exist_ok=True)
            write_json(cache, known)
        except OSError:
            pass  # a read-only cache only costs time
    return total.hexdigest()


def adapter_versions(run_dir: str | Path, name: str) -> list[tuple[int, Path]]:
    """``[(N, folder)]`` of the published versions of ``name``, oldest first."""
    root = adapters_dir(run_dir)
    pat = re.compile(rf"^{re.escape(name)}-v(\d+)$")
    found = []
    if root.is_dir():
        for p in root.iterdir():
            m = pat.match(p.name)
            if m and p.is_dir():
                found.append((int(m.group(1)), p))
    return sorted(found)


def publish(folder: str | Path, run_dir: str | Path, name: str) -> Path:
    """Rename a finished adapter ``folder`` to the next free ``adapters/<name>-vN``; returns the new path."""
    folder = Path(folder)
    root = adapters_dir(run_dir)
    root.mkdir(parents=True, exist_ok=True)
    for f in folder.iterdir():
        _shareable(f)
    while True:
        versions = adapter_versions(run_dir, check_name(name))
        target = root / f"{name}-v{(versions[-1][0] if versions else 0) + 1}"
        try:
            target.mkdir()  # claim the name (fails if another trainer took it), then swap the empty dir
        except FileExistsError:
            continue
        os.replace(folder, target)
        return target


def load_manifest(path: str | Path, base: str | Path | None = None, check_files: bool = True) -> dict:
    """The manifest of the adapter folder ``path``, validated; raises :class:`AdapterError` naming the folder.

    Checks: the folder, ``manifest.json`` and PEFT's files exist; the manifest has
    every key; with ``check_files`` each file's size and hash match the manifest;
    with ``base`` (a model folder) its :func:`weights_hash` is the manifest's base hash.
    The result has ``path`` and ``version`` (from the folder name) added.
    """
    folder = Path(path)
    if not folder.is_dir():
        raise AdapterError(f"{folder}: no such adapter folder")
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except FileNotFoundError:
        raise AdapterError(f"{folder}: not an adapter (no {MANIFEST})") from None
    except (OSError, ValueError) as e:
        raise AdapterError(f"{folder}: corrupt {MANIFEST} ({e})") from None
    if not isinstance(manifest, dict):
        raise AdapterError(f"{folder}: corrupt {MANIFEST} (not an object)")
    missing = [k for k in REQUIRED_KEYS if k not in manifest]
    if missing:
        raise AdapterError(f"{folder}: {MANIFEST} lacks {missing}")
    for f in PEFT_FILES:
        if not (folder / f).is_file():
            raise AdapterError(f"{folder}: missing {f}")
    if check_files:
        for f, want in manifest["files"].items():
            p = folder / f
            if not p.is_file():
                raise AdapterError(f"{folder}: missing {f}")
            if p.stat().st_size != want.get("size") or _file_hash(p) != want.get("blake2b"):
                raise AdapterError(f"{folder}: {f} is corrupt (size or hash differs from {MANIFEST})")
    if base is not None:
        got = weights_hash(base)
        if got != manifest["base"].get("hash"):
            raise AdapterError(f"{folder}: trained on base {manifest['base'].get('path')} "
                               f"(hash {manifest['base'].get('hash')}), not on {base} (hash {got})")
    m = re.match(r"^.*-v(\d+)$", folder.name)
    return {**manifest, "path": str(folder), "version": int(m.group(1)) if m else None}


def latest_adapter(run_dir: str | Path, name: str) -> Path | None:
    """The folder of the newest published version of ``name`` (None when there is none)."""
    versions = adapter_versions(run_dir, name)
    return versions[-1][1] if versions else None
