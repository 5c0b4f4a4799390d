"""Adapter folders: versions, manifests, corruption, base mismatch, base resolution (no torch needed)."""
import json
import os

import pytest

from socius.correct.adapters import (AdapterError, adapter_versions, file_hashes, latest_adapter, load_manifest,
                                     publish, weights_hash, write_json)
from socius.errors import ConfigError


def _model(folder, content=b"weights"):
    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(content)
    (folder / "config.json").write_text("{}")
    return folder


def _adapter(tmp_path, run, name, base):
    out = tmp_path / f"out-{len(list(tmp_path.iterdir()))}"
    out.mkdir()
    (out / "adapter_config.json").write_text('{"r": 4}')
    (out / "adapter_model.safetensors").write_bytes(b"lora" * 10)
    write_json(out / "manifest.json", {
        "name": name, "method": "sft", "base": {"path": str(base), "hash": weights_hash(base)},
        "hyperparameters": {"rank": 4}, "labels": {"fingerprint": "f", "size": 3, "rows": 3},
        "loss": {"final": 0.5, "mean": 1.0}, "wall_s": 1.0, "versions": {},
        "files": file_hashes(out, ["adapter_config.json", "adapter_model.safetensors"])})
    return publish(out, run, name)


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SOCIUS_CACHE", str(tmp_path / "cache"))


def test_versions_increment_and_latest_is_the_newest(tmp_path):
    run, base = tmp_path / "run", _model(tmp_path / "base")
    assert latest_adapter(run, "fix") is None
    paths = [_adapter(tmp_path, run, "fix", base) for _ in range(3)]
    _adapter(tmp_path, run, "other", base)
    assert [p.name for p in paths] == ["fix-v1", "fix-v2", "fix-v3"]
    assert [n for n, _ in adapter_versions(run, "fix")] == [1, 2, 3]
    assert latest_adapter(run, "fix") == paths[-1]
    m = load_manifest(paths[1], base=base)
    assert m["version"] == 2 and m["path"] == str(paths[1]) and m["method"] == "sft"
    assert not [p for p in (run / "adapters").iterdir() if p.name.startswith(".")]  # no leftovers


def test_ten_versions_sort_by_number(tmp_path):
    run, base = tmp_path / "run", _model(tmp_path / "base")
    for _ in range(11):
        last = _adapter(tmp_path, run, "x", base)
    assert last.name == "x-v11" and latest_adapter(run, "x") == last


def test_corrupt_or_incomplete_folders_are_named(tmp_path):
    run, base = tmp_path / "run", _model(tmp_path / "base")
    a = _adapter(tmp_path, run, "fix", base)
    (a / "adapter_model.safetensors").write_bytes(b"lora" * 9 + b"LORA")
    with pytest.raises(AdapterError, match=rf"{a}: adapter_model.safetensors is corrupt"):
        load_manifest(a)
    b = _adapter(tmp_path, run, "fix", base)
    (b / "manifest.json").write_text("{not json")
    with pytest.raises(AdapterError, match=rf"{b}: corrupt manifest.json"):
        load_manifest(b)
    c = _adapter(tmp_path, run, "fix", base)
    (c / "adapter_config.json").unlink()
    with pytest.raises(AdapterError, match=rf"{c}: missing adapter_config.json"):
        load_manifest(c)
    d = _adapter(tmp_path, run, "fix", base)
    (d / "manifest.json").write_text(json.dumps({"name": "fix"}))
    with pytest.raises(AdapterError, match="lacks"):
        load_manifest(d)
    with pytest.raises(AdapterError, match="no such adapter folder"):
        load_manifest(run / "adapters" / "fix-v99")


def test_a_different_base_is_refused(tmp_path):
    run, base = tmp_path / "run", _model(tmp_path / "base")
    other = _model(tmp_path / "other", b"other weights")
    a = _adapter(tmp_path, run, "fix", base)
    with pytest.raises(AdapterError, match=rf"{a}: trained on base .* not on {other}"):
        load_manifest(a, base=other)


def test_weights_hash_is_content_based_and_cached(tmp_path):
    a, b = _model(tmp_path / "a"), _model(tmp_path / "b")
    assert weights_hash(a) == weights_hash(b)
    cache = json.loads((tmp_path / "cache" / "weights-hashes.json").read_text())
    assert str((a / "model.safetensors").resolve()) in cache
    # the cache is keyed by size and mtime: a rewrite of the same size with a new mtime is re-hashed
    (b / "model.safetensors").write_bytes(b"WEIGHTS")
    st = (b / "model.safetensors").stat()
    os.utime(b / "model.safetensors", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert weights_hash(a) != weights_hash(b)
    with pytest.raises(AdapterError, match="no \\*.safetensors"):
        weights_hash(tmp_path / "cache")


def test_bad_names_are_refused(tmp_path):
    with pytest.raises(AdapterError, match="--name"):
        publish(tmp_path, tmp_path / "run", "bad-name")


def test_resolve_base_checks_the_run(tmp_path):
    from socius.correct.train import resolve_base

    run, base = tmp_path / "run", _model(tmp_path / "base")
    copy = _model(tmp_path / "copy")  # same weights, another folder
    other = _model(tmp_path / "other", b"other")
    run.mkdir()
    (run / "run.json").write_text(json.dumps({"engine": {"kind": "vllm", "config": {"model": str(base)}}}))
    assert resolve_base(run) == base
    assert resolve_base(run, copy) == copy
    with pytest.raises(ConfigError, match=rf"--base {other}: does not match the run's model {base}"):
        resolve_base(run, other)
    with pytest.raises(ConfigError, match="not a transformers model folder"):
        resolve_base(run, tmp_path / "cache")
    (run / "run.json").write_text(json.dumps({"engine": {"kind": "mock", "config": {}}}))
    with pytest.raises(ConfigError, match="mock engine .*pass --base"):
        resolve_base(run)
    assert resolve_base(run, other) == other  # a mock run names no model: any base is taken
    (run / "run.json").unlink()
    with pytest.raises(ConfigError, match="no run.json"):
        resolve_base(run)
