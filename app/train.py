"""``socius correct train RUN_DIR``: train a LoRA adapter from a run's labels (TRL + PEFT).

Builds the method's training set from the run's labels (the newest label of
each reply per source; ``--decision`` / ``--source`` narrow it), checks the
base weights against the run's model, and trains in a child process
(:mod:`socius.correct.train`). By default it waits and prints the adapter's
manifest summary; ``--background`` prints the job's log path and returns at
once (the adapter appears as ``RUN_DIR/adapters/<name>-vN`` when done, or
``result.json`` in the job folder says why not). Exit codes: 0 trained (or
started), 1 the training failed, 2 a usage error (bad flag, empty label set,
base mismatch, missing ``train`` extra).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from .args import int_flag, seed_flag
from .registry import Command

__all__ = ["COMMANDS"]


def _float_flag(flag: str, positive: bool = True):
    def parse(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag}: not a number: {text!r}") from None
        if positive and not v > 0:
            raise argparse.ArgumentTypeError(f"{flag}: must be > 0, got {text}")
        return v
    return parse


def add_arguments(p) -> None:
    p.add_argument("run_dir", metavar="RUN_DIR", type=Path, help="the run whose labels to train on")
    p.add_argument("--method", required=True, choices=("sft", "kto", "dpo"),
                   help="sft: on revisions; kto: on scores (thresholded); dpo: revision over the original reply")
    p.add_argument("--name", required=True, help="adapter name: the folder is RUN_DIR/adapters/NAME-vN")
    p.add_argument("--base", type=Path, help="base model folder (default: the run's model; must match it)")
    p.add_argument("--model", default="", help="the engine model the labels are of, in a mixture (default: the "
                                               "default engine)")
    p.add_argument("--decision", action="append", help="train only on labels of this decision (repeatable)")
    p.add_argument("--source", action="append",
                   help="train only on labels whose source starts with this, e.g. human: or judge: (repeatable)")
    p.add_argument("--threshold", type=int_flag("--threshold", 2), default=None,
                   help="kto: a score >= this is desirable, below it undesirable (default 4)")
    p.add_argument("--band", metavar="LOW:HIGH",
                   help="kto: desirable >= HIGH, undesirable <= LOW, the scores between are dropped")
    p.add_argument("--min-labels", type=int_flag("--min-labels", 1), default=1,
                   help="refuse to train on fewer training rows (default 1)")
    p.add_argument("--epochs", type=_float_flag("--epochs"), help="passes over the set (default 3)")
    p.add_argument("--max-steps", type=int_flag("--max-steps", 1), help="stop after this many steps (wins over "
                                                                       "--epochs)")
    p.add_argument("--lr", type=_float_flag("--lr"), help="learning rate (default 2e-4 sft, 5e-6 kto/dpo)")
    p.add_argument("--rank", type=int_flag("--rank", 1), help="LoRA rank (default 16; alpha = 2 x rank)")
    p.add_argument("--batch-size", type=int_flag("--batch-size", 1), help="rows per step (default 4)")
    p.add_argument("--beta", type=_float_flag("--beta"), help="kto/dpo: the KL weight beta (default 0.1)")
    p.add_argument("--seed", type=seed_flag, default=0, help="training seed (default 0)")
    p.add_argument("--background", action="store_true",
                   help="start the training and return at once (prints where its log is)")


def _band(args) -> tuple[int, int]:
    from socius.correct.datasets import parse_band
    from socius.errors import ConfigError

    if args.band and args.threshold is not None:
        raise ConfigError("argument --band: give --band or --threshold, not both")
    if args.method != "kto" and (args.band or args.threshold is not None):
        raise ConfigError(f"argument --{'band' if args.band else 'threshold'}: only for --method kto")
    if args.band:
        return parse_band(args.band)
    t = 4 if args.threshold is None else args.threshold
    if t > 5:
        raise ConfigError(f"argument --threshold: scores are 1..5, got {t}")
    return t - 1, t


def summary(manifest: dict) -> str:
    """A few lines about a trained adapter (its manifest)."""
    loss, lab, hp = manifest["loss"], manifest["labels"], manifest["hyperparameters"]
    fmt = lambda x: "?" if x is None else f"{x:.4f}"  # noqa: E731
    return "\n".join([
        f"adapter: {manifest['path']}",
        f"  method {manifest['method']}, {manifest.get('steps', '?')} steps in {manifest['wall_s']:.1f} s, "
        f"loss {fmt(loss.get('first'))} -> {fmt(loss.get('final'))} (mean {fmt(loss.get('mean'))})",
        f"  labels {lab['size']} ({lab['rows']} training rows), fingerprint {lab['fingerprint']}",
        f"  base {manifest['base']['path']} (weights {manifest['base']['hash'][:16]})",
        f"  lora rank {hp['rank']}, lr {hp['lr']}, batch {hp['batch_size']}, seed {hp['seed']}",
    ])


def run(args) -> int:
    from socius.correct import LabelStore
    from socius.correct.datasets import select_labels
    from socius.correct.train import TrainError, start_training
    from socius.errors import ConfigError

    if not args.run_dir.is_dir():
        raise ConfigError(f"argument RUN_DIR: no such run directory {args.run_dir}")
    band = _band(args)
    labels = LabelStore(args.run_dir).read(latest=True)
    if labels.num_rows == 0:
        raise ConfigError(f"{args.run_dir}: no labels (label replies first: socius label, socius correct judge)")
    labels = select_labels(labels, decisions=args.decision, sources=args.source, model=args.model)
    training = start_training(args.run_dir, args.name, args.method, labels=labels, base=args.base,
                              model=args.model, band=band, min_rows=args.min_labels, epochs=args.epochs,
                              max_steps=args.max_steps, lr=args.lr, rank=args.rank, batch_size=args.batch_size,
                              beta=args.beta, seed=args.seed)
    if args.background:
        print(f"training {args.name} ({args.method}) in process {training.proc.pid}\n"
              f"  log: {training.log}\n  done when {args.run_dir / 'adapters'}/{args.name}-vN appears "
              f"(or {training.job_dir / 'result.json'} says why not)")
        return 0
    print(f"training {args.name} ({args.method}); log: {training.log}", flush=True)
    try:
        manifest = training.wait()
    except KeyboardInterrupt:
        training.proc.terminate()
        raise
    except TrainError as e:
        print(f"error: {e}")
        return 1
    print(summary(manifest))
    return 0


COMMANDS = (Command(path=("correct", "train"), help="train a LoRA adapter from a run's labels (TRL + PEFT)",
                    add_arguments=add_arguments, run=run),)
