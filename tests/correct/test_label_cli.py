"""``socius label`` (the terminal flow, fed through stdin) and ``socius correct import`` (CSV / Parquet labels)."""
import io

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest

from socius.app.cli import main
from socius.correct import LabelError, LabelStore, load_replies, make_labels
from socius.correct.importing import import_labels
from socius.correct.sampling import run_world, sample


@pytest.fixture(scope="module")
def base_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("label") / "run"
    assert main(["run", "guess", "--agents", "200", "--rounds", "2", "--engine", "mock", "--seed", "1",
                 "--out", str(out), "--quiet"]) == 0
    return out


@pytest.fixture
def run(base_run, tmp_path):
    """A fresh copy of the run for each test (labels are written into it)."""
    import shutil
    dest = tmp_path / "run"
    shutil.copytree(base_run, dest)
    return dest


def label(run, stdin, *flags, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin) if isinstance(stdin, str) else stdin)
    return main(["label", str(run), "--labeller", "ann", *flags])


def identity(t, rows=None):
    t = t if rows is None else t.take(pa.array(rows))
    return list(zip(*(t.column(c).to_pylist() for c in ("tick", "decision", "kind", "entity", "completion"))))


def test_label_scores_rewrites_and_resumes(run, monkeypatch, capsys):
    replies = load_replies(run)
    answers = np.array(replies.column("kind").to_pylist()) == "answer"
    want = identity(replies, sample(replies, "uniform:5", 2, eligible=answers))
    # 1st: score 3; 2nd: skip; 3rd: a bad key, then a rewrite and score 4; then quit
    assert label(run, "3\n\n9\nr\n{\"number\": 10}\naim lower\n\n4\nq\n", "--sample", "uniform:5", "--seed", "2",
                 monkeypatch=monkeypatch) == 0
    out = capsys.readouterr().out
    assert "profile" in out and "occupation" in out and "reply" in out  # guess agents have a Profile
    assert "'9'" in out  # the bad key was refused and asked again
    store = LabelStore(run)
    got = store.read()
    assert got.num_rows == 2 and len(store.parts()) == 2  # one part per label: nothing lost on a crash
    assert got.column("source").to_pylist() == ["human:ann"] * 2
    assert identity(got) == [want[0], want[2]]
    assert got.column("score").to_pylist() == [3, 4]
    assert got.column("revision").to_pylist() == [None, '{"number": 10}\naim lower']
    # resume: the two labelled replies are skipped; the skipped one and the unseen ones come back
    assert label(run, "5\n5\n5\n", "--sample", "uniform:5", "--seed", "2", monkeypatch=monkeypatch) == 0
    assert "2 of these 5 replies are labelled by human:ann already" in capsys.readouterr().out
    got = store.read()
    assert sorted(identity(got)) == sorted(want) and got.num_rows == 5
    # another labeller sees all five again
    monkeypatch.setattr("sys.stdin", io.StringIO("1\n"))
    assert main(["label", str(run), "--labeller", "bob", "--sample", "uniform:5", "--seed", "2"]) == 0
    assert store.read().column("source").to_pylist().count("human:bob") == 1


class InterruptAfter(io.StringIO):
    """Raises KeyboardInterrupt (Ctrl-C) once ``lines`` lines have been read."""

    def __init__(self, text, lines):
        super().__init__(text)
        self.left = lines

    def readline(self, *a):
        if self.left == 0:
            raise KeyboardInterrupt
        self.left -= 1
        return super().readline(*a)


def test_ctrl_c_and_end_of_input_keep_what_was_given(run, monkeypatch, capsys):
    assert label(run, InterruptAfter("2\n3\n", 1), "--sample", "uniform:4", monkeypatch=monkeypatch) == 130
    assert "interrupted" in capsys.readouterr().err
    assert LabelStore(run).read().column("score").to_pylist() == [2]
    assert label(run, "4\n", "--sample", "uniform:4", monkeypatch=monkeypatch) == 0  # input ends: stop, keep
    assert LabelStore(run).read().column("score").to_pylist() == [2, 4]


def test_label_by_cohort_decision_and_kind(run, monkeypatch):
    assert label(run, "1\n" * 4, "--sample", "per-cohort:4:Profile.age >= 50", "--decision", "guess",
                 monkeypatch=monkeypatch) == 0
    got = LabelStore(run).read()
    w = run_world(run)
    prof = [c for c in w.component_types() if c.__name__ == "Profile"][0]
    assert got.num_rows == 4 and (w.get(prof, "age", got.column("entity").to_numpy()) >= 50).all()
    assert set(got.column("kind").to_pylist()) == {"answer"}
    assert label(run, "2\n" * 3, "--sample", "uniform:3", "--kind", "extract", monkeypatch=monkeypatch) == 0
    assert LabelStore(run).read().column("kind").to_pylist().count("extract") == 3


@pytest.mark.parametrize("flags,match", [
    (["--labeller", "a:b"], "labeller"), (["--sample", "uniform"], "needs a count"),
    (["--decision", "nope"], "no logged replies"),
])
def test_label_usage_errors_exit_2(run, monkeypatch, capsys, flags, match):
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    with pytest.raises(SystemExit) as e:
        main(["label", str(run), *flags])
    assert e.value.code == 2 and match in capsys.readouterr().err


def key_columns(replies, rows):
    return replies.take(pa.array(rows)).select(["tick", "decision", "entity", "prompt_hash"])


def test_import_csv_and_reimport(run, tmp_path, capsys):
    replies = load_replies(run)
    rows = [0, 3, 4]  # 3 and 4 are completions of one sampled request: told apart by entity
    t = key_columns(replies, rows)
    t = t.append_column("score", pa.array(["5", "", "2"])).append_column(
        "revision", pa.array(["", 'multi\nline "quoted", text', ""])).append_column(
        "rationale", pa.array(["fine", "", ""]))
    f = tmp_path / "labels.csv"
    pcsv.write_csv(t, f)
    assert main(["correct", "import", str(run), str(f), "--source", "human:zoe"]) == 0
    assert "imported 3 labels" in capsys.readouterr().out
    got = LabelStore(run).read().sort_by([("entity", "ascending")])  # entities 0, 121, 193 here
    assert identity(got) == identity(replies, rows)
    assert got.column("score").to_pylist() == [5, None, 2]
    assert got.column("revision").to_pylist() == [None, 'multi\nline "quoted", text', None]
    assert got.column("rationale").to_pylist() == ["fine", None, None]
    assert got.column("source").to_pylist() == ["human:zoe"] * 3
    assert got.column("prompt").to_pylist() == replies.take(pa.array(rows)).column("prompt").to_pylist()
    assert main(["correct", "import", str(run), str(f), "--source", "human:zoe"]) == 0
    assert "imported 0 labels" in capsys.readouterr().out and LabelStore(run).read().num_rows == 3


def test_import_an_exported_label_table(run, tmp_path):
    replies = load_replies(run)
    labels = make_labels(replies.slice(10, 4), "judge:big-model", score=[1, 2, 3, 4])
    f = tmp_path / "exported.parquet"
    pq.write_table(labels, f)
    back = import_labels(f, replies, "human:ignored")
    assert back.column("label_id").to_pylist() == labels.column("label_id").to_pylist()
    assert back.column("source").to_pylist() == ["judge:big-model"] * 4  # the file's own source wins
    # a pandas-style file: integer scores with gaps become floats
    pq.write_table(key_columns(replies, [1, 2]).append_column("score", pa.array([3.0, None])).append_column(
        "revision", pa.array([None, "x"])), tmp_path / "floats.parquet")
    assert import_labels(tmp_path / "floats.parquet", replies).column("score").to_pylist() == [3, None]


def write_csv(path, **cols):
    pcsv.write_csv(pa.table(cols), path)
    return path


@pytest.mark.parametrize("edit,match", [
    (lambda c: c.update(score=["7", "2"]), r"row 1, column score: must be an integer 1\.\.5"),
    (lambda c: c.update(score=["2", "3.5"]), r"row 2, column score"),
    (lambda c: c.update(score=["2", ""]), r"row 2, columns score/revision"),
    (lambda c: c.update(tick=[0, 99]), r"row 2: no logged reply"),
    (lambda c: c.pop("prompt_hash"), r"missing columns \['prompt_hash'\]"),
    (lambda c: c.pop("score"), r"needs a score column"),
    (lambda c: c.update(entity=["x", "1"]), r"row 1, column entity"),
    (lambda c: c.update(source=["human:a", "bob"]), r"row 2, column source"),
])
def test_import_errors_name_file_row_and_column(run, tmp_path, edit, match):
    replies = load_replies(run)
    k = key_columns(replies, [0, 1])
    cols = {c: k.column(c).to_pylist() for c in k.column_names}
    cols["score"] = ["1", "2"]
    edit(cols)
    f = write_csv(tmp_path / "bad.csv", **cols)
    with pytest.raises(LabelError, match=match) as e:
        import_labels(f, replies)
    assert "bad.csv" in str(e.value)


def test_import_refuses_ambiguous_and_unreadable_files(run, tmp_path, capsys):
    replies = load_replies(run)
    doubled = pa.concat_tables([replies.slice(0, 1), replies.slice(0, 1).set_column(
        replies.schema.get_field_index("completion"), "completion", pa.array(["other"], pa.large_string()))])
    f = write_csv(tmp_path / "one.csv", **{c: key_columns(replies, [0]).column(c).to_pylist()
                                           for c in ("tick", "decision", "entity", "prompt_hash")}, score=[3])
    with pytest.raises(LabelError, match="several logged replies"):
        import_labels(f, doubled)
    g = write_csv(tmp_path / "two.csv", **{c: key_columns(replies, [0]).column(c).to_pylist()
                                           for c in ("tick", "decision", "entity", "prompt_hash")}, score=[3],
                  completion=["other"])
    assert import_labels(g, doubled).column("completion").to_pylist() == ["other"]  # the completion decides
    (tmp_path / "x.json").write_text("{}")
    with pytest.raises(LabelError, match="csv or .parquet"):
        import_labels(tmp_path / "x.json", replies)
    (tmp_path / "bad.parquet").write_bytes(b"nope")
    with pytest.raises(LabelError, match="bad.parquet"):
        import_labels(tmp_path / "bad.parquet", replies)
    with pytest.raises(SystemExit) as e:
        main(["correct", "import", str(run), str(tmp_path / "missing.csv")])
    assert e.value.code == 2 and "missing.csv" in capsys.readouterr().err
