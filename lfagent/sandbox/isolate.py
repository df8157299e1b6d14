"""OS isolation layers a sandbox worker applies to itself before it reads any LF code.

Stdlib only (plus pyseccomp): the worker imports this file by path, never the `lfagent` package, so
nothing heavy (torch, pandas) is ever loaded next to untrusted code.

Layers, in the order the worker applies them (each one is measured by the tests):
- netns:    `unshare(CLONE_NEWNET)`: a fresh network namespace, loopback down (connect -> ENETUNREACH).
- rlimits:  RLIMIT_AS, RLIMIT_FSIZE=0, RLIMIT_NOFILE, RLIMIT_CORE=0 (RLIMIT_CPU per call, in the child).
- uid:      PR_SET_NO_NEW_PRIVS, drop groups, setresgid/setresuid to an unprivileged id; then RLIMIT_NPROC.
- landlock: no filesystem access except reading the Python stdlib; no TCP bind/connect (ABI >= 4);
            no signals or abstract unix sockets outside the sandbox (ABI >= 6).
- seccomp:  deny sockets, exec, ptrace, namespaces, mounts, io_uring, bpf, ...; the per-call child adds
            fork/clone, kill and session changes.
A layer that is unavailable (other kernel, not root) is reported, never fatal: the others still apply.
"""
from __future__ import annotations

import ctypes
import errno
import importlib
import os
import resource
import sys
import sysconfig

CLONE_NEWNET = 0x40000000
CLONE_NEWUSER = 0x10000000
PR_SET_NO_NEW_PRIVS = 38
PR_SET_PDEATHSIG = 1
SYS_LANDLOCK_CREATE_RULESET, SYS_LANDLOCK_ADD_RULE, SYS_LANDLOCK_RESTRICT_SELF = 444, 445, 446
LANDLOCK_CREATE_RULESET_VERSION = 1
LANDLOCK_RULE_PATH_BENEATH = 1
FS_EXECUTE, FS_READ_FILE, FS_READ_DIR = 1 << 0, 1 << 2, 1 << 3
# All filesystem rights known to each ABI (1-3 add REFER, TRUNCATE; 5 adds IOCTL_DEV).
FS_RIGHTS_BY_ABI = {1: (1 << 13) - 1, 2: (1 << 14) - 1, 3: (1 << 15) - 1, 4: (1 << 15) - 1, 5: (1 << 16) - 1}
NET_BIND_TCP, NET_CONNECT_TCP = 1 << 0, 1 << 1
SCOPE_ABSTRACT_UNIX_SOCKET, SCOPE_SIGNAL = 1 << 0, 1 << 1

# Denied for the whole worker (the launcher that forks per-call children, and those children).
SECCOMP_DENY_WORKER = (
    "socket", "socketpair", "connect", "bind", "listen", "accept", "accept4", "sendto", "sendmsg",
    "sendmmsg", "execve", "execveat", "ptrace", "process_vm_readv", "process_vm_writev", "unshare",
    "setns", "mount", "umount2", "pivot_root", "chroot", "move_mount", "open_tree", "fsopen", "fsmount",
    "fspick", "mount_setattr", "bpf", "perf_event_open", "userfaultfd", "io_uring_setup",
    "io_uring_enter", "io_uring_register", "keyctl", "add_key", "request_key", "init_module",
    "finit_module", "delete_module", "kexec_load", "kexec_file_load", "reboot", "swapon", "swapoff",
    "acct", "quotactl", "mknod", "mknodat", "personality", "open_by_handle_at", "name_to_handle_at",
    "pidfd_getfd", "kcmp", "setuid", "setgid", "setreuid", "setregid", "setresuid", "setresgid",
    "setgroups", "setfsuid", "setfsgid", "capset", "settimeofday", "clock_settime", "adjtimex",
    "clock_adjtime", "sethostname", "setdomainname", "vhangup", "lookup_dcookie", "iopl", "ioperm",
)
# Added in the child that runs LF code: no new processes or threads, no signals, no escaping the group.
SECCOMP_DENY_CHILD = (
    "fork", "vfork", "clone", "clone3", "kill", "tkill", "tgkill", "rt_sigqueueinfo",
    "rt_tgsigqueueinfo", "pidfd_open", "pidfd_send_signal", "setsid", "setpgid", "prctl",
)

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def _fail(what: str) -> str:
    code = ctypes.get_errno()
    return f"unavailable: {what} failed ({errno.errorcode.get(code, code)})"


def enter_network_namespace() -> bool | str:
    """A private network namespace: no interface is up, so nothing (not even 127.0.0.1) is reachable."""
    if _libc.unshare(CLONE_NEWNET) == 0:
        return True
    failure = _fail("unshare(CLONE_NEWNET)")
    if os.geteuid() != 0 and _libc.unshare(CLONE_NEWUSER | CLONE_NEWNET) == 0:
        return True  # unprivileged fallback through a user namespace
    return failure


def set_resource_limits(*, memory_mb: int, max_open_files: int = 64) -> bool | str:
    """Hard caps on address space, file size (0: no writes), open files, core dumps."""
    limits = {resource.RLIMIT_AS: memory_mb * 1024 * 1024, resource.RLIMIT_FSIZE: 0,
              resource.RLIMIT_NOFILE: max_open_files, resource.RLIMIT_CORE: 0}
    try:
        for which, value in limits.items():
            resource.setrlimit(which, (value, value))
    except (OSError, ValueError) as exc:
        return f"unavailable: setrlimit failed ({exc})"
    return True


def set_cpu_limit(seconds: int) -> None:
    """Called in the per-call child: the kernel kills it (SIGKILL at the hard limit) past `seconds` of CPU."""
    seconds = max(1, int(seconds))
    resource.setrlimit(resource.RLIMIT_CPU, (seconds, seconds))


def drop_privileges(*, uid: int, gid: int, max_processes: int) -> bool | str:
    """NO_NEW_PRIVS, then an unprivileged uid/gid; RLIMIT_NPROC binds only once we are not root."""
    if _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        return _fail("prctl(PR_SET_NO_NEW_PRIVS)")
    if os.geteuid() != 0:
        _set_nproc(max_processes)
        return "unavailable: not root, cannot change uid"
    try:
        os.setgroups([])
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)
    except OSError as exc:
        return f"unavailable: setresuid failed ({exc})"
    _set_nproc(max_processes)
    return True


def _set_nproc(max_processes: int) -> None:
    try:
        resource.setrlimit(resource.RLIMIT_NPROC, (max_processes, max_processes))
    except (OSError, ValueError):
        pass


def set_parent_death_signal() -> None:
    """If the worker dies (killed on timeout), the per-call child dies with it."""
    _libc.prctl(PR_SET_PDEATHSIG, 9, 0, 0, 0)


def python_read_paths() -> list[str]:
    """What Python needs to read after start-up (lazy stdlib imports): the stdlib, minus site-packages."""
    stdlib = sysconfig.get_paths()["stdlib"]
    paths = []
    for entry in sorted(os.listdir(stdlib)):
        if entry in ("site-packages", "dist-packages", "test", "idlelib"):
            continue
        paths.append(os.path.join(stdlib, entry))
    dynload = os.path.join(stdlib, "lib-dynload")
    if os.path.isdir(dynload) and dynload not in paths:
        paths.append(dynload)
    return paths


def landlock_abi() -> int:
    abi = _libc.syscall(SYS_LANDLOCK_CREATE_RULESET, None, 0, LANDLOCK_CREATE_RULESET_VERSION)
    return int(abi) if abi > 0 else 0


def restrict_filesystem(read_only_paths: list[str], list_only_paths: tuple[str, ...] = ()) -> bool | str:
    """Landlock: deny every filesystem access except reading `read_only_paths` (and listing the directories
    `list_only_paths`, so the import system can find stdlib modules); deny TCP; scope signals."""
    abi = landlock_abi()
    if abi <= 0:
        return _fail("landlock_create_ruleset")
    attr = _RulesetAttr(handled_access_fs=FS_RIGHTS_BY_ABI.get(abi, (1 << 16) - 1))
    size = 8
    if abi >= 4:
        attr.handled_access_net, size = NET_BIND_TCP | NET_CONNECT_TCP, 16
    if abi >= 6:
        attr.scoped, size = SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL, 24
    ruleset = _libc.syscall(SYS_LANDLOCK_CREATE_RULESET, ctypes.byref(attr), size, 0)
    if ruleset < 0:
        return _fail("landlock_create_ruleset")
    try:
        for path in read_only_paths:
            _allow_read(int(ruleset), path)
        for path in list_only_paths:
            _allow_read(int(ruleset), path, files=False)
        if _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            return _fail("prctl(PR_SET_NO_NEW_PRIVS)")
        if _libc.syscall(SYS_LANDLOCK_RESTRICT_SELF, int(ruleset), 0) != 0:
            return _fail("landlock_restrict_self")
    finally:
        os.close(int(ruleset))
    return f"abi {abi}"


def _allow_read(ruleset: int, path: str, *, files: bool = True) -> None:
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except OSError:
        return
    try:
        is_dir = os.path.isdir(path)
        rights = (FS_READ_FILE if files else 0) | (FS_READ_DIR if is_dir else 0)
        rule = _PathBeneathAttr(allowed_access=rights, parent_fd=fd)
        _libc.syscall(SYS_LANDLOCK_ADD_RULE, ruleset, LANDLOCK_RULE_PATH_BENEATH, ctypes.byref(rule), 0)
    finally:
        os.close(fd)


def install_seccomp(deny: tuple[str, ...]) -> bool | str:
    """Deny `deny` with EPERM (a Python error the LF sees); everything else stays allowed."""
    try:
        import pyseccomp
    except Exception as exc:  # libseccomp missing: pyseccomp raises RuntimeError at import
        return f"unavailable: pyseccomp ({exc})"
    try:
        rules = pyseccomp.SyscallFilter(defaction=pyseccomp.ALLOW)
        for name in deny:
            try:
                rules.add_rule(pyseccomp.ERRNO(errno.EPERM), name)
            except (OSError, RuntimeError, ValueError):
                continue  # a syscall this architecture does not have
        rules.load()
    except OSError as exc:
        return f"unavailable: seccomp load failed ({exc})"
    return True


def clear_environment() -> bool:
    """The worker is started with an empty environment; also drop anything Python added."""
    os.environ.clear()
    return True


def preload_pyseccomp() -> None:
    """pyseccomp finds libseccomp with a subprocess at import: do that while it is still possible.
    A real import, for its side effect (a find_spec probe would leave it to the later, failing one)."""
    try:
        importlib.import_module("pyseccomp")
    except Exception:
        pass


def isolate_worker(*, memory_mb: int, uid: int, gid: int, max_processes: int) -> dict[str, bool | str]:
    """Apply every worker-wide layer to the current process; returns what is active."""
    preload_pyseccomp()
    layers: dict[str, bool | str] = {"env_cleared": clear_environment()}
    layers["netns"] = enter_network_namespace()
    layers["rlimits"] = set_resource_limits(memory_mb=memory_mb)
    read_paths = python_read_paths()  # list the stdlib before we lose the right to
    layers["uid"] = drop_privileges(uid=uid, gid=gid, max_processes=max_processes)
    layers["landlock"] = restrict_filesystem(read_paths, (sysconfig.get_paths()["stdlib"],))
    layers["seccomp"] = install_seccomp(SECCOMP_DENY_WORKER)
    return layers


def isolate_call_child(*, cpu_seconds: int) -> bool | str:
    """Layers for the forked child that runs LF code: dies with its parent, CPU cap, no fork/kill."""
    set_parent_death_signal()
    set_cpu_limit(cpu_seconds)
    if "pyseccomp" not in sys.modules:
        return "unavailable"
    return install_seccomp(SECCOMP_DENY_CHILD)


def sandbox_layers() -> dict[str, bool | str]:
    """What the sandbox workers on this machine actually have active (asks a running worker)."""
    from lfagent.sandbox.pool import sandbox_layers as measured_layers  # host side only

    return measured_layers()
