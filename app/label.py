"""``socius label RUN_DIR`` (label replies in the terminal) and ``socius correct import`` (labels from CSV/Parquet).

``socius label`` picks replies with a sampling policy
(:mod:`socius.correct.sampling`; ``--sample uniform:50`` by default) and
shows, one at a time, the agent's profile (from the run's final snapshot,
when its world has a component named ``Profile``), the prompt and the reply;
it reads one line per reply from standard input — ``1``–``5`` a score,
Enter to skip, ``r`` to type a rewrite (lines up to an empty line, then an
optional score), ``q`` (or the end of input) to quit. Every label is saved
as soon as it is given, as its own part of the run's
:class:`~socius.correct.LabelStore` (a Ctrl-C loses nothing), with source
``human:<--labeller>``; a second session with the same sample and labeller
skips the replies that labeller already labelled, so it goes on where the
first stopped. The flow is plain lines on a stream — no curses — so a test
(or a pipe) can drive it.
"""
from __future__ import annotations

import getpass
import sys
from pathlib import Path

from .registry import Command

__all__ = ["COMMANDS", "label_session"]

DEFAULT_SAMPLE = "uniform:50"
KINDS = ("answer", "extract", "all")


def _default_labeller() -> str:
    try:
        return getpass.getuser() or "anonymous"
    except Exception:  # noqa: BLE001 - no user name in some containers
        return "anonymous"


def _profile_component(world):
    """``socius.components.Profile`` if the world has it, else its one component named ``Profile``, else None."""
    from socius.components import Profile

    types = world.component_types()
    if Profile in types:
        return Profile
    named = [c for c in types if c.__name__ == "Profile"]
    return named[0] if len(named) == 1 else None


def _profile_rows(world, comp, entity: int) -> list[tuple[str, str]]:
    """``(column, value)`` of ``entity``'s scalar and string columns of ``comp`` (display only)."""
    import numpy as np

    ids = np.array([entity], np.int64)
    if comp is None or not world.has(ids, comp)[0]:
        return []
    return [(name, str(world.get(comp, name, ids)[0])) for name in comp.columns()
            if comp.column(name).kind in ("scalar", "string")]


def _labelled_keys(store, source: str):
    """Identity hashes of the replies ``source`` has labelled already (``[l] uint64``)."""
    labels = store.read()
    mask = labels.column("source").to_numpy(zero_copy_only=False) == source
    return _reply_keys(labels.filter(mask))


def _reply_keys(table):
    import pyarrow as pa
    import pyarrow.compute as pc

    from socius.text.hashing import hash_strings

    cols = [table.column(c).cast(pa.large_string()) for c in ("run", "tick", "decision", "kind", "entity",
                                                               "prompt_hash", "completion")]
    return hash_strings(pc.binary_join_element_wise(*cols, pa.scalar("\x1f", pa.large_string())))


def _read(stdin) -> str | None:
    line = stdin.readline()
    return None if line == "" else line.rstrip("\r\n")


def _ask(console, stdin, prompt: str, allowed) -> str | None:
    """One answer from ``allowed`` (None at the end of input); asks again on anything else."""
    while True:
        console.print(prompt, end="", markup=True, highlight=False)
        got = _read(stdin)
        if got is None:
            return None
        if not getattr(stdin, "isatty", lambda: False)():
            console.print(got, markup=False, highlight=False)  # piped input: show what was answered
        got = got.strip().lower()
        if got in allowed:
            return got
        console.print(f"[yellow]?[/] {got!r}: type one of {', '.join(repr(a) for a in allowed if a)} or Enter")


def _show(console, k: int, n: int, row: dict, profile: list[tuple[str, str]]) -> None:
    from rich.panel import Panel
    from rich.table import Table
    from rich.text import Text

    console.rule(f"[bold]{k}/{n}[/]  tick {row['tick']} · {row['decision']} ({row['kind']}) · agent {row['entity']}")
    if profile:
        t = Table(show_header=False, box=None, pad_edge=False)
        for name, value in profile:
            t.add_row(Text(name, style="dim"), Text(value))
        console.print(Panel(t, title="profile", title_align="left"))
    console.print(Panel(Text(row["prompt"]), title="prompt", title_align="left"))
    console.print(Panel(Text(row["completion"]), title="reply", title_align="left", border_style="cyan"))


def label_session(run_dir, *, spec: str = DEFAULT_SAMPLE, seed: int = 0, labeller: str = "anonymous",
                  decisions=None, kind: str = "answer", stdin=None, console=None) -> dict:
    """Run the labelling flow (see the module docstring); returns ``{"shown", "scored", "revised", "skipped",
    "done_before", "quit"}``."""
    import numpy as np
    from rich.console import Console

    from socius.correct import LabelStore, load_replies, make_labels
    from socius.correct.labels import LabelError
    from socius.correct.sampling import parse_spec, run_world, sample

    stdin = sys.stdin if stdin is None else stdin
    console = Console() if console is None else console
    if kind not in KINDS:
        raise LabelError(f"--kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if not labeller or any(ch in labeller for ch in ":\n"):
        raise LabelError(f"--labeller must be a name without ':' (labels are saved as human:NAME), got {labeller!r}")
    source = f"human:{labeller}"
    replies = load_replies(run_dir, tuple(decisions) if decisions else None)
    world = None
    try:
        world = run_world(run_dir)
    except LabelError:
        if parse_spec(spec)["policy"] == "per-cohort":
            raise
    eligible = None if kind == "all" else replies.column("kind").to_numpy(zero_copy_only=False) == kind
    rows = sample(replies, spec, seed, world=world, eligible=eligible)
    store = LabelStore(run_dir)
    done = np.isin(_reply_keys(replies.take(rows)), _labelled_keys(store, source)) if rows.shape[0] else rows > 0
    todo = rows[~done]
    counts = {"shown": 0, "scored": 0, "revised": 0, "skipped": 0, "done_before": int(done.sum()), "quit": False}
    if counts["done_before"]:
        console.print(f"{counts['done_before']} of these {rows.shape[0]} replies are labelled by {source} already")
    comp = _profile_component(world) if world is not None else None
    scores = [str(s) for s in range(1, 6)]
    for k, i in enumerate(todo, start=counts["done_before"] + 1):
        one = replies.slice(int(i), 1)
        row = {c: one.column(c)[0].as_py() for c in ("tick", "decision", "kind", "entity", "prompt", "completion")}
        _show(console, k, rows.shape[0], row, _profile_rows(world, comp, row["entity"]) if comp is not None else [])
        counts["shown"] += 1
        got = _ask(console, stdin, "score [bold]1–5[/], Enter skip, [bold]r[/] rewrite, [bold]q[/] quit: ",
                   scores + ["", "r", "q"])
        if got is None or got == "q":
            counts["quit"] = True
            break
        score, revision = None, None
        if got == "r":
            console.print("rewrite (end with an empty line):")
            lines = []
            while (line := _read(stdin)) not in (None, ""):
                lines.append(line)
            revision = "\n".join(lines) or None
            got = _ask(console, stdin, "score of the original reply [bold]1–5[/] (Enter for none): ", scores + [""])
        if got in scores:
            score = int(got)
        if score is None and revision is None:
            counts["skipped"] += 1
            continue
        store.append(make_labels(one, source, score=[score], revision=[revision]))
        counts["scored"] += score is not None
        counts["revised"] += revision is not None
    console.print(f"{counts['scored']} scores and {counts['revised']} rewrites saved to {store.dir}"
                  f"{' (stopped)' if counts['quit'] else ''}", highlight=False)
    return counts


def _add_label_arguments(p) -> None:
    from .args import seed_flag

    p.add_argument("run_dir", metavar="RUN_DIR", type=Path, help="a run directory with a response log")
    p.add_argument("--sample", default=DEFAULT_SAMPLE, metavar="SPEC",
                   help="which replies: uniform:K, per-decision:K, per-cohort:K:EXPR, outcome-first:K, "
                        f"each optionally ,cap:N per agent (default {DEFAULT_SAMPLE})")
    p.add_argument("--decision", action="append", metavar="NAME", help="only this decision (repeatable)")
    p.add_argument("--kind", choices=KINDS, default="answer", help="which calls: the answers (default), "
                   "the extraction calls, or all")
    p.add_argument("--seed", type=seed_flag, default=0, help="sampling seed (default 0)")
    p.add_argument("--labeller", default=None, metavar="NAME",
                   help="your name: labels are saved as human:NAME (default: the login name)")


def _run_label(args) -> int:
    try:
        label_session(args.run_dir, spec=args.sample, seed=args.seed,
                               labeller=args.labeller or _default_labeller(), decisions=args.decision,
                               kind=args.kind)
    except KeyboardInterrupt:
        print("\ninterrupted: every label given so far is saved", file=sys.stderr)
        return 130
    return 0


def _add_import_arguments(p) -> None:
    p.add_argument("run_dir", metavar="RUN_DIR", type=Path, help="the run whose replies the labels judge")
    p.add_argument("file", metavar="FILE", type=Path, help="a .csv or .parquet file of labels")
    p.add_argument("--source", default="human:import", metavar="SOURCE",
                   help="source of rows without a source column: human:NAME, rule:NAME or judge:MODEL "
                        "(default human:import)")


def _run_import(args) -> int:
    import numpy as np
    import pyarrow as pa

    from socius.correct import LabelStore, load_replies
    from socius.correct.importing import import_labels

    labels = import_labels(args.file, load_replies(args.run_dir), args.source)
    store = LabelStore(args.run_dir)
    known = store.read().column("label_id").to_numpy(zero_copy_only=False)
    new = ~np.isin(labels.column("label_id").to_numpy(zero_copy_only=False), known)
    part = store.append(labels.filter(pa.array(new)))
    print(f"imported {int(new.sum())} labels from {args.file}"
          + (f" ({int((~new).sum())} already there)" if (~new).any() else "")
          + (f" -> {part}" if part else ""))
    return 0


COMMANDS: tuple[Command, ...] = (
    Command(("label",), "label a run's replies in the terminal: score 1-5 and/or rewrite, saved as you go",
            _add_label_arguments, _run_label),
    Command(("correct", "import"), "import labels (score/revision per reply) from a CSV or Parquet file",
            _add_import_arguments, _run_import),
)
