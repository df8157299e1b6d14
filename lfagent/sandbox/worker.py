"""Sandbox worker process: `python -I -X utf8 worker.py CONFIG_JSON`, started by the pool with an empty env.

It never imports the `lfagent` package (only isolate.py and policy.py beside it, by path), applies the OS
layers to itself, then serves calls on fds 0/1 (moved aside; 0/1/2 become /dev/null):

  parent -> worker:  frame(JSON {"cpu_s", "max_output"})  frame(JSON {"lfs", "records", "classes", ...})
  worker -> parent:  frame(JSON {"exit", "signal", "too_large"})  frame(child result bytes)
  child result:      u32 header length, JSON {"vocab": [str], "errors": [str|null]},
                     then m*n native uint16 codes (0 = abstain, k = vocab[k-1]), LF-major.

Each call is run by a forked child (seccomp: no fork, no kill; CPU limit; dies with the worker), so LF
code never touches the long-lived worker: a hostile LF cannot taint later calls.
A frame is a little-endian u32 length then the bytes.
"""
from __future__ import annotations

import builtins
import importlib.util
import json
import operator
import os
import struct
import sys
from array import array

_HERE = os.path.dirname(os.path.abspath(__file__))


def _load_beside(name: str):
    """Load isolate.py / policy.py by path: importing lfagent would drag its dependencies in here."""
    spec = importlib.util.spec_from_file_location(f"_lfagent_sandbox_{name}", os.path.join(_HERE, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


isolate = _load_beside("isolate")
policy = _load_beside("policy")


# ---- framing -------------------------------------------------------------------------------------------

def read_exact(fd: int, size: int) -> bytes | None:
    chunks, remaining = [], size
    while remaining:
        chunk = os.read(fd, min(remaining, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def read_frame(fd: int) -> bytes | None:
    head = read_exact(fd, 4)
    if head is None:
        return None
    return read_exact(fd, struct.unpack("<I", head)[0])


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def write_frame(fd: int, data: bytes) -> None:
    write_all(fd, struct.pack("<I", len(data)) + data)


# ---- running LFs (in the per-call child) ---------------------------------------------------------------

class BadVote(Exception):
    """An LF returned something other than None or a valid label string."""


def restricted_builtins() -> dict:
    allowed = {name: getattr(builtins, name) for name in policy.ALLOWED_BUILTINS if hasattr(builtins, name)}
    real_import = builtins.__import__

    def allowlisted_import(name, globals=None, locals=None, fromlist=(), level=0):
        if level != 0 or not isinstance(name, str) or name.split(".")[0] not in policy.ALLOWED_IMPORTS:
            raise ImportError(f"import of {name!r} is not allowed in an LF")
        return real_import(name, globals, locals, fromlist, 0)

    allowed["__import__"] = allowlisted_import
    return allowed


def safe_text(value, limit: int = 300) -> str:
    """Describe an untrusted object without trusting its methods beyond a plain str()."""
    try:
        text = str(value)
    except BaseException:  # noqa: BLE001 - hostile __str__
        return "<unprintable>"
    return text[:limit] if type(text) is str else "<unprintable>"


def describe_exception(exc: BaseException, where: str) -> str:
    kind = type(exc).__name__
    kind = kind if type(kind) is str else "exception"
    return f"raised {kind}: {safe_text(exc)}{where}"


def compile_lf(name: str, source: str, restricted: bool):
    namespace = {"__builtins__": restricted_builtins() if restricted else builtins.__dict__,
                 "__name__": f"lf_{name}"}
    exec(compile(source, f"<lf {name}>", "exec"), namespace)
    function = namespace.get("label")
    if not callable(function):
        raise TypeError("source does not define a callable `label`")
    return function


class Vocabulary:
    """Label string -> code (1-based, None -> 0); closed (the task's classes) or open (any short string)."""

    def __init__(self, classes, max_label_chars: int, max_size: int):
        self.closed = classes is not None
        self.labels = list(classes or [])
        self.codes = {None: 0, **{label: k + 1 for k, label in enumerate(self.labels)}}
        self.max_label_chars, self.max_size = max_label_chars, max_size

    def add(self, value: str) -> None:
        # `value` is exactly a str here, so dict lookups use str's own __eq__/__hash__.
        if self.closed:
            raise BadVote(f"returned {value[:60]!r}, which is not one of the classes {self.labels}")
        if len(value) > self.max_label_chars:
            raise BadVote(f"returned a {len(value)}-character string (limit {self.max_label_chars})")
        if len(self.labels) >= self.max_size:
            raise BadVote(f"produced more than {self.max_size} distinct labels")
        self.labels.append(value)
        self.codes[value] = len(self.labels)


class LFRaised(Exception):
    """The LF raised on record `index`; the original exception is the cause."""

    def __init__(self, index: int):
        self.index = index


PLAIN_VOTE_TYPES = frozenset({str, type(None)})


def run_one_lf(function, records: list, vocabulary: Vocabulary) -> array:
    """Votes of one LF over all records; raises LFRaised or BadVote on the first failure.

    The loop runs in C (map), which keeps the sandbox as fast as a plain loop over the same function.
    Each record is copied so an LF cannot change what the next LF sees."""
    remaining = iter(records)
    try:
        values = list(map(function, map(dict, remaining)))
    except BaseException as exc:  # noqa: BLE001 - anything the LF raises is its own failure
        raise LFRaised(len(records) - operator.length_hint(remaining) - 1) from exc
    # Check exact types before any hashing or comparing: str subclasses and hostile objects never
    # reach a dict lookup, so their __eq__/__hash__/__str__ never decide a vote.
    if not set(map(type, values)) <= PLAIN_VOTE_TYPES:
        k = next(k for k, v in enumerate(values) if type(v) not in PLAIN_VOTE_TYPES)
        kind = type(values[k]).__name__
        raise BadVote(f"returned a {kind if type(kind) is str else 'non-string'} on record {k}, "
                      "expected a class name (str) or None")
    for value in set(values) - vocabulary.codes.keys():
        vocabulary.add(value)
    return array("H", map(vocabulary.codes.__getitem__, values))


def run_call(request: dict) -> bytes:
    records = request["records"]
    vocabulary = Vocabulary(request["classes"], request["max_label_chars"], request["max_vocab"])
    errors, columns = [], []
    for name, source in request["lfs"]:
        error, codes = None, None
        try:
            function = compile_lf(name, source, request["restricted"])
        except BaseException as exc:  # noqa: BLE001 - LF code may raise anything, even SystemExit
            error = describe_exception(exc, " while loading")
        if error is None:
            error, codes = _run_guarded(function, records, vocabulary)
        errors.append(error)
        columns.append(codes if codes is not None else array("H", bytes(2 * len(records))))
    header = json.dumps({"vocab": vocabulary.labels, "errors": errors}).encode()
    return struct.pack("<I", len(header)) + header + b"".join(c.tobytes() for c in columns)


def _run_guarded(function, records, vocabulary):
    try:
        return None, run_one_lf(function, records, vocabulary)
    except BadVote as exc:
        return safe_text(exc.args[0], 500), None
    except LFRaised as exc:
        return describe_exception(exc.__cause__, f" on record {exc.index}"), None
    except BaseException as exc:  # noqa: BLE001 - e.g. MemoryError while collecting votes
        return describe_exception(exc, " while collecting votes"), None


# ---- the long-lived worker -----------------------------------------------------------------------------

def serve_call(proto_in: int, proto_out: int, control: dict, payload: bytes) -> None:
    """Fork a child to run one call; relay its output (capped) and how it ended."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        os.close(proto_in)
        os.close(proto_out)
        _child_main(write_end, control, payload)
    os.close(write_end)
    data, too_large = _read_capped(read_end, control["max_output"])
    if too_large:
        os.kill(pid, 9)
    os.close(read_end)
    _, status = os.waitpid(pid, 0)
    outcome = {"exit": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
               "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None, "too_large": too_large}
    write_frame(proto_out, json.dumps(outcome).encode())
    write_frame(proto_out, b"" if too_large else data)


def _child_main(write_end: int, control: dict, payload: bytes) -> None:
    try:
        isolate.isolate_call_child(cpu_seconds=control["cpu_s"])
        request = json.loads(payload)
        del payload
        write_all(write_end, run_call(request))
        os._exit(0)
    except BaseException:  # noqa: BLE001 - an LF that broke the child: the parent sees exit 3
        os._exit(3)


def _read_capped(fd: int, cap: int) -> tuple[bytes, bool]:
    chunks, total = [], 0
    while True:
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return b"".join(chunks), False
        total += len(chunk)
        if total > cap:
            return b"", True
        chunks.append(chunk)


LAZY_IMPORTS = ("_strptime", "collections.abc", "json.decoder", "encodings.latin_1", "encodings.ascii",
                "encodings.utf_16", "encodings.utf_32", "encodings.utf_8_sig", "encodings.cp1252",
                "encodings.unicode_escape", "encodings.raw_unicode_escape", "encodings.idna")


def preload_modules(extra: tuple[str, ...] = ()) -> None:
    """Import every allowed module (and what they import lazily) while the filesystem is still readable:
    after isolation the stdlib may be unreadable (Landlock, or a Python installed under /root)."""
    for name in policy.ALLOWED_IMPORTS + LAZY_IMPORTS + tuple(extra):
        try:
            importlib.import_module(name)
        except ImportError:
            pass


def main(argv: list[str]) -> int:
    config = json.loads(argv[1])
    preload_modules(tuple(config.get("preload", ())))
    proto_in, proto_out = os.dup(0), os.dup(1)
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)  # print() in an LF, or a crash dump, can never corrupt the protocol
    os.close(null)
    layers = isolate.isolate_worker(memory_mb=config["memory_mb"], uid=config["uid"], gid=config["gid"],
                                    max_processes=config["max_processes"])
    write_frame(proto_out, json.dumps({"layers": layers, "pid": os.getpid()}).encode())
    while True:
        control = read_frame(proto_in)
        payload = read_frame(proto_in) if control is not None else None
        if payload is None:
            return 0
        serve_call(proto_in, proto_out, json.loads(control), payload)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
