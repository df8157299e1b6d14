"""A pool of long-lived, OS-isolated worker processes that apply code LFs to records in batches.

    with SandboxPool(workers=2) as pool:
        result = pool.apply(lfs, records, ["HAM", "SPAM"])
        L = result.matrix(["HAM", "SPAM"])          # n x m, -1 = abstain

The host never runs LF code: it sends (LF sources, records) to a worker and gets back only a vote table
it validates (types, sizes, labels). An LF that crashes, hangs, or returns anything but None or a valid
class name loses its own votes, with the reason in `result.errors`; the other LFs keep theirs.
"""
from __future__ import annotations

import atexit
import json
import logging
import math
import os
import select
import signal
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lfagent.errors import InputError, LFAgentError
from lfagent.lf import LabelingFunction
from lfagent.sandbox.lint import lint_problems
from lfagent.sandbox.policy import MAX_LABEL_CHARS, MAX_VOCABULARY

log = logging.getLogger(__name__)
WORKER_SCRIPT = Path(__file__).with_name("worker.py")
MAX_HEADER_BYTES = 4 << 20
_warned_layers: set[str] = set()


class SandboxError(LFAgentError):
    """The sandbox itself could not run (worker failed to start)."""


class _WorkerFailed(Exception):
    """One call failed as a whole (timeout, crash, bad output); the reason names what happened."""


@dataclass
class ApplyResult:
    """Votes per LF name (len == number of records; None = abstain) and errors per LF name."""

    votes: dict[str, list[str | None]]
    errors: dict[str, str]
    n_records: int
    _codes: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    _vocabulary: list[str] = field(default_factory=list, repr=False)

    @property
    def lf_names(self) -> list[str]:
        return list(self.votes)

    def matrix(self, class_names: list[str]) -> np.ndarray:
        """Label matrix L (n x m, int): class index per vote, -1 = abstain; columns in `votes` order."""
        lookup = np.full(len(self._vocabulary) + 1, -1, dtype=np.int64)
        for code, label in enumerate(self._vocabulary, start=1):
            if label in class_names:
                lookup[code] = class_names.index(label)
        L = np.full((self.n_records, len(self.votes)), -1, dtype=np.int64)
        for column, name in enumerate(self.votes):
            codes = self._codes.get(name)
            if codes is None:
                continue
            mapped = lookup[codes]
            unknown = (mapped < 0) & (codes > 0)
            if unknown.any():
                label = self._vocabulary[int(codes[unknown][0]) - 1]
                raise InputError(f"LF {name!r} voted {label!r}, which is not one of {class_names}")
            L[:, column] = mapped
        return L


class _Worker:
    """One isolated worker process and its two pipes. Killed (whole process group) on any failure."""

    def __init__(self, *, memory_mb: int, uid: int, gid: int, max_processes: int, start_timeout_s: float,
                 preload: tuple[str, ...]):
        config = json.dumps({"memory_mb": memory_mb, "uid": uid, "gid": gid, "max_processes": max_processes,
                             "preload": list(preload)})
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-I", "-X", "utf8", str(WORKER_SCRIPT), config],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                env={}, cwd="/", close_fds=True, start_new_session=True)
        except OSError as exc:
            raise SandboxError(f"cannot start a sandbox worker: {exc}") from None
        self.to_worker, self.from_worker = self.process.stdin.fileno(), self.process.stdout.fileno()
        os.set_blocking(self.to_worker, False)
        os.set_blocking(self.from_worker, False)
        try:
            hello = json.loads(self._recv(time.monotonic() + start_timeout_s, MAX_HEADER_BYTES))
            self.layers: dict[str, bool | str] = dict(hello["layers"])
        except (_WorkerFailed, ValueError, KeyError, TypeError) as exc:
            self.kill()
            raise SandboxError(f"sandbox worker did not start: {exc}") from None

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def send_call(self, control: dict, payload: bytes, deadline: float) -> None:
        """Hand one call to the worker; it starts at once (collect it with `receive`)."""
        try:
            self._send(json.dumps(control).encode(), deadline)
            self._send(payload, deadline)
        except _WorkerFailed:
            self.kill()
            raise

    def receive(self, control: dict, deadline: float) -> tuple[dict, bytes]:
        """How the call ended (exit status) and the child's raw reply, or _WorkerFailed (worker killed)."""
        try:
            status = json.loads(self._recv(deadline, MAX_HEADER_BYTES))
            data = self._recv(deadline, control["max_output"])
        except _WorkerFailed:
            self.kill()
            raise
        except ValueError:
            self.kill()
            raise _WorkerFailed("sent a malformed reply") from None
        return status, data

    def _send(self, data: bytes, deadline: float) -> None:
        view = memoryview(struct.pack("<I", len(data)) + data)
        while view:
            self._wait(self.to_worker, deadline, write=True)
            try:
                view = view[os.write(self.to_worker, view):]
            except BlockingIOError:
                continue
            except (BrokenPipeError, OSError):
                raise _WorkerFailed("worker stopped reading (crashed)") from None

    def _recv(self, deadline: float, cap: int) -> bytes:
        head = self._read_exact(4, deadline)
        size = struct.unpack("<I", head)[0]
        if size > cap:
            raise _WorkerFailed(f"output larger than the {cap}-byte cap")
        return self._read_exact(size, deadline)

    def _read_exact(self, size: int, deadline: float) -> bytes:
        chunks, remaining = [], size
        while remaining:
            self._wait(self.from_worker, deadline, write=False)
            try:
                chunk = os.read(self.from_worker, min(remaining, 1 << 22))
            except BlockingIOError:
                continue
            if not chunk:
                raise _WorkerFailed("worker exited unexpectedly")
            chunks.append(chunk)
            remaining -= len(chunk)
        return b"".join(chunks)

    def _wait(self, fd: int, deadline: float, *, write: bool) -> None:
        left = deadline - time.monotonic()
        if left <= 0:
            raise _WorkerFailed("timed out")
        ready = select.select([], [fd], [], left) if write else select.select([fd], [], [], left)
        if not any(ready):
            raise _WorkerFailed("timed out")

    def kill(self) -> None:
        if self.process.returncode is None:  # not yet reaped, so the pid (= process group) is still ours
            try:
                os.killpg(self.process.pid, signal.SIGKILL)  # the worker and its per-call child
            except (ProcessLookupError, PermissionError):
                pass
        try:
            self.process.kill()
        except OSError:
            pass
        self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            try:
                stream.close()
            except OSError:
                pass


class SandboxPool:
    """Long-lived isolated workers; records are split across them. Reuse one pool across calls.

    timeout_s + eval_budget_s * (records x LFs) is the wall-clock limit of one call to one worker.
    `preload` names extra stdlib modules the workers import before isolating themselves (tests use it to
    hand attack code a `socket` module and check that the OS layers still stop it).
    """

    def __init__(self, workers: int = 2, *, timeout_s: float = 5.0, eval_budget_s: float = 2e-4,
                 memory_mb: int = 1024, uid: int = 65534, gid: int = 65534, max_processes: int = 16,
                 max_label_chars: int = MAX_LABEL_CHARS, min_records_per_worker: int = 500,
                 start_timeout_s: float = 30.0, preload: tuple[str, ...] = ()):
        if workers < 1:
            raise ValueError("a pool needs at least one worker")
        self.n_workers, self.timeout_s, self.eval_budget_s = workers, timeout_s, eval_budget_s
        self.max_label_chars, self.min_records_per_worker = max_label_chars, min_records_per_worker
        self._worker_options = dict(memory_mb=memory_mb, uid=uid, gid=gid, max_processes=max_processes,
                                    start_timeout_s=start_timeout_s, preload=tuple(preload))
        self._workers: list[_Worker | None] = [None] * workers
        self._lock = threading.Lock()
        self._closed = False

    def __enter__(self) -> SandboxPool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Stop every worker (safe to call twice)."""
        self._closed = True
        for k, worker in enumerate(self._workers):
            if worker is not None:
                worker.kill()
            self._workers[k] = None

    def layers(self) -> dict[str, bool | str]:
        """The isolation layers active in this pool's workers (starts one if needed)."""
        with self._lock:
            return dict(self._worker(0).layers)

    def apply(self, lfs: list[LabelingFunction], records: list[dict], class_names: list[str] | None = None,
              *, lint: bool = True, restricted: bool | None = None) -> ApplyResult:
        """Votes of every code LF on every record.

        Tests only: `lint=False` skips the lint and (unless `restricted=True`) the restricted builtins,
        leaving only the OS layers between the LF and the host."""
        names = [lf.name for lf in lfs]
        if len(set(names)) != len(names):
            raise InputError(f"LF names must be unique; repeated: {sorted({n for n in names if names.count(n) > 1})}")
        errors: dict[str, str] = {}
        runnable = []
        for lf in lfs:
            problem = self._precheck(lf, lint)
            if problem:
                errors[lf.name] = problem
            else:
                runnable.append(lf)
        with self._lock:
            if self._closed:
                raise SandboxError("the sandbox pool is closed")
            restricted = lint if restricted is None else restricted
            codes, vocabulary, run_errors = self._run(runnable, records, class_names, restricted=restricted)
        errors.update(run_errors)
        return _build_result(names, len(records), codes, vocabulary, errors)

    def _precheck(self, lf: LabelingFunction, lint: bool) -> str | None:
        if lf.kind != "code" or not lf.source:
            return f"the sandbox runs code LFs only (this one is {lf.kind!r})"
        if lint:
            problems = lint_problems(lf.source)
            if problems:
                return "lint: " + "; ".join(problems[:3]) + (f" (and {len(problems) - 3} more)" if len(problems) > 3 else "")
        return None

    def _worker(self, k: int) -> _Worker:
        worker = self._workers[k]
        if worker is None or not worker.alive:
            if worker is not None:
                worker.kill()  # reap it and close its pipes
            worker = _Worker(**self._worker_options)
            _warn_missing_layers(worker.layers)
            self._workers[k] = worker
        return worker

    def _run(self, lfs, records, class_names, *, restricted):
        """Split records across workers; on a failed chunk, rerun it LF by LF to find the culprit."""
        vocabulary: dict[str, int] = {}  # label -> code (1-based), in first-seen order
        codes = {lf.name: np.zeros(len(records), dtype=np.uint16) for lf in lfs}
        errors: dict[str, str] = {}
        if not lfs or not records:
            return codes, [], errors
        chunks = _split(len(records), self.n_workers, self.min_records_per_worker)
        pending = [(k, lfs, start, stop) for k, (start, stop) in enumerate(chunks)]
        outcomes = self._call_many(pending, records, class_names, restricted)
        for (k, chunk_lfs, start, stop), outcome in zip(pending, outcomes):
            if isinstance(outcome, _WorkerFailed) and len(chunk_lfs) > 1:
                for lf in chunk_lfs:
                    if lf.name in errors:
                        continue
                    single = self._call_many([(k, [lf], start, stop)], records, class_names, restricted)[0]
                    self._merge([lf], start, stop, single, codes, vocabulary, errors)
            else:
                self._merge(chunk_lfs, start, stop, outcome, codes, vocabulary, errors)
        for name in errors:
            codes[name][:] = 0
        return codes, list(vocabulary), errors

    def _call_many(self, pending, records, class_names, restricted):
        """Send every chunk first (workers run in parallel), then collect the replies in order."""
        started = []
        for k, lfs, start, stop in pending:
            worker = self._worker(k)  # (re)start it before its deadline starts to run
            n, m = stop - start, len(lfs)
            seconds = self.timeout_s + self.eval_budget_s * n * m
            control = {"cpu_s": math.ceil(seconds) + 1, "max_output": MAX_HEADER_BYTES + 2 * n * m + 4}
            payload = json.dumps({"lfs": [[lf.name, lf.source] for lf in lfs], "records": records[start:stop],
                                  "classes": class_names, "max_label_chars": self.max_label_chars,
                                  "max_vocab": MAX_VOCABULARY, "restricted": restricted}, default=str).encode()
            deadline = time.monotonic() + seconds
            try:
                worker.send_call(control, payload, deadline)
                failure = None
            except _WorkerFailed as exc:
                failure = exc
            started.append((worker, m, control, deadline, seconds, failure))
        return [self._collect(*call, class_names) for call in started]

    def _collect(self, worker, m, control, deadline, seconds, failure, class_names):
        try:
            if failure is not None:
                raise failure
            status, data = worker.receive(control, deadline)
            return _check_status(status) or _decode(data, m, control, class_names, self.max_label_chars)
        except _WorkerFailed as exc:
            return _WorkerFailed(f"timed out after {seconds:.1f} s" if str(exc) == "timed out" else str(exc))

    @staticmethod
    def _merge(lfs, start, stop, outcome, codes, vocabulary, errors) -> None:
        if isinstance(outcome, _WorkerFailed):
            for lf in lfs:
                errors.setdefault(lf.name, f"sandbox: {outcome}")
            return
        chunk_vocab, chunk_codes, chunk_errors = outcome
        remap = np.zeros(len(chunk_vocab) + 1, dtype=np.uint16)
        for code, label in enumerate(chunk_vocab, start=1):
            remap[code] = vocabulary.setdefault(label, len(vocabulary) + 1)
        for column, lf in enumerate(lfs):
            if chunk_errors[column] is not None:
                errors.setdefault(lf.name, chunk_errors[column])
            else:
                codes[lf.name][start:stop] = remap[chunk_codes[column]]

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


def _split(n: int, workers: int, min_per_worker: int) -> list[tuple[int, int]]:
    parts = max(1, min(workers, n // max(1, min_per_worker)))
    bounds = [round(n * k / parts) for k in range(parts + 1)]
    return [(bounds[k], bounds[k + 1]) for k in range(parts)]


def _check_status(status) -> _WorkerFailed | None:
    if not isinstance(status, dict):
        return _WorkerFailed("sent a malformed status")
    if status.get("too_large"):
        return _WorkerFailed("output larger than the cap")
    sig = status.get("signal")
    if isinstance(sig, int):
        name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
        hint = " (CPU or memory limit, or a crash)" if sig in (signal.SIGKILL, signal.SIGSEGV, signal.SIGXCPU) else ""
        return _WorkerFailed(f"LF process killed by {name}{hint}")
    if status.get("exit") != 0:
        return _WorkerFailed(f"LF process exited with status {status.get('exit')!r} (e.g. os._exit or a fatal error)")
    return None


def _decode(data: bytes, m: int, control: dict, class_names, max_label_chars: int):
    """Validate a child's reply: JSON header of plain strings, then exactly m*n uint16 codes in range."""
    if not data:
        return _WorkerFailed("LF process ended without a result (os._exit, or it broke the process)")
    try:
        size = struct.unpack("<I", data[:4])[0]
        header = json.loads(data[4:4 + size])
        vocab, errors = header["vocab"], header["errors"]
    except (struct.error, ValueError, KeyError, TypeError):
        return _WorkerFailed("sent a malformed result")
    if not (isinstance(vocab, list) and isinstance(errors, list) and len(errors) == m):
        return _WorkerFailed("sent a malformed result")
    if not all(type(v) is str and len(v) <= max_label_chars for v in vocab) or len(vocab) > MAX_VOCABULARY:
        return _WorkerFailed("sent invalid labels")
    if class_names is not None and not set(vocab) <= set(class_names):
        return _WorkerFailed("sent labels outside the classes")
    if not all(e is None or type(e) is str for e in errors):
        return _WorkerFailed("sent malformed errors")
    body = data[4 + size:]
    n_codes = (control["max_output"] - MAX_HEADER_BYTES - 4) // 2
    if len(body) != 2 * n_codes:
        return _WorkerFailed("sent a vote table of the wrong size")
    codes = np.frombuffer(body, dtype="<u2").reshape(m, -1) if m else np.zeros((0, 0), np.uint16)
    if codes.size and int(codes.max()) > len(vocab):
        return _WorkerFailed("sent out-of-range votes")
    return vocab, codes, [None if e is None else _printable(e[:500]) for e in errors]


def _printable(text: str) -> str:
    # LF-controlled text ends up on a terminal: no escape sequences or control characters.
    return "".join(c if c.isprintable() else "?" for c in text)


def _build_result(names, n, codes, vocabulary, errors) -> ApplyResult:
    lookup = np.array([None] + vocabulary, dtype=object)
    votes, kept_codes = {}, {}
    for name in names:
        column = codes.get(name)
        if column is None or name in errors:
            votes[name] = [None] * n
            continue
        votes[name] = lookup[column].tolist()
        kept_codes[name] = column
    return ApplyResult(votes=votes, errors=errors, n_records=n, _codes=kept_codes, _vocabulary=list(vocabulary))


def _warn_missing_layers(layers: dict[str, bool | str]) -> None:
    for name, state in layers.items():
        if state is not True and not str(state).startswith("abi") and name not in _warned_layers:
            _warned_layers.add(name)
            log.warning("sandbox layer %r is not active: %s (the other layers still apply)", name, state)


# ---- module-level conveniences -------------------------------------------------------------------------

_default_pool: SandboxPool | None = None
_default_lock = threading.Lock()


def default_pool() -> SandboxPool:
    """A shared pool (2 workers), created on first use and closed at exit."""
    global _default_pool
    with _default_lock:
        if _default_pool is None or _default_pool._closed:
            _default_pool = SandboxPool(workers=2)
            atexit.register(_default_pool.close)
        return _default_pool


def apply_code_lfs(lfs: list[LabelingFunction], records: list[dict],
                   class_names: list[str] | None = None) -> ApplyResult:
    """`default_pool().apply(...)`."""
    return default_pool().apply(lfs, records, class_names)


def sandbox_layers() -> dict[str, bool | str]:
    """What isolation is active in the sandbox workers here, e.g. {"netns": True, "landlock": "abi 7", ...}."""
    return default_pool().layers()
