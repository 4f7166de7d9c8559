"""The operating-system layers around the worker that loads strangers' model files.

Standard library only, and no other ``core`` import: the worker process (``core.safety.worker``) loads
this file by its path and applies the layers BEFORE numpy, scikit-learn or ModelShelf's loader
are imported, so every thread those libraries start inherits them. Each layer is applied on its
own, and reports whether it took and why not (an old kernel, a container that forbids it), so
``python -m core doctor`` can say exactly which defences are up.

Layers, in the order the worker applies them (the process start itself, a fresh interpreter
with a clean environment, is done by the parent):

* ``no_new_privs``: ``prctl(PR_SET_NO_NEW_PRIVS)``, nothing the worker runs gains privileges
  (and Landlock and seccomp require it);
* ``capabilities``: every Linux capability dropped (bounding set, then ``capset`` to nothing),
  so a worker started by root cannot raise its resource limits or bypass file permissions;
* ``rlimits``: ``RLIMIT_FSIZE=0`` (no byte written to any file), ``RLIMIT_CORE=0`` (no core
  dump), a small ``RLIMIT_NOFILE``; ``RLIMIT_AS`` (the memory budget) comes once the libraries
  are imported, ``RLIMIT_CPU`` per request;
* ``landlock``: the filesystem barrier: read-only access beneath the interpreter, its
  libraries and a few system paths, nothing else; no write, truncate, remove, make or create
  anywhere, no execve; on ABI >= 4 no TCP bind or connect either, on ABI >= 6 no abstract
  unix socket or signal outside the worker;
* ``seccomp``: a BPF filter that checks the architecture and refuses ``socket()`` and
  ``socketpair()`` of any family but ``AF_UNIX`` (``EACCES``), and execve, ptrace,
  process_vm_*, bpf and io_uring (``EPERM``; io_uring could open sockets behind seccomp's back).
"""

from __future__ import annotations

import ctypes
import errno
import os
import resource
import sys
from pathlib import Path
from typing import Any

LAYERS = (
    "spawn",
    "no_new_privs",
    "capabilities",
    "threads",
    "rlimits",
    "memory",
    "cpu",
    "landlock",
    "landlock_net",
    "seccomp",
    "deadline",
)
#: Layers that keep the worker away from files, and from the network (demo mode needs one of each kind).
FILESYSTEM_LAYERS = ("landlock",)
NETWORK_LAYERS = ("seccomp", "landlock_net")

#: Thread-count variables of the BLAS/OpenMP libraries numpy and scikit-learn use: one thread each.
THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)
NOFILE_LIMIT = 64

# -- prctl / syscall numbers (x86_64) ------------------------------------------------------------
PR_CAPBSET_DROP = 24
PR_SET_SECCOMP = 22
PR_SET_NO_NEW_PRIVS = 38
PR_GET_NO_NEW_PRIVS = 39
SECCOMP_MODE_FILTER = 2
SYS_CAPSET = 126
SYS_LANDLOCK_CREATE_RULESET = 444
SYS_LANDLOCK_ADD_RULE = 445
SYS_LANDLOCK_RESTRICT_SELF = 446
LANDLOCK_CREATE_RULESET_VERSION = 1
LANDLOCK_RULE_PATH_BENEATH = 1

# Landlock filesystem rights: bit 0 execute ... bit 12 make_sym (ABI 1), refer (2), truncate (3),
# ioctl_dev (5). Only READ_FILE and READ_DIR are ever granted.
FS_READ_FILE = 1 << 2
FS_READ_DIR = 1 << 3
_FS_HANDLED = {1: (1 << 13) - 1, 2: (1 << 14) - 1, 3: (1 << 15) - 1, 4: (1 << 15) - 1}
NET_BIND_TCP = 1
NET_CONNECT_TCP = 2
SCOPE_ABSTRACT_UNIX_SOCKET = 1
SCOPE_SIGNAL = 2

AF_UNIX = 1
AUDIT_ARCH_X86_64 = 0xC000003E
X32_SYSCALL_BIT = 0x40000000
SECCOMP_RET_KILL_PROCESS = 0x80000000
SECCOMP_RET_ERRNO = 0x00050000
SECCOMP_RET_ALLOW = 0x7FFF0000
SYS_SOCKET = 41
SYS_SOCKETPAIR = 53
#: Refused outright: running programs, reaching into other processes, eBPF, io_uring.
DENIED_SYSCALLS = {
    "execve": 59,
    "ptrace": 101,
    "process_vm_readv": 310,
    "process_vm_writev": 311,
    "bpf": 321,
    "execveat": 322,
    "io_uring_setup": 425,
    "io_uring_enter": 426,
    "io_uring_register": 427,
}


def _libc() -> Any:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    libc.prctl.restype = ctypes.c_int
    return libc


def _fail(what: str) -> str:
    code = ctypes.get_errno()
    return f"{what} failed: {os.strerror(code) if code else 'unknown error'}"


def landlock_abi() -> int:
    """The Landlock ABI version the kernel offers (0: none), without changing anything."""
    if sys.platform != "linux" or os.uname().machine != "x86_64":
        return 0
    value = _libc().syscall(SYS_LANDLOCK_CREATE_RULESET, None, ctypes.c_size_t(0), LANDLOCK_CREATE_RULESET_VERSION)
    return int(value) if value > 0 else 0


def seccomp_supported() -> bool:
    """Whether this kernel has seccomp filters (``Seccomp:`` in /proc/self/status)."""
    try:
        return any(line.startswith("Seccomp:") for line in Path("/proc/self/status").read_text().splitlines())
    except OSError:
        return False


# -- layers ----------------------------------------------------------------------------------------


def set_no_new_privs() -> tuple[bool, str]:
    libc = _libc()
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        return False, _fail("prctl(PR_SET_NO_NEW_PRIVS)")
    return bool(libc.prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1), "set: no privilege can be gained (setuid, file caps)"


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def drop_capabilities() -> tuple[bool, str]:
    """Empty the bounding set and the effective/permitted/inheritable sets."""
    libc = _libc()
    for cap in range(64):
        libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)  # EINVAL past the last capability: ignored
    header = _CapHeader(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3
    data = (_CapData * 2)()
    if libc.syscall(SYS_CAPSET, ctypes.byref(header), ctypes.byref(data)) != 0:
        return False, _fail("capset")
    status = Path("/proc/self/status").read_text()
    effective = next((line.split()[1] for line in status.splitlines() if line.startswith("CapEff:")), "?")
    return int(effective, 16) == 0 if effective != "?" else False, f"every capability dropped (CapEff {effective})"


def set_rlimits(nofile: int = NOFILE_LIMIT) -> tuple[bool, str]:
    """No file may grow (FSIZE 0), no core dump, few open files."""
    try:
        resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
    except (ValueError, OSError) as exc:
        return False, f"setrlimit failed: {exc}"
    return True, f"RLIMIT_FSIZE=0, RLIMIT_CORE=0, RLIMIT_NOFILE={nofile}"


def set_memory_limit(megabytes: int) -> tuple[bool, str]:
    """RLIMIT_AS: an allocation past the budget fails (MemoryError) instead of growing the worker."""
    limit = megabytes * 1024 * 1024
    try:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (ValueError, OSError) as exc:
        return False, f"setrlimit(RLIMIT_AS) failed: {exc}"
    return True, f"RLIMIT_AS={megabytes} MB"


def cpu_seconds_used() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def set_cpu_budget(seconds: float) -> None:
    """RLIMIT_CPU for the next request: the kernel ends the worker (SIGXCPU) past ``seconds`` more."""
    soft = int(cpu_seconds_used() + seconds) + 1
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))


class _RulesetAttr(ctypes.Structure):
    _fields_ = [
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    ]


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def readable_paths(extra: list[str] | None = None) -> list[str]:
    """What the worker may read: the interpreter and its libraries, system libraries, itself."""
    candidates = [
        sys.prefix,
        sys.base_prefix,
        sys.exec_prefix,
        os.path.dirname(os.path.realpath(sys.executable)),
        *[p for p in sys.path if p and "site-packages" in p],
        "/usr",
        "/lib",
        "/lib64",
        "/etc/ld.so.cache",
        "/etc/localtime",
        "/proc/self",
        "/sys/devices/system/cpu",
        "/dev/null",
        "/dev/urandom",
        *(extra or []),
    ]
    seen: list[str] = []
    for path in candidates:
        if os.path.exists(path) and path not in seen:
            seen.append(path)
    return seen


def apply_landlock(read_only: list[str]) -> tuple[bool, str]:
    """Read-only beneath ``read_only``; every other filesystem right (and TCP, ABI >= 4) denied."""
    abi = landlock_abi()
    if abi < 1:
        return False, "Landlock is not available on this kernel (or disabled at boot)"
    libc = _libc()
    attr = _RulesetAttr(_FS_HANDLED.get(abi, (1 << 16) - 1), 0, 0)
    size = 8
    if abi >= 4:
        attr.handled_access_net = NET_BIND_TCP | NET_CONNECT_TCP
        size = 16
    if abi >= 6:
        attr.scoped = SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL
        size = 24
    ruleset = libc.syscall(SYS_LANDLOCK_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size), 0)
    if ruleset < 0:
        return False, _fail("landlock_create_ruleset")
    try:
        for path in read_only:
            try:
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                continue
            try:
                is_dir = os.path.isdir(path)
                rule = _PathBeneath(FS_READ_FILE | (FS_READ_DIR if is_dir else 0), fd)
                if libc.syscall(SYS_LANDLOCK_ADD_RULE, int(ruleset), LANDLOCK_RULE_PATH_BENEATH, ctypes.byref(rule), 0):
                    return False, _fail(f"landlock_add_rule({path})")
            finally:
                os.close(fd)
        if libc.syscall(SYS_LANDLOCK_RESTRICT_SELF, int(ruleset), 0) != 0:
            return False, _fail("landlock_restrict_self")
    finally:
        os.close(int(ruleset))
    network = ", no TCP bind/connect" if abi >= 4 else " (no network rules before ABI 4)"
    return True, f"ABI {abi}: read-only beneath {len(read_only)} paths, no write/create/remove/truncate/exec{network}"


class _SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8), ("k", ctypes.c_uint32)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_uint16), ("filter", ctypes.POINTER(_SockFilter))]


_LD_ABS_W = 0x20  # BPF_LD | BPF_W | BPF_ABS
_JEQ = 0x15  # BPF_JMP | BPF_JEQ | BPF_K
_JGE = 0x35  # BPF_JMP | BPF_JGE | BPF_K
_RET = 0x06  # BPF_RET | BPF_K


def seccomp_program() -> list[tuple[int, int, int, int]]:
    """The BPF program, as (code, jt, jf, k): arch check, then the socket family, then the denials.

    ``struct seccomp_data``: nr at offset 0, arch at 4, args[0] at 16 (its low 32 bits on
    x86_64: ``socket``'s ``int family``).
    """
    denied = list(DENIED_SYSCALLS.values())
    prog: list[tuple[int, int, int, int]] = [
        (_LD_ABS_W, 0, 0, 4),
        (_JEQ, 1, 0, AUDIT_ARCH_X86_64),
        (_RET, 0, 0, SECCOMP_RET_KILL_PROCESS),  # another ABI (i386 via int 0x80): never
        (_LD_ABS_W, 0, 0, 0),
        (_JGE, 0, 1, X32_SYSCALL_BIT),
        (_RET, 0, 0, SECCOMP_RET_KILL_PROCESS),  # the x32 ABI's numbers
    ]
    # Two socket calls jump to the family check placed after the denial list.
    n_denied = len(denied)
    check_at = len(prog) + 2 + n_denied + 2  # index of the family check
    prog.append((_JEQ, check_at - (len(prog) + 1), 0, SYS_SOCKET))
    prog.append((_JEQ, check_at - (len(prog) + 1), 0, SYS_SOCKETPAIR))
    deny_at = check_at - 1
    for number in denied:
        prog.append((_JEQ, deny_at - (len(prog) + 1), 0, number))
    prog.append((_RET, 0, 0, SECCOMP_RET_ALLOW))
    prog.append((_RET, 0, 0, SECCOMP_RET_ERRNO | errno.EPERM))  # deny_at
    prog.append((_LD_ABS_W, 0, 0, 16))  # check_at: args[0], the address family
    prog.append((_JEQ, 0, 1, AF_UNIX))
    prog.append((_RET, 0, 0, SECCOMP_RET_ALLOW))
    prog.append((_RET, 0, 0, SECCOMP_RET_ERRNO | errno.EACCES))
    return prog


def apply_seccomp() -> tuple[bool, str]:
    """Install the filter (needs no_new_privs, or CAP_SYS_ADMIN)."""
    if not seccomp_supported():
        return False, "seccomp is not available on this kernel"
    if os.uname().machine != "x86_64":
        return False, f"the filter is written for x86_64, not {os.uname().machine}"
    program = seccomp_program()
    filters = (_SockFilter * len(program))(*[_SockFilter(*op) for op in program])
    fprog = _SockFprog(len(program), filters)
    if _libc().prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) != 0:
        return False, _fail("prctl(PR_SET_SECCOMP)")
    return True, "socket()/socketpair() only for AF_UNIX; execve, ptrace, process_vm_*, bpf, io_uring refused"


def threads_report() -> tuple[bool, str]:
    """The BLAS/OpenMP variables the parent set before anything imported numpy here."""
    wrong = [name for name in THREAD_VARIABLES if os.environ.get(name) != "1"]
    if wrong:
        return False, "not set to 1: " + ", ".join(wrong)
    return True, "BLAS/OpenMP threads: 1 (" + ", ".join(THREAD_VARIABLES[:3]) + ", ...)"


def enter(layers: set[str], read_only_extra: list[str]) -> dict[str, dict[str, Any]]:
    """Apply the chosen layers to this process, in order; report each (active, reason)."""
    report: dict[str, dict[str, Any]] = {}

    def record(name: str, outcome: tuple[bool, str]) -> None:
        report[name] = {"active": bool(outcome[0]), "reason": outcome[1]}

    off = (False, "turned off for this worker")
    record("no_new_privs", set_no_new_privs() if "no_new_privs" in layers else off)
    record("capabilities", drop_capabilities() if "capabilities" in layers else off)
    record("threads", threads_report() if "threads" in layers else off)
    record("rlimits", set_rlimits() if "rlimits" in layers else off)
    record("landlock", apply_landlock(readable_paths(read_only_extra)) if "landlock" in layers else off)
    if report["landlock"]["active"] and landlock_abi() >= 4:
        record("landlock_net", (True, "Landlock denies TCP bind and connect"))
    else:
        record("landlock_net", (False, "needs Landlock ABI 4 or later, applied"))
    record("seccomp", apply_seccomp() if "seccomp" in layers else off)
    return report
