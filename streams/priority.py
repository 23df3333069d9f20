"""A process's CPU priority, made to count on Linux.

`os.nice` orders a process only against the others of its scheduling group. With
autogroups on (`/proc/sys/kernel/sched_autogroup_enabled`, the default of desktop and many
server kernels), every session is one group, and the groups share the CPU equally whatever
their processes' niceness: a telemetry worker at nice 10 started from the same shell as the
reports worker still takes a full share, and a report waits behind it. So a process that
leads its own session (started with `setsid`, or `start_new_session=True`) also gives its
niceness to its autogroup, which then holds only it and its children. Under systemd or
Kubernetes the cgroup's CPU weight plays this part (`CPUWeight=`, resource requests).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

AUTOGROUP = Path("/proc/self/autogroup")


def lower_priority(nice: int, own_session: bool = False) -> str:
    """Add `nice` to this process's niceness; with `own_session`, first start a session of
    its own (for a child that is not a group leader). When the process leads its session
    and the kernel groups by session, the session's autogroup gets the niceness too.
    Returns what was done (for the log)."""
    if nice <= 0:
        return "unchanged"
    if own_session and os.getsid(0) != os.getpid():
        with contextlib.suppress(OSError):  # a process group leader stays in its session
            os.setsid()
    os.nice(nice)
    if os.getsid(0) != os.getpid() or not AUTOGROUP.exists():
        return f"nice {nice}"
    try:
        AUTOGROUP.write_text(str(min(19, nice)))
    except OSError as exc:  # not allowed here: niceness within the group only
        return f"nice {nice} (autogroup unchanged: {exc.strerror})"
    return f"nice {nice}, autogroup nice {min(19, nice)}"
