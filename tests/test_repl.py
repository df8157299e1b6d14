"""The REPL's command layer, called directly over a real Session (no embeddings, a small copy of the task)."""
import io
import sys
from pathlib import Path

import pytest
from rich.console import Console

from lfagent.errors import InputError, LFRejected
from lfagent.rundir.export import load_lfs
from lfagent.lf import LabelingFunction, Provenance
from lfagent.repl import COMMANDS, Shell, UsageError, parse_line
from lfagent.repl import commands as repl_commands
from lfagent.repl.app import Repl, start
from lfagent.repl.edit import editable_text, parse_edited
from lfagent.session import Session

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "youtube-spam"


def small_task(folder: Path, unlabeled_rows: int = 200) -> Path:
    """The youtube-spam task with all 100 seeds, fewer unlabeled rows and a short test file."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "seeds.jsonl").write_text((EXAMPLE / "seeds.jsonl").read_text(encoding="utf-8"), encoding="utf-8")
    for name, rows in (("unlabeled.jsonl", unlabeled_rows), ("test.jsonl", 100)):
        lines = (EXAMPLE / name).read_text(encoding="utf-8").splitlines(keepends=True)[:rows]
        (folder / name).write_text("".join(lines), encoding="utf-8")
    task = (EXAMPLE / "task.yaml").read_text(encoding="utf-8")
    (folder / "task.yaml").write_text(task, encoding="utf-8")
    return folder / "task.yaml"


@pytest.fixture(scope="module")
def task_path(tmp_path_factory):
    return small_task(tmp_path_factory.mktemp("task"))


@pytest.fixture
def session(task_path, tmp_path):
    s = Session(task_path, run_dir=tmp_path / "run", llm="none", embed=False)
    s.fit()
    yield s
    s.close()


@pytest.fixture
def shell(session):
    return Shell(session)


def text_of(outcome_or_items) -> str:
    items = outcome_or_items.output if hasattr(outcome_or_items, "output") else outcome_or_items
    console = Console(file=io.StringIO(), width=200, color_system=None)
    for item in items:
        console.print(item)
    return console.file.getvalue()


def kept_name(session, status="kept") -> str:
    return next(r["name"] for r in session.lfs if r["status"] == status and r["kind"] == "keywords")


def editor_script(tmp_path: Path, python_body: str) -> str:
    """An $EDITOR command: a Python script that rewrites the file it is given."""
    script = tmp_path / "fake_editor.py"
    script.write_text("import sys\nfrom pathlib import Path\npath = Path(sys.argv[1])\ntext = path.read_text()\n"
                      + python_body + "\npath.write_text(text)\n", encoding="utf-8")
    return f"{sys.executable} {script}"


# -- parsing ------------------------------------------------------------------------------------

def test_blank_lines_and_comments_are_no_commands():
    assert parse_line("") is None
    assert parse_line("   ") is None
    assert parse_line("# a comment") is None


def test_aliases_and_case_map_to_commands():
    assert parse_line("EXIT").name == "quit"
    assert parse_line("ls kept").name == "lfs"
    assert parse_line("ls kept").args == ["kept"]


def test_unknown_command_suggests_a_close_one():
    with pytest.raises(UsageError, match="did you mean `propose`"):
        parse_line("propse 2")


def test_bad_quoting_is_a_usage_error():
    with pytest.raises(UsageError, match="quotation"):
        parse_line('export "unterminated')


def test_label_takes_the_rest_of_the_line_with_or_without_quotes():
    assert parse_line('label "check out my channel"').args == ["check out my channel"]
    assert parse_line("label it's great, isn't it").args == ["it's great, isn't it"]


def test_help_lists_every_command(shell):
    text = text_of(shell.execute("help"))
    for name in COMMANDS:
        assert name in text
    assert "--kind code|keywords|recall|concepts" in text_of(shell.execute("help propose"))


# -- propose --------------------------------------------------------------------------------------

class _Report:
    def __init__(self, added=(), rejected=(), failures=()):
        self.added, self.rejected, self.failures, self.budget_spent = list(added), list(rejected), list(failures), 0


@pytest.mark.parametrize("line, message", [
    ("propose two", "invalid int value"),
    ("propose 2 --kind poems", "invalid choice"),
    ("propose 2 --class EGGS", "unknown class 'EGGS'"),
    ("propose 0", "between 1 and 50"),
    ("propose 2 --color red", "unrecognized arguments"),
])
def test_bad_propose_arguments_never_reach_the_llm(shell, monkeypatch, line, message):
    calls = []
    monkeypatch.setattr(shell.session, "propose", lambda *a, **k: calls.append((a, k)))
    with pytest.raises(UsageError, match=message):
        shell.execute(line)
    assert calls == []


def test_propose_passes_its_arguments_and_fits_the_new_candidates(shell, monkeypatch):
    calls = []
    new = LabelingFunction(name="kw_user_subscribe", kind="keywords", label="SPAM", keywords=["subscribe"],
                           provenance=Provenance(source="llm:keywords"))

    def fake_propose(n, *, kind, class_name):
        calls.append((n, kind, class_name))
        shell.session.add_lf(new)
        return _Report(added=[new], rejected=[("kw_bad", "unknown class 'EGGS'")])

    monkeypatch.setattr(shell.session, "propose", fake_propose)
    text = text_of(shell.execute("propose 3 --class SPAM --kind keywords"))
    assert calls == [(3, "keywords", "SPAM")]
    assert "1 added, 1 rejected" in text and "unknown class 'EGGS'" in text
    row = next(r for r in shell.session.lfs if r["name"] == "kw_user_subscribe")
    assert row["status"] in ("kept", "dropped") and row["seed_votes"] > 0  # scored by the fit


def test_refine_names_an_existing_lf(shell, monkeypatch):
    calls = []
    monkeypatch.setattr(shell.session, "refine", lambda name: calls.append(name) or _Report(failures=["timeout"]))
    name = kept_name(shell.session)
    assert "LLM call failed: timeout" in text_of(shell.execute(f"refine {name}"))
    with pytest.raises(InputError):
        shell.execute("refine no_such_lf")
    assert calls == [name]


def test_propose_without_llm_is_a_clear_error(shell):
    with pytest.raises(InputError, match="no LLM"):
        shell.execute("propose")


# -- lfs, show, status ----------------------------------------------------------------------------

def test_lfs_lists_names_coverage_accuracy_interval_and_status(shell):
    rows = shell.session.lfs
    text = text_of(shell.execute("lfs"))
    for row in rows:
        assert row["name"] in text
    assert "seed accuracy [95% CI]" in text and "kept" in text and "dropped" in text
    kept = text_of(shell.execute("lfs kept"))
    assert all(r["name"] not in kept for r in rows if r["status"] != "kept" and len(r["name"]) > 12)
    with pytest.raises(UsageError):
        shell.execute("lfs everything")


def test_show_gives_definition_stats_hits_and_mistakes(shell):
    name = kept_name(shell.session)
    lf = shell.session.get_lf(name)
    text = text_of(shell.execute(f"show {name}"))
    assert lf.summary() in text
    assert "hits on the seeds" in text and "mistakes on the seeds" in text
    hits, mistakes = repl_commands.seed_examples(shell.session, lf)
    assert hits and all(h["true"] == h["vote"] == lf.label for h in hits)
    assert all(m["vote"] == lf.label and m["true"] != lf.label for m in mistakes)


def test_unknown_lf_names_are_user_errors_with_a_hint(shell):
    name = kept_name(shell.session)
    with pytest.raises(InputError, match=f"did you mean {name}"):
        shell.execute(f"show {name}x")
    with pytest.raises(UsageError):
        shell.execute("keep")


def test_status_shows_counts_pins_and_last_fit(shell):
    shell.execute(f"drop {kept_name(shell.session)}")
    text = text_of(shell.execute("status"))
    assert "youtube-spam" in text and "1 drop" in text and "seed accuracy" in text


# -- keep / drop persist ---------------------------------------------------------------------------

def test_keep_and_drop_persist_in_the_run_store_and_apply_at_fit(shell, task_path):
    dropped_one, kept_one = kept_name(shell.session), kept_name(shell.session, "dropped")
    shell.execute(f"drop {dropped_one}")
    shell.execute(f"keep {kept_one}")
    run_dir = shell.session.run_dir
    shell.session.close()
    with Session(task_path, run_dir=run_dir, llm="none", embed=False) as again:
        pins = {r["name"]: r["pinned"] for r in again.lfs}
        assert pins[dropped_one] == "drop" and pins[kept_one] == "keep"
        text = text_of(Shell(again).execute("fit"))
        assert "seed accuracy" in text
        status = {r["name"]: r["status"] for r in again.lfs}
        assert status[dropped_one] == "dropped" and status[kept_one] == "kept"
        Shell(again).execute(f"unpin {kept_one}")
        assert {r["name"]: r["pinned"] for r in again.lfs}[kept_one] is None


# -- edit -----------------------------------------------------------------------------------------

def test_edit_keywords_in_editor_updates_rescores_and_persists(shell, tmp_path, monkeypatch, task_path):
    name = kept_name(shell.session)
    old = shell.session.get_lf(name)
    monkeypatch.setenv("EDITOR", editor_script(tmp_path, "text = text.replace(\"'keywords': [\", "
                                               "\"'keywords': ['subscribe', \")"))
    text = text_of(shell.execute(f"edit {name}"))
    assert "updated and re-scored" in text
    edited = shell.session.get_lf(name)
    assert edited.keywords == ["subscribe"] + old.keywords
    assert edited.provenance.source == "user"
    used = {lf.name: lf for lf in shell.session.result.final.candidates}
    assert name not in used or used[name].fingerprint == edited.fingerprint or "another version" in text
    run_dir = shell.session.run_dir
    shell.session.close()
    with Session(task_path, run_dir=run_dir, llm="none", embed=False) as again:
        assert again.get_lf(name).keywords == ["subscribe"] + old.keywords


@pytest.mark.parametrize("body, reason", [
    ("text = text.replace('{', '[', 1)", "not a Python dict literal"),
    ("text = text.replace(\"'label': \", \"'label': 'EGGS', 'x': \")", "x"),
    ("import re\ntext = re.sub(r\"'label': '\\w+'\", \"'label': 'EGGS'\", text)", "unknown class 'EGGS'"),
    ("import re\ntext = re.sub(r\"'name': '\\w+'\", \"'name': 'other'\", text)", "the name changed"),
])
def test_bad_declarative_edit_prints_the_reason_and_leaves_the_lf(shell, tmp_path, monkeypatch, body, reason):
    name = kept_name(shell.session)
    before = shell.session.get_lf(name)
    monkeypatch.setenv("EDITOR", editor_script(tmp_path, body))
    with pytest.raises(LFRejected, match=reason):
        shell.execute(f"edit {name}")
    assert shell.session.get_lf(name) == before


def test_unchanged_edit_and_failing_editor_leave_the_lf(shell, monkeypatch):
    name = kept_name(shell.session)
    before = shell.session.get_lf(name)
    monkeypatch.setenv("EDITOR", "true")
    assert "unchanged" in text_of(shell.execute(f"edit {name}"))
    monkeypatch.setenv("EDITOR", "false")
    with pytest.raises(InputError, match="exited with status 1"):
        shell.execute(f"edit {name}")
    assert shell.session.get_lf(name) == before


CODE_LF = "def label(record):\n    return 'SPAM' if 'check' in record['text'].lower() else None\n"


@pytest.mark.parametrize("replacement, reason", [
    ("import os\ndef label(record):\n    return os.environ.get('HOME')\n", "import of 'os' is not allowed"),
    ("def label(record):\n    return 1 / 0\n", "ZeroDivisionError"),
    ("def label(record:\n", "syntax error"),
])
def test_bad_code_edit_is_rejected_and_the_old_code_stays(shell, tmp_path, monkeypatch, replacement, reason):
    shell.session.add_lf(LabelingFunction(name="code_check", kind="code", label="SPAM", source=CODE_LF))
    monkeypatch.setenv("EDITOR", editor_script(tmp_path, f"text = {replacement!r}"))
    with pytest.raises(LFRejected, match=reason):
        shell.execute("edit code_check")
    assert shell.session.get_lf("code_check").source == CODE_LF


def test_good_code_edit_runs_in_the_sandbox_and_is_scored(shell, tmp_path, monkeypatch):
    shell.session.add_lf(LabelingFunction(name="code_check", kind="code", label="SPAM", source=CODE_LF))
    monkeypatch.setenv("EDITOR", editor_script(tmp_path, "text = text.replace(\"'check'\", \"'subscribe'\")"))
    shell.execute("edit code_check")
    assert "'subscribe'" in shell.session.get_lf("code_check").source
    row = next(r for r in shell.session.lfs if r["name"] == "code_check")
    assert row["seed_votes"] > 0 and not (row["reason"] or "").startswith("sandbox")


def test_declarative_text_round_trips():
    lf = LabelingFunction(name="kw_x", kind="keywords", label="SPAM", keywords=["a b", "c"],
                          provenance=Provenance(source="mined:ngram", detail="lift 3"))
    text, suffix = editable_text(lf)
    assert suffix == ".py" and text.startswith("#")
    again = parse_edited(lf, text)
    assert again.model_dump(exclude={"provenance"}) == lf.model_dump(exclude={"provenance"})
    # a person now owns the LF, so the miners cannot regenerate over it
    assert again.provenance.source == "user" and "mined:ngram" in again.provenance.detail


# -- label, eval, export, save, audit ----------------------------------------------------------------

def test_label_shows_each_vote_and_probabilities(shell):
    result = shell.session.label_text("check out my channel please subscribe")
    text = text_of(shell.execute('label "check out my channel please subscribe"'))
    assert "probabilities" in text and "HAM" in text and "SPAM" in text
    for name, vote in result["votes"].items():
        assert name in text
    assert any(v == "SPAM" for v in result["votes"].values())
    assert f"{result['probs']['SPAM']:.3f}" in text
    with pytest.raises(UsageError):
        shell.execute("label")


def test_eval_shows_seed_and_test_figures(shell):
    text = text_of(shell.execute("eval"))
    assert "cross-fitted on the seeds" in text and "accuracy" in text and "test" in text


def test_export_writes_a_loadable_module_of_the_kept_lfs(shell, tmp_path):
    path = tmp_path / "out" / "my_lfs.py"
    assert str(path) in text_of(shell.execute(f"export {path}"))
    assert [lf.name for lf in load_lfs(path)] == [lf.name for lf in shell.session.result.final.lfs]


def test_save_writes_silver_labels(shell):
    shell.execute("save")
    assert (shell.session.run_dir / "silver.jsonl").stat().st_size > 0


def test_audit_lists_seed_errors_and_silver_records(shell):
    text = text_of(shell.execute("audit"))
    assert "silver records worth a look" in text and "seed labels that look wrong" in text


# -- the loop: errors never end the session -----------------------------------------------------------

def make_repl(session):
    out, err = io.StringIO(), io.StringIO()
    console = Console(file=out, width=200, color_system=None)
    errors = Console(file=err, width=200, color_system=None)
    return Repl(Shell(session), console, errors=errors), out, err


def test_errors_and_interrupts_print_one_line_and_the_session_goes_on(session, monkeypatch):
    repl, out, err = make_repl(session)
    assert repl.run_line("bogus") is True
    monkeypatch.setattr(session, "evaluate", lambda: (_ for _ in ()).throw(RuntimeError("boom\ndeep detail")))
    assert repl.run_line("eval") is True

    def interrupted():
        raise KeyboardInterrupt

    monkeypatch.setattr(session, "fit", interrupted)
    assert repl.run_line("fit") is True
    lines = err.getvalue().splitlines()
    assert lines[0].startswith("error: unknown command 'bogus'")
    assert lines[1] == "error: RuntimeError: boom"
    assert "interrupted" in lines[2]
    assert repl.run_line("lfs") is True and "seed accuracy" in out.getvalue()
    assert repl.run_line("quit") is False


def test_piped_lines_run_in_order_stop_at_quit_and_report_failures(session):
    repl, out, err = make_repl(session)
    status = repl.run_lines(io.StringIO("lfs\n# comment\nnot_a_command\nquit\nstatus\n"))
    assert status == 1
    assert "seed accuracy" in out.getvalue() and "last fit" not in out.getvalue()  # status never ran
    assert repl.run_lines(io.StringIO("help\n")) == 1  # failures are counted over the session


def test_start_restores_a_stored_run_so_lfs_match(task_path, tmp_path):
    run_dir = tmp_path / "run"
    with Session(task_path, run_dir=run_dir, llm="none", embed=False) as first:
        first_shell = Shell(first)
        first_shell.fit()
        victim = kept_name(first)
        first_shell.execute(f"drop {victim}")
        first_shell.execute("fit")
        before = {r["name"]: (r["status"], r["pinned"], r["coverage"]) for r in first.lfs}
    with Session(task_path, run_dir=run_dir, llm="none", embed=False) as again:
        out, err = io.StringIO(), io.StringIO()
        status = start(again, stdin=io.StringIO("lfs\n"), console=Console(file=out, width=200),
                       errors=Console(file=err, width=200), interactive=False)
        assert status == 0 and "restoring the run" in err.getvalue()
        assert {r["name"]: (r["status"], r["pinned"], r["coverage"]) for r in again.lfs} == before
        assert victim in out.getvalue()


def test_completion_offers_commands_lf_names_classes_and_kinds(shell):
    from prompt_toolkit.completion import CompleteEvent
    from prompt_toolkit.document import Document

    from lfagent.repl.app import ReplCompleter

    completer = ReplCompleter(shell)

    def complete(text):
        return [c.text for c in completer.get_completions(Document(text), CompleteEvent())]

    assert complete("pro") == ["propose"]
    name = kept_name(shell.session)
    assert name in complete(f"show {name[:4]}")
    assert all(n.startswith(name[:4]) for n in complete(f"show {name[:4]}"))
    assert complete("propose 2 --class ") == ["HAM", "SPAM"]
    assert complete("propose --kind k") == ["keywords"]
    assert complete("lfs ") == ["kept", "dropped", "candidate", "pinned"]
