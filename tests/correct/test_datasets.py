"""Training sets from labels: row counts, KTO thresholds and weights, DPO pairs (no torch needed)."""
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from socius.correct import LabelError, make_labels
from socius.correct.datasets import build_training_set, parse_band, select_labels


def _labels(scores, revisions, completions=None, decisions=None, kinds=None, source="human:t"):
    m = len(scores)
    completions = completions or [f"reply {i}" for i in range(m)]
    replies = pa.table({"run": ["r"] * m, "tick": np.arange(m), "decision": decisions or ["d"] * m,
                        "kind": kinds or ["answer"] * m, "entity": np.arange(m), "prompt_hash": np.arange(m),
                        "prompt": [f"prompt {i}" for i in range(m)], "completion": completions,
                        "model": [""] * m, "adapter": [""] * m, "seed": np.zeros(m, np.int64)})
    return make_labels(replies, source, score=scores, revision=revisions)


# a label: (score or None, revision or None, revision equals the reply); at least one of score/revision
label_st = st.tuples(st.one_of(st.none(), st.integers(1, 5)), st.one_of(st.none(), st.text(min_size=1, max_size=8)),
                     st.booleans()).filter(lambda x: x[0] is not None or x[1] is not None)


def _build(items):
    scores = [s for s, _, _ in items]
    revisions = [r for _, r, _ in items]
    completions = [r if (r is not None and same) else f"reply {i}" for i, (_, r, same) in enumerate(items)]
    return _labels(scores, revisions, completions)


@settings(max_examples=60, deadline=None)
@given(st.lists(label_st, min_size=1, max_size=30))
def test_row_counts_follow_the_labels(items):
    labels = _build(items)
    n_rev = sum(r is not None for _, r, _ in items)
    n_pair = sum(r is not None and not same for _, r, same in items)
    if n_rev:
        sft = build_training_set(labels, "sft")
        assert len(sft) == n_rev and sft.rows.column_names == ["prompt", "completion"]
        assert sorted(sft.rows.column("completion").to_pylist()) == sorted(r for _, r, _ in items if r is not None)
    else:
        with pytest.raises(LabelError, match="method sft needs 1 labels with revisions; this set has 0"):
            build_training_set(labels, "sft")
    if n_pair:
        dpo = build_training_set(labels, "dpo")
        assert len(dpo) == n_pair
        rows = dpo.rows.to_pylist()
        assert all(r["chosen"] != r["rejected"] for r in rows)
        # each pair is (revision, the reply it revises) of one label
        by_prompt = {p: (rev, c) for p, rev, c in zip(labels.column("prompt").to_pylist(),
                                                      labels.column("revision").to_pylist(),
                                                      labels.column("completion").to_pylist())}
        assert all(by_prompt[r["prompt"]] == (r["chosen"], r["rejected"]) for r in rows)
    else:
        with pytest.raises(LabelError, match="method dpo needs .*; this set has 0"):
            build_training_set(labels, "dpo")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 5), min_size=1, max_size=40), st.integers(1, 4), st.integers(1, 4))
def test_kto_thresholds_and_balances_the_two_sides(scores, low, width):
    high = min(low + width, 5)
    labels = _labels(scores, [None] * len(scores))
    s = np.array(scores)
    n_good, n_bad = int((s >= high).sum()), int((s <= low).sum())
    if n_good == 0 or n_bad == 0:
        with pytest.raises(LabelError, match="method kto needs .*(both sides|this set has 0)"):
            build_training_set(labels, "kto", band=(low, high))
        return
    kto = build_training_set(labels, "kto", band=(low, high))
    lab = np.array(kto.rows.column("label").to_pylist())
    assert len(kto) == n_good + n_bad and lab.sum() == n_good
    assert kto.rows.column_names == ["prompt", "completion", "label"]
    ratio = kto.desirable_weight * n_good / (kto.undesirable_weight * n_bad)
    assert ratio == pytest.approx(1.0) and min(kto.desirable_weight, kto.undesirable_weight) == 1.0


def test_the_default_threshold_is_four():
    kto = build_training_set(_labels([1, 2, 3, 4, 5], [None] * 5), "kto")
    assert kto.rows.column("label").to_pylist() == [False, False, False, True, True]
    assert kto.desirable_weight == 1.5 and kto.undesirable_weight == 1.0


def test_band_parsing_names_the_flag():
    assert parse_band("2:4") == (2, 4)
    for bad in ("4:2", "0:3", "x", "1:6"):
        with pytest.raises(LabelError, match="--band"):
            parse_band(bad)


def test_select_by_decision_source_and_kind():
    labels = _labels([5, 1, 4], [None] * 3, decisions=["a", "b", "a"], kinds=["answer", "answer", "extract"])
    assert select_labels(labels).num_rows == 2
    assert select_labels(labels, decisions=["a"]).num_rows == 1
    assert select_labels(labels, sources=["judge:"]).num_rows == 0
    assert select_labels(labels, sources=["human:"], kinds=None).num_rows == 3


def test_unknown_method_and_min_rows():
    labels = _labels([None], ["better"])
    with pytest.raises(LabelError, match="--method"):
        build_training_set(labels, "ppo")
    with pytest.raises(LabelError, match="needs 5 labels with revisions; this set has 1"):
        build_training_set(labels, "sft", min_rows=5)


def test_write_is_a_parquet_file(tmp_path):
    import pyarrow.parquet as pq

    tset = build_training_set(_labels([None, None], ["a", "b"]), "sft")
    path = tset.write(tmp_path / "x" / "dataset.parquet")
    assert pq.read_table(path).equals(tset.rows)
    assert [p.name for p in path.parent.iterdir()] == ["dataset.parquet"]


def test_the_command_refuses_a_set_without_revisions(tmp_path, capsys):
    from socius.app.cli import main
    from socius.correct import LabelStore

    run = tmp_path / "run"
    LabelStore(run).append(_labels([5, 1], [None, None]))
    with pytest.raises(SystemExit) as exit_:
        main(["correct", "train", str(run), "--method", "dpo", "--name", "fix"])
    assert exit_.value.code == 2
    assert "method dpo needs 1 labels with revisions that differ from the reply; this set has 0" in \
        capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["correct", "train", str(run), "--method", "sft", "--name", "fix", "--band", "2:4"])
    assert "--band: only for --method kto" in capsys.readouterr().err
