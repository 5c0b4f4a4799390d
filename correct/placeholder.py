"""Placeholder adapters: a published, valid adapter folder and manifest that learned nothing.

For engines without local weights (the mock): the online loop and the
correction experiment publish these so that labelling, switching, forks,
replay and resume run end to end without a trainer. Used through
:func:`placeholder_trainer`, which has :func:`~socius.correct.train.start_training`'s
signature and returns a finished :class:`PlaceholderTraining`.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["PlaceholderTraining", "placeholder_trainer"]


@dataclass
class PlaceholderTraining:
    """A finished "training" whose adapter learned nothing (``wait()`` gives its manifest)."""

    manifest: dict
    job_dir: Path | None = None

    def poll(self) -> bool:
        return True

    def wait(self, timeout=None) -> dict:
        return self.manifest


def placeholder_trainer(run_dir, name, method, *, labels, base=None, chat=None, **hp) -> PlaceholderTraining:
    """For engines without weights (mock): publish ``adapters/<name>-vN`` with a placeholder adapter and a
    full manifest, at once — it exercises labelling, switching and replay, not learning."""
    from .adapters import file_hashes, publish, write_json
    from .datasets import build_training_set
    from .labels import LabelStore as _Store
    tset = build_training_set(labels, method)
    root = Path(run_dir) / "adapters" / ".jobs"
    tmp = root / f"{name}-placeholder-{os.getpid()}-{time.time_ns()}"
    tmp.mkdir(parents=True)
    write_json(tmp / "adapter_config.json", {"peft_type": "LORA", "placeholder": True, "base_model_name_or_path": ""})
    (tmp / "adapter_model.safetensors").write_bytes(b"")
    tset.write(tmp / "dataset.parquet")
    files = ("adapter_config.json", "adapter_model.safetensors", "dataset.parquet")
    write_json(tmp / "manifest.json", {
        "name": name, "method": method, "placeholder": True, "base": {"path": str(base or ""), "hash": ""},
        "hyperparameters": dict(hp), "labels": {"fingerprint": _Store(run_dir).fingerprint(tset.labels),
                                                "size": tset.labels.num_rows, "rows": len(tset)},
        "loss": {"first": None, "final": None, "mean": None}, "steps": 0, "wall_s": 0.0, "versions": {},
        "files": file_hashes(tmp, files)})
    folder = publish(tmp, run_dir, name)
    from .adapters import load_manifest
    return PlaceholderTraining(load_manifest(folder))
