"""What the benchmarks need of processes: a free port, and a process's CPU time and RSS
(from /proc)."""

from __future__ import annotations

import os
import socket
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def profiler_prefix(tag: str = "") -> list[str]:
    """The command that starts a benchmarked worker's Python, under a profiler on request.

    `CITYBRAIN_BENCH_PROFILE=out.txt` (or `.svg`, `.json`) runs the worker under py-spy
    (collapsed stacks, flame graph or speedscope by the file's suffix); `out.prof` runs it
    under cProfile. py-spy is not a dependency: `pip install py-spy` first. `tag`: a name
    put before the suffix, one file per worker (`out-incidents.txt`)."""
    import shutil
    import sys

    profile = os.environ.get("CITYBRAIN_BENCH_PROFILE")
    if not profile:
        return [sys.executable]
    if tag:
        path = Path(profile)
        profile = str(path.with_name(f"{path.stem}-{tag}{path.suffix}"))
    if profile.endswith(".prof"):
        return [sys.executable, "-m", "cProfile", "-o", profile]
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    fmt = {".svg": "flamegraph", ".json": "speedscope"}.get(Path(profile).suffix, "raw")
    return [
        spy,
        "record",
        "--nonblocking",
        "-r",
        "200",
        "-f",
        fmt,
        "-o",
        profile,
        "--",
        sys.executable,
    ]


def stop_signal() -> int:
    """SIGINT under py-spy (it writes its profile on SIGINT, not on SIGTERM), else SIGTERM;
    a Faust worker stops cleanly on either."""
    import signal

    profile = os.environ.get("CITYBRAIN_BENCH_PROFILE", "")
    return signal.SIGINT if profile and not profile.endswith(".prof") else signal.SIGTERM
