"""One regression test per attack, through the real sandbox, at two layers:

1. the lint rejects the attack with a reason naming what is wrong (`lint_problems`, and the pool's error);
2. with the lint bypassed (`lint=False`: no lint, full builtins, `import os` works) the OS layers alone
   stop it: no file read, no write, no connection, no secret, bounded time, the host survives.
Part 2 is what shows that the boundary is the operating system, not the language.
"""
from __future__ import annotations

import os
import socket
import stat
import time
import uuid

import pytest

from lfagent.lf import LabelingFunction
from lfagent.sandbox import SandboxPool, lint_problems

CLASSES = ["HAM", "SPAM"]
RECORDS = [{"id": k, "text": f"record {k}"} for k in range(3)]
GOOD = 'def label(record):\n    return "SPAM" if "1" in record["text"] else None\n'
TIMEOUT_S = 1.0
# Gets the real `os` module with nothing but object introspection (works when the lint is off).
GRAB_OS = ("def grab_os():\n"
           "    for cls in ().__class__.__bases__[0].__subclasses__():\n"
           "        if cls.__name__ == '_wrap_close':\n"
           "            return cls.__init__.__globals__['sys'].modules['os']\n")


@pytest.fixture(scope="module")
def pool():
    # `socket` preloaded so attack code has it; the OS layers must still stop every use of it.
    with SandboxPool(workers=1, timeout_s=TIMEOUT_S, eval_budget_s=0.0, preload=("socket",)) as sandbox:
        yield sandbox


def run(pool, source, *, lint=False, records=RECORDS, classes=None, restricted=None, name="attack"):
    lf = LabelingFunction(name=name, kind="code", source=source)
    result = pool.apply([lf], records, classes, lint=lint, restricted=restricted)
    return result.votes[name], result.errors.get(name)


def assert_lint_rejects(pool, source, *fragments):
    problems = " ".join(lint_problems(source))
    assert problems, "the lint let the attack through"
    for fragment in fragments:
        assert fragment in problems, problems
    votes, error = run(pool, source, lint=True)
    assert error and error.startswith("lint:") and votes == [None] * len(RECORDS)


# ---- imports ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("module", ["os", "sys", "subprocess", "ctypes", "posix", "importlib", "time", "socket"])
def test_import_of_dangerous_module_is_linted_and_blocked_at_runtime(pool, module):
    source = f"import {module}\ndef label(record):\n    return None\n"
    assert_lint_rejects(pool, source, f"import of {module!r} is not allowed")
    # Lint off but restricted builtins on: the allowlisted importer refuses it too.
    votes, error = run(pool, source, restricted=True)
    assert "ImportError" in error and module in error


def test_from_import_of_module_leak_is_linted(pool):
    assert_lint_rejects(pool, "from statistics import sys\ndef label(record):\n    return None\n", "'sys'")
    assert_lint_rejects(pool, "import statistics\ndef label(record):\n    return statistics.numbers\n",
                        "statistics.numbers leads outside")


@pytest.mark.parametrize("call", ["__import__('os')", "exec('1')", "eval('1')", "compile('1', 'x', 'exec')",
                                  "open('/etc/passwd')", "getattr(record, 'x')", "globals()", "vars()",
                                  "breakpoint()", "input()"])
def test_dangerous_builtin_is_linted_and_absent_at_runtime(pool, call):
    source = f"def label(record):\n    {call}\n    return None\n"
    assert_lint_rejects(pool, source, "is not allowed")
    votes, error = run(pool, source, restricted=True)
    assert "NameError" in error or "ImportError" in error


# ---- introspection escapes -------------------------------------------------------------------------------

ESCAPES = {
    "subclasses": "def label(record):\n    return str(len(().__class__.__bases__[0].__subclasses__()))\n",
    "globals": "def f():\n    pass\ndef label(record):\n    return str(f.__globals__['__builtins__'])[:9]\n",
    "builtins": "def label(record):\n    return str(__builtins__)[:9]\n",
    "frame": ("def label(record):\n    try:\n        1 / 0\n    except Exception as e:\n"
              "        return str(len(e.__traceback__.tb_frame.f_back.f_globals))\n"),
    "generator": "def label(record):\n    g = (x for x in [1])\n    return str(g.gi_frame.f_back)[:9]\n",
    "format": "def f():\n    pass\ndef label(record):\n    return '{0.__globals__}'.format(f)[:9]\n",
}


@pytest.mark.parametrize("escape", sorted(ESCAPES))
def test_introspection_escape_is_linted(pool, escape):
    assert_lint_rejects(pool, ESCAPES[escape], "line")


GRABS_OS = {
    "subclasses": GRAB_OS,
    "frame": ("def grab_os():\n    try:\n        1 / 0\n    except Exception as e:\n"
              "        return e.__traceback__.tb_frame.f_back.f_back.f_globals['os']\n"),
    "generator": ("def grab_os():\n    def inner():\n        yield g.gi_frame.f_back.f_back.f_back.f_globals['os']\n"
                  "    g = inner()\n    return next(g)\n"),
}


@pytest.mark.parametrize("escape", sorted(GRABS_OS))
def test_introspection_reaches_os_but_the_os_layers_still_hold(pool, escape):
    # Restricted builtins but no lint: the escape reaches the real `os` module; Landlock still says no
    # (/etc/passwd is world-readable, so the unprivileged uid alone would not stop this).
    source = GRABS_OS[escape] + ("def label(record):\n    os = grab_os()\n"
                                 "    return os.read(os.open('/etc/passwd', os.O_RDONLY), 20).decode()\n")
    votes, error = run(pool, source, restricted=True)
    assert votes == [None] * len(RECORDS)
    assert "PermissionError" in error and "Errno 13" in error, error


# ---- files, environment, network -------------------------------------------------------------------------

def test_reading_etc_passwd_is_denied_by_landlock(pool):
    assert_lint_rejects(pool, "def label(record):\n    return open('/etc/passwd').read()\n", "'open'")
    votes, error = run(pool, "import os\ndef label(record):\n    return os.read(os.open('/etc/passwd', os.O_RDONLY), 9).decode()\n")
    assert votes == [None] * len(RECORDS) and "PermissionError" in error and "Errno 13" in error


def test_reading_root_only_and_world_readable_files_is_denied(pool, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("root-only-secret")
    secret.chmod(0o600)
    # A world-readable file in a world-readable folder: only Landlock stands in the way.
    public_dir = f"/tmp/lfagent-public-{uuid.uuid4().hex}"
    os.makedirs(public_dir, mode=0o755)
    os.chmod(public_dir, 0o755)
    public = os.path.join(public_dir, "public.txt")
    with open(public, "w") as handle:
        handle.write("world-readable")
    os.chmod(public, 0o644)
    try:
        for path in (str(secret), public):
            votes, error = run(pool, f"def label(record):\n    return open({path!r}).read()\n")
            assert votes == [None] * len(RECORDS) and "PermissionError" in error
    finally:
        os.unlink(public)
        os.rmdir(public_dir)


def test_writing_files_is_denied(pool):
    target_dir = f"/tmp/lfagent-writable-{uuid.uuid4().hex}"
    os.makedirs(target_dir)
    os.chmod(target_dir, 0o777 | stat.S_ISVTX)
    target = os.path.join(target_dir, "pwned.txt")
    source = f"def label(record):\n    open({target!r}, 'w').write('x')\n    return 'SPAM'\n"
    try:
        assert_lint_rejects(pool, source, "'open'")
        votes, error = run(pool, source)
        assert "PermissionError" in error and not os.path.exists(target)
    finally:
        if os.path.exists(target):
            os.unlink(target)
        os.rmdir(target_dir)


def test_environment_secrets_are_not_visible(pool, monkeypatch):
    monkeypatch.setenv("LFAGENT_TEST_SECRET", "hunter2")
    source = "import os\ndef label(record):\n    return os.environ.get('LFAGENT_TEST_SECRET', 'absent')\n"
    assert_lint_rejects(pool, source, "'os'")
    votes, error = run(pool, source)
    assert error is None and votes == ["absent"] * len(RECORDS)
    votes, error = run(pool, "def label(record):\n    return open('/proc/self/environ').read()[:50]\n")
    assert "PermissionError" in error


def test_network_connect_to_localhost_never_arrives(pool):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.setblocking(False)
    port = listener.getsockname()[1]
    source = ("import socket\ndef label(record):\n    s = socket.socket()\n"
              f"    s.connect(('127.0.0.1', {port}))\n    return 'SPAM'\n")
    try:
        assert_lint_rejects(pool, source, "'socket'")
        votes, error = run(pool, source)
        assert votes == [None] * len(RECORDS) and "PermissionError" in error
        with pytest.raises(BlockingIOError):
            listener.accept()  # nothing connected
    finally:
        listener.close()


# ---- resource exhaustion: bounded time, host survives, reason recorded -----------------------------------

@pytest.mark.parametrize("attack,source", [
    ("infinite loop", "def label(record):\n    while True:\n        pass\n"),
    ("catastrophic regex", "import re\ndef label(record):\n    re.match(r'(a+)+$', 'a' * 40 + 'b')\n    return None\n"),
    ("sleep", "import time\ndef label(record):\n    time.sleep(60)\n"),
    ("huge power", "def label(record):\n    return str(10 ** 10 ** 8)[:3]\n"),
])
def test_hanging_lf_times_out_and_the_pool_recovers(pool, attack, source):
    start = time.monotonic()
    votes, error = run(pool, source)
    assert time.monotonic() - start < TIMEOUT_S + 5
    assert votes == [None] * len(RECORDS) and "timed out" in error
    assert run(pool, GOOD, lint=True) == ([None, "SPAM", None], None)  # worker restarted


def test_huge_power_is_linted():
    assert any("exponent" in p for p in lint_problems("def label(record):\n    return str(10 ** 10 ** 8)\n"))


def test_memory_bomb_hits_the_address_space_limit(pool):
    votes, error = run(pool, "def label(record):\n    x = 'x' * (8 * 1024 ** 3)\n    return None\n", lint=True)
    assert "MemoryError" in error


def test_fork_bomb_is_denied(pool):
    source = "import os\ndef label(record):\n    while True:\n        os.fork()\n"
    assert_lint_rejects(pool, source, "'os'")
    votes, error = run(pool, source)
    assert "PermissionError" in error  # seccomp: fork/clone -> EPERM; RLIMIT_NPROC behind it


def test_exec_of_a_program_is_denied(pool):
    votes, error = run(pool, "import os\ndef label(record):\n    os.execv('/bin/sh', ['sh', '-c', 'id'])\n")
    assert "PermissionError" in error


def test_deep_recursion_is_contained(pool):
    votes, error = run(pool, "def f(n):\n    return f(n + 1)\ndef label(record):\n    return f(0)\n", lint=True)
    assert "RecursionError" in error
    source = "import sys\nsys.setrecursionlimit(10 ** 8)\ndef f(n):\n    return f(n + 1)\ndef label(record):\n    return f(0)\n"
    votes, error = run(pool, source)
    assert error and votes == [None] * len(RECORDS)


def test_huge_output_is_rejected(pool):
    votes, error = run(pool, "def label(record):\n    print('x' * 10 ** 7)\n    return 'y' * 10 ** 7\n", lint=True)
    assert "10000000-character string" in error
    votes, error = run(pool, "def label(record):\n    return 'y' * 10 ** 6\n", lint=True, classes=CLASSES)
    assert "not one of the classes" in error


@pytest.mark.parametrize("source", ["def label(record):\n    raise SystemExit(0)\n",
                                    "def label(record):\n    raise KeyboardInterrupt\n"])
def test_system_exit_loses_only_the_votes(pool, source):
    votes, error = run(pool, source, lint=True)
    assert votes == [None] * len(RECORDS) and "raised" in error


def test_os_exit_is_linted_and_contained(pool):
    source = "import os\ndef label(record):\n    os._exit(0)\n"
    assert_lint_rejects(pool, source, "'os'", "'_exit'")
    votes, error = run(pool, source)
    assert "without a result" in error


@pytest.mark.parametrize("method", ["__eq__", "__str__", "__hash__"])
def test_hostile_return_object_is_rejected(pool, method):
    source = (f"class Evil(str):\n    def {method}(self, *args):\n        while True:\n            pass\n"
              "def label(record):\n    return Evil('SPAM')\n")
    assert_lint_rejects(pool, source, "class definitions")
    start = time.monotonic()
    votes, error = run(pool, source, classes=CLASSES)
    assert "returned a Evil" in error and time.monotonic() - start < TIMEOUT_S
    plain = source.replace("(str)", "").replace("Evil('SPAM')", "Evil()")
    votes, error = run(pool, plain)
    assert "returned a Evil" in error


def test_kill_of_other_processes_is_denied(pool):
    votes, error = run(pool, "import os\ndef label(record):\n    os.kill(1, 0)\n")
    assert "PermissionError" in error


def test_patching_shared_modules_is_linted():
    assert any("assigning" in p for p in lint_problems("import re\nre.search = None\ndef label(r):\n    return None\n"))


def test_a_hostile_lf_loses_only_its_own_votes(pool):
    lfs = [LabelingFunction(name="good", kind="code", source=GOOD),
           LabelingFunction(name="loops", kind="code", source="def label(record):\n    while True:\n        pass\n"),
           LabelingFunction(name="crashes", kind="code", source="import os\ndef label(record):\n    os._exit(1)\n"),
           LabelingFunction(name="also_good", kind="code", source="def label(record):\n    return 'HAM'\n")]
    result = pool.apply(lfs, RECORDS, CLASSES, lint=False)
    assert result.votes["good"] == [None, "SPAM", None] and result.votes["also_good"] == ["HAM"] * 3
    assert set(result.errors) == {"loops", "crashes"}
    assert "timed out" in result.errors["loops"] and "status 1" in result.errors["crashes"]


@pytest.mark.parametrize("source,fragment", [
    ("import operator\ndef label(record):\n    return operator.attrgetter('_' * 2 + 'class' + '_' * 2)(record)\n",
     "'attrgetter'"),
    ("from operator import methodcaller\ndef label(record):\n    return None\n", "'methodcaller'"),
    ("import typing\ndef label(record):\n    return typing.get_type_hints(label)\n", "'get_type_hints'"),
    ("from statistics import *\ndef label(record):\n    return None\n", "import *"),
    ("import dataclasses\ndef label(record):\n    return None\n", "'dataclasses' is not allowed"),
])
def test_getattr_and_eval_in_disguise_are_linted(pool, source, fragment):
    assert_lint_rejects(pool, source, fragment)
