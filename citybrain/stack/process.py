"""Process plumbing for the local stack: pid files, port probes, waiting with a deadline."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


class StackError(RuntimeError):
    """A local service failed; the message names the service and where its log is."""


@dataclass
class ServiceStatus:
    """What `stack status` prints for one service."""

    name: str
    running: bool
    address: str
    details: dict[str, str] = field(default_factory=dict)
    log_file: Path | None = None


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """True when something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def pid_alive(pid: int) -> bool:
    """True when a process with this pid exists (and is not a zombie)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    if stat.exists():
        with contextlib.suppress(OSError, IndexError):
            return stat.read_text().split(") ", 1)[1][0] != "Z"
    return True


def read_pid(pid_file: Path) -> int | None:
    """The pid recorded in a pid file if that process is still alive."""
    try:
        pid = int(pid_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if pid_alive(pid) else None


def wait_until(
    check: Callable[[], bool],
    timeout: float,
    interval: float = 0.25,
    abort: Callable[[], str | None] | None = None,
) -> bool:
    """Poll `check` until it is true or `timeout` passes; `abort` may end the wait early."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        if abort is not None and abort() is not None:
            return False
        time.sleep(interval)
    return check()


def terminate(pid: int, timeout: float) -> None:
    """SIGTERM a process, then SIGKILL it if it has not exited within `timeout`."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    if not wait_until(lambda: not pid_alive(pid), timeout):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        wait_until(lambda: not pid_alive(pid), 10)


def tail(path: Path, lines: int = 20) -> str:
    """The last lines of a log file, for error messages."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log yet)"


def split_host_port(address: str, default_port: int) -> tuple[str, int]:
    """'host:port' -> (host, port)."""
    host, _, port = address.rpartition(":")
    if not host:
        return address, default_port
    return host, int(port)


def apt_install(service: str, packages: list[str], hint: str = "") -> None:
    """`apt-get install` Debian `packages` for `service` (root only): StackError with the
    command to run by hand when not root or not Debian, or with apt's own error."""
    import shutil
    import subprocess

    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise StackError(
            f"{service}: {' '.join(packages)} not installed; run "
            f"`sudo apt-get install -y {' '.join(packages)}`{hint}"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (
        ["apt-get", "update", "-q"],
        ["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages],
    ):
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
        if proc.returncode != 0:
            raise StackError(f"{service}: `{' '.join(cmd)}` failed: {proc.stderr[-2000:]}")
