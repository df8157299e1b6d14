"""The sandbox pool API, the lint, the LF loader, and each OS layer measured on its own."""
from __future__ import annotations

import json
import socket
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from lfagent.errors import InputError, LFRejected
from lfagent.lf import LabelingFunction
from lfagent.sandbox import SandboxPool, check_code_lf, lint_problems, load_code_lf
from lfagent.sandbox import isolate
from lfagent.sandbox.pool import MAX_HEADER_BYTES, _decode, _split

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
CLASSES = ["HAM", "SPAM"]
SPAM_CUES = ('import re\nCUES = re.compile(r"check out|subscribe|my channel", re.I)\n'
             'def label(record):\n    return "SPAM" if CUES.search(record["text"]) else None\n')
HAM_SHORT = 'def label(record):\n    return "HAM" if len(record["text"]) < 30 else None\n'


def code_lf(name, source):
    return LabelingFunction(name=name, kind="code", source=source)


@pytest.fixture(scope="module")
def pool():
    with SandboxPool(workers=2, timeout_s=2.0, min_records_per_worker=10) as sandbox:
        yield sandbox


# ---- pool API ------------------------------------------------------------------------------------------

def test_apply_returns_votes_errors_and_matrix(pool):
    records = [{"text": "check out my channel!!"}, {"text": "lovely song"}, {"text": "x" * 40}]
    result = pool.apply([code_lf("spam", SPAM_CUES), code_lf("short", HAM_SHORT)], records, CLASSES)
    assert result.errors == {}
    assert result.votes == {"spam": ["SPAM", None, None], "short": ["HAM", "HAM", None]}
    L = result.matrix(CLASSES)
    assert L.dtype.kind == "i" and L.tolist() == [[1, 0], [-1, 0], [-1, -1]]
    assert result.matrix(["SPAM", "HAM"]).tolist() == [[0, 1], [-1, 1], [-1, -1]]


def test_records_are_split_across_workers_and_match_an_in_order_answer(pool):
    records = [{"text": f"subscribe {k}" if k % 3 == 0 else f"song {k}"} for k in range(1000)]
    result = pool.apply([code_lf("spam", SPAM_CUES)], records, CLASSES)
    assert len(_split(1000, 2, 10)) == 2
    assert result.votes["spam"] == ["SPAM" if k % 3 == 0 else None for k in range(1000)]


def test_open_class_list_accepts_short_strings_and_rejects_long_ones(pool):
    records = [{"text": "a"}, {"text": "b"}]
    result = pool.apply([code_lf("echo", 'def label(record):\n    return record["text"].upper()\n')], records)
    assert result.votes["echo"] == ["A", "B"] and result.errors == {}
    with pytest.raises(InputError, match="not one of"):
        result.matrix(CLASSES)
    long = pool.apply([code_lf("long", 'def label(record):\n    return "z" * 500\n')], records)
    assert "500-character" in long.errors["long"]


def test_wrong_class_and_wrong_type_are_errors_for_that_lf_only(pool):
    lfs = [code_lf("bad_class", 'def label(record):\n    return "EGGS"\n'),
           code_lf("bad_type", "def label(record):\n    return 1\n"), code_lf("spam", SPAM_CUES)]
    result = pool.apply(lfs, [{"text": "subscribe"}], CLASSES)
    assert "not one of the classes" in result.errors["bad_class"]
    assert "returned a int" in result.errors["bad_type"]
    assert result.votes == {"bad_class": [None], "bad_type": [None], "spam": ["SPAM"]}
    assert result.matrix(CLASSES).tolist() == [[-1, -1, 1]]


def test_an_exception_names_the_record(pool):
    result = pool.apply([code_lf("keyerr", 'def label(record):\n    return record["text"] and None\n')],
                        [{"text": "a"}, {"text": "b"}, {"other": "c"}, {"text": "d"}], CLASSES)
    assert result.errors["keyerr"] == "raised KeyError: 'text' on record 2"


def test_an_lf_cannot_change_the_record_the_next_lf_sees(pool):
    mutate = 'def label(record):\n    record["text"] = "subscribe now"\n    return None\n'
    result = pool.apply([code_lf("mutate", mutate), code_lf("spam", SPAM_CUES)], [{"text": "hello"}], CLASSES)
    assert result.votes["spam"] == [None]


def test_lint_failures_are_errors_and_non_code_lfs_are_refused(pool):
    keyword = LabelingFunction(name="kw", kind="keywords", keywords=["free"], label="SPAM")
    result = pool.apply([code_lf("evil", "import os\ndef label(record):\n    return None\n"), keyword],
                        [{"text": "a"}], CLASSES)
    assert result.errors["evil"].startswith("lint:") and "code LFs only" in result.errors["kw"]


def test_duplicate_names_are_an_input_error(pool):
    with pytest.raises(InputError, match="unique"):
        pool.apply([code_lf("a", HAM_SHORT), code_lf("a", SPAM_CUES)], [{"text": "x"}], CLASSES)


def test_empty_inputs(pool):
    assert pool.apply([], [{"text": "a"}], CLASSES).matrix(CLASSES).shape == (1, 0)
    assert pool.apply([code_lf("spam", SPAM_CUES)], [], CLASSES).votes == {"spam": []}


def test_pool_reports_every_layer_active_here(pool):
    layers = pool.layers()
    assert set(layers) == {"env_cleared", "netns", "rlimits", "uid", "landlock", "seccomp"}
    assert all(value is True or str(value).startswith("abi") for value in layers.values()), layers


def test_closed_pool_refuses_work():
    sandbox = SandboxPool(workers=1)
    sandbox.close()
    with pytest.raises(Exception, match="closed"):
        sandbox.apply([code_lf("spam", SPAM_CUES)], [{"text": "a"}], CLASSES)


@pytest.mark.skipif(not (DATA / "wrench-youtube" / "test.json").is_file(), reason="shared data not present")
def test_real_youtube_texts(pool):
    entries = json.loads((DATA / "wrench-youtube" / "test.json").read_text()).values()
    records = [{"text": e["data"]["text"]} for e in entries]
    result = pool.apply([code_lf("spam", SPAM_CUES)], records, CLASSES)
    labels = np.array([e["label"] for e in entries])
    fired = result.matrix(CLASSES)[:, 0] == 1
    assert fired.sum() > 20 and labels[fired].mean() > 0.9  # spam cues fire mostly on spam (label 1)


# ---- parent-side validation of what a worker sends back ------------------------------------------------

def _reply(vocab, errors, codes, n):
    header = json.dumps({"vocab": vocab, "errors": errors}).encode()
    control = {"max_output": MAX_HEADER_BYTES + 2 * n * len(errors) + 4}
    return struct.pack("<I", len(header)) + header + np.asarray(codes, dtype="<u2").tobytes(), control


@pytest.mark.parametrize("vocab,errors,codes,why", [
    (["SPAM"], [None], [2, 0], "out-of-range"),
    (["EGGS"], [None], [1, 0], "outside the classes"),
    ([1], [None], [1, 0], "invalid labels"),
    (["SPAM"], [None], [1], "wrong size"),
    (["SPAM"], [None, None], [1, 0], "malformed"),
    (["SPAM"], [{"x": 1}], [1, 0], "malformed errors"),
])
def test_decode_rejects_forged_replies(vocab, errors, codes, why):
    data, control = _reply(vocab, errors, codes, 2)
    if why == "malformed":
        control["max_output"] = MAX_HEADER_BYTES + 2 * 2 + 4
    outcome = _decode(data, 1, control, CLASSES, 200)
    assert isinstance(outcome, Exception) and why in str(outcome)
    assert "malformed" in str(_decode(b"\xff\xff\xff\x7fjunk", 1, control, CLASSES, 200))


# ---- lint and loader -----------------------------------------------------------------------------------

def test_lint_accepts_typical_lfs():
    assert lint_problems(SPAM_CUES) == []
    source = ("from collections import Counter\nimport math, string\n"
              "def label(record: dict) -> str | None:\n    words = Counter(record.get('text', '').split())\n"
              "    return 'SPAM' if words and math.log(len(words)) > 1 else None\n")
    assert lint_problems(source) == []


@pytest.mark.parametrize("source,fragment", [
    ("def labels(record):\n    return None\n", "must define a top-level function"),
    ("def label(record, extra):\n    return None\n", "exactly one parameter"),
    ("def label(*records):\n    return None\n", "exactly one parameter"),
    ("def label(record):\n    return (\n", "syntax error"),
    ("x = 1\n" * 700 + "def label(r):\n    return None\n", "too large"),
    ("from . import x\ndef label(r):\n    return None\n", "relative imports"),
    ("def label(r):\n    return '{0.x}'.format(r)\n", "str.format"),
    ("def label(r):\n    return r.__class__\n", "'__class__'"),
])
def test_lint_rejections_say_what_is_wrong(source, fragment):
    assert any(fragment in problem for problem in lint_problems(source)), lint_problems(source)


def test_check_code_lf_raises_lfrejected_naming_the_lf():
    with pytest.raises(LFRejected) as caught:
        check_code_lf("evil", "import os\ndef label(r):\n    return None\n")
    assert caught.value.lf_name == "evil" and "line 1" in caught.value.reason


def test_load_code_lf_names_from_stem_or_constant(tmp_path):
    (tmp_path / "spam-cues.py").write_text('"""Spam cues."""\n' + SPAM_CUES)
    lf = load_code_lf(tmp_path / "spam-cues.py")
    assert (lf.name, lf.kind, lf.description, lf.label) == ("spam_cues", "code", "Spam cues.", None)
    (tmp_path / "x.py").write_text('NAME = "custom_name"\nLABEL = "SPAM"\n' + SPAM_CUES)
    lf = load_code_lf(tmp_path / "x.py")
    assert (lf.name, lf.label) == ("custom_name", "SPAM")


def test_load_code_lf_rejects_bad_files(tmp_path):
    (tmp_path / "evil.py").write_text("import subprocess\ndef label(r):\n    return None\n")
    with pytest.raises(LFRejected, match="evil"):
        load_code_lf(tmp_path / "evil.py")
    (tmp_path / "binary.py").write_bytes(b"\xff\xfe\x00junk")
    with pytest.raises(LFRejected, match="UTF-8"):
        load_code_lf(tmp_path / "binary.py")
    with pytest.raises(InputError):
        load_code_lf(tmp_path / "missing.py")


# ---- each OS layer on its own, in a fresh process (measured on this machine) ---------------------------

def _in_fresh_process(body: str) -> str:
    """Run `body` in a new Python with isolate.py loaded by path (as `iso`); returns its stdout."""
    script = (f"import importlib.util, os, sys\nspec = importlib.util.spec_from_file_location('iso', {isolate.__file__!r})\n"
              "iso = importlib.util.module_from_spec(spec); spec.loader.exec_module(iso)\n" + textwrap.dedent(body))
    done = subprocess.run([sys.executable, "-I", "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def _layer_or_skip(state: str) -> None:
    if state.startswith("unavailable"):
        pytest.skip(state)


def test_layer_network_namespace_makes_localhost_unreachable():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    try:
        out = _in_fresh_process(f"""
            import socket
            state = iso.enter_network_namespace()
            try:
                socket.create_connection(("127.0.0.1", {port}), timeout=2); print(state, "connected")
            except OSError as exc:
                print(state, exc.errno)""")
    finally:
        listener.close()
    _layer_or_skip(out)
    assert out == "True 101"  # ENETUNREACH


def test_layer_landlock_denies_etc_passwd_but_reads_the_stdlib():
    out = _in_fresh_process("""
        state = iso.restrict_filesystem(iso.python_read_paths())
        try:
            open("/etc/passwd").read(); print(state, "read")
        except PermissionError as exc:
            import json; print(state, exc.errno, len(json.__file__) > 0, len(open(os.__file__).read()) > 0)""")
    _layer_or_skip(out)
    assert out.startswith("abi") and out.endswith("13 True True")


def test_layer_seccomp_denies_sockets_and_exec():
    out = _in_fresh_process("""
        import socket
        state = iso.install_seccomp(iso.SECCOMP_DENY_WORKER)
        results = []
        for attempt in (lambda: socket.socket(), lambda: os.execv("/bin/true", ["true"])):
            try:
                attempt(); results.append("ok")
            except PermissionError as exc:
                results.append(str(exc.errno))
        print(state, *results)""")
    _layer_or_skip(out)
    assert out == "True 1 1"


def test_layer_unprivileged_uid_cannot_read_root_files(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("s")
    secret.chmod(0o600)
    out = _in_fresh_process(f"""
        state = iso.drop_privileges(uid=65534, gid=65534, max_processes=16)
        try:
            open({str(secret)!r}).read(); print(state, os.getuid(), "read")
        except PermissionError:
            print(state, os.getuid(), "denied")""")
    _layer_or_skip(out)
    assert out == "True 65534 denied"


def test_layer_rlimits_cap_memory_and_file_writes(tmp_path):
    out = _in_fresh_process(f"""
        state = iso.set_resource_limits(memory_mb=300)
        results = []
        try:
            b"x" * (1 << 30); results.append("allocated")
        except MemoryError:
            results.append("MemoryError")
        try:
            with open({str(tmp_path / "f")!r}, "w") as handle:
                handle.write("x" * 10)
            results.append("wrote")
        except OSError as exc:
            results.append(str(exc.errno))
        print(state, *results)""")
    _layer_or_skip(out)
    assert out == "True MemoryError 27"  # EFBIG: RLIMIT_FSIZE = 0


def test_error_text_from_an_lf_is_made_printable(pool):
    source = 'def label(record):\n    raise ValueError("\\x1b[31mred\\x07")\n'
    error = pool.apply([code_lf("ansi", source)], [{"text": "a"}], CLASSES).errors["ansi"]
    assert "\x1b" not in error and "\x07" not in error and "?[31mred?" in error


def test_module_level_conveniences_share_one_pool():
    from lfagent.sandbox import apply_code_lfs, sandbox_layers
    from lfagent.sandbox.pool import default_pool

    assert sandbox_layers()["landlock"].startswith("abi") or "unavailable" in sandbox_layers()["landlock"]
    result = apply_code_lfs([code_lf("spam", SPAM_CUES)], [{"text": "subscribe"}], CLASSES)
    assert result.votes == {"spam": ["SPAM"]} and default_pool() is default_pool()
    assert isolate.sandbox_layers() == sandbox_layers()


def test_a_missing_layer_is_warned_about_once(caplog):
    from lfagent.sandbox.pool import _warn_missing_layers, _warned_layers

    _warned_layers.discard("test_layer")
    with caplog.at_level("WARNING"):
        _warn_missing_layers({"test_layer": "unavailable: no kernel support", "netns": True})
        _warn_missing_layers({"test_layer": "unavailable: no kernel support"})
    warnings = [r for r in caplog.records if "test_layer" in r.getMessage()]
    assert len(warnings) == 1 and "not active" in warnings[0].getMessage()
