"""The local MQTT broker: Debian's mosquitto, run by `citybrain stack up` when a feed comes
by MQTT, with its files under `<data_dir>/mosquitto` (`mosquitto.conf`, rewritten on every
start from the settings; `data/`, the persistence database; `passwd`, the bridge's login;
`mosquitto.pid`) and its log beside the others. Started as root, it runs as the
`mosquitto` OS user, which then owns that folder.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from pathlib import Path

from citybrain.settings import Settings
from citybrain.stack.mosquitto_config import MosquittoPlace, mosquitto_conf, place
from citybrain.stack.passwords import generate_password
from citybrain.stack.process import (
    ServiceStatus,
    StackError,
    apt_install,
    port_open,
    read_pid,
    tail,
    terminate,
    wait_until,
)

OS_USER = "mosquitto"


def binary(name: str) -> str | None:
    """A mosquitto program: on PATH, or in /usr/sbin (not on a normal user's PATH)."""
    found = shutil.which(name)
    if found is None and Path("/usr/sbin", name).exists():
        found = f"/usr/sbin/{name}"
    return found


def bridge_password(settings: Settings, *, create: bool = False) -> str:
    """The bridge's MQTT password: the setting, else the local stack's generated one
    (made on first use with `create`)."""
    if settings.mqtt_password is not None:
        return settings.mqtt_password.get_secret_value()
    where = MosquittoService(settings).place
    path = where.bridge_password_file
    if path.is_file():
        return path.read_text().strip()
    if not create:
        raise StackError(
            f"mosquitto: no CITYBRAIN_MQTT_PASSWORD and no {path}: `citybrain stack up` "
            "makes the local broker's login"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    password = generate_password()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(password + "\n")
    return password


def _reachable(folder: Path, uid: int, gid: int) -> bool:
    """Whether that user can pass through every folder down to `folder`."""
    import stat

    for path in (folder, *folder.parents):
        try:
            st = path.stat()
        except FileNotFoundError:
            continue  # made by us later, as root, 0755
        bit = (
            stat.S_IXUSR if st.st_uid == uid else stat.S_IXGRP if st.st_gid == gid else stat.S_IXOTH
        )
        if not st.st_mode & bit:
            return False
    return True


class MosquittoService:
    """Start, stop and inspect the local mosquitto."""

    name = "mosquitto"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.place: MosquittoPlace = place(
            settings.mqtt_host, settings.mqtt_port, settings.data_dir, settings.resolved_log_dir
        )
        self.log_file = self.place.log_file

    @property
    def address(self) -> str:
        return self.place.address

    def pid(self) -> int | None:
        return read_pid(self.place.pid_file)

    def os_user(self) -> str | None:
        """The user the broker drops to when started as root (None: not root): `mosquitto`,
        or root itself when that user is missing or cannot reach the broker's folders (a
        data folder inside a private one)."""
        if os.geteuid() != 0:
            return None
        try:
            user = pwd.getpwnam(OS_USER)
        except KeyError:
            return "root"
        folders = (self.place.root.parent, self.place.log_file.parent)
        if not all(_reachable(folder, user.pw_uid, user.pw_gid) for folder in folders):
            return "root"
        return OS_USER

    # --- set-up ------------------------------------------------------------------
    def ensure_installed(self) -> str:
        """The broker's program; apt-get installs mosquitto when absent (root only)."""
        found = binary("mosquitto")
        if found is not None and binary("mosquitto_passwd") is not None:
            return found
        apt_install("mosquitto", ["mosquitto", "mosquitto-clients"])
        found = binary("mosquitto")
        if found is None:
            raise StackError("mosquitto: installed, but no `mosquitto` program found")
        return found

    def write_files(self) -> None:
        """The configuration, the data folder and the login (the bridge's user)."""
        where = self.place
        where.data.mkdir(parents=True, exist_ok=True)
        where.log_file.parent.mkdir(parents=True, exist_ok=True)
        user = self.os_user()
        where.conf.write_text(mosquitto_conf(where, user))
        passwd = binary("mosquitto_passwd")
        if passwd is None:
            raise StackError("mosquitto: no `mosquitto_passwd`; install mosquitto")
        password = bridge_password(self.settings, create=True)
        where.password_file.unlink(missing_ok=True)
        proc = subprocess.run(
            [passwd, "-b", "-c", str(where.password_file), self.settings.mqtt_username, password],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise StackError(f"mosquitto: mosquitto_passwd failed: {proc.stdout}{proc.stderr}")
        where.password_file.chmod(0o600)
        if not where.log_file.exists():
            where.log_file.touch()
        if user is not None and user != "root":
            for path in (where.root, where.data, *where.data.iterdir()):
                shutil.chown(path, user, user)
            for path in (where.password_file, where.log_file):
                shutil.chown(path, user, user)

    # --- lifecycle ---------------------------------------------------------------
    def is_ready(self) -> bool:
        return self.pid() is not None and port_open(self.place.host, self.place.port)

    def up(self) -> None:
        """Start the broker unless it runs; wait until it listens."""
        program = self.ensure_installed()
        if self.pid() is not None and wait_until(self.is_ready, self.settings.stack_timeout):
            return
        if port_open(self.place.host, self.place.port):
            raise StackError(
                f"mosquitto: port {self.address} is taken by another program; "
                "free it or set CITYBRAIN_MQTT_PORT"
            )
        self.write_files()
        out = self.place.root / "mosquitto.out"
        with out.open("ab") as sink:
            proc = subprocess.Popen(
                [program, "-c", str(self.place.conf)],
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=self.place.root,
            )

        def died() -> str | None:
            code = proc.poll()
            return None if code is None else f"exit code {code}"

        if not wait_until(self.is_ready, self.settings.stack_timeout, interval=0.2, abort=died):
            reason = died() or f"not listening after {self.settings.stack_timeout:.0f}s"
            if proc.poll() is None:
                terminate(proc.pid, 10)
            raise StackError(
                f"mosquitto did not come up at {self.address} ({reason}); see "
                f"{self.log_file}:\n{tail(self.log_file)}\n{tail(out)}"
            )

    def down(self) -> None:
        """Stop the broker cleanly (it saves its database on the way out)."""
        pid = self.pid()
        if pid is not None:
            terminate(pid, min(30.0, self.settings.stack_timeout))
        self.place.pid_file.unlink(missing_ok=True)

    def kill(self) -> None:
        """Hard-kill the broker (fault injection): nothing saved since the last autosave."""
        import signal

        pid = self.pid()
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
            wait_until(lambda: self.pid() is None, 10)

    # --- inspection ----------------------------------------------------------------
    def version(self) -> str:
        program = binary("mosquitto")
        if program is None:
            return "not installed"
        proc = subprocess.run([program, "-h"], capture_output=True, text=True, check=False)
        first = (proc.stdout or proc.stderr).strip().splitlines()
        return first[0].removeprefix("mosquitto version ") if first else "?"

    def status(self) -> ServiceStatus:
        pid = self.pid()
        running = pid is not None and port_open(self.place.host, self.place.port)
        details = {"version": self.version()}
        if pid is not None:
            details["pid"] = str(pid)
        if not running:
            details["error"] = (
                "not running" if pid is None else f"nothing listens on {self.address}"
            )
        details["login"] = self.settings.mqtt_username
        details["data"] = str(self.place.data)
        return ServiceStatus(self.name, running, self.address, details, self.log_file)
