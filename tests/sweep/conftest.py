"""A throwaway PostgreSQL server for the sweeps across machines: a real one, not a stand-in.

`postgres` starts one cluster for the session (initdb in a temporary directory, a free port on
127.0.0.1, trust authentication, no fsync) and stops and removes it at the end, failed tests or
not; each test asks `new_database` for a database of its own. Where no PostgreSQL server binaries
are installed (.ci/run installs Debian's), the tests that need one skip and say so.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest

from ..conftest import track


def server_binaries() -> Path | None:
    """The directory holding initdb and pg_ctl (Debian keeps them out of PATH), or None."""
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent  # where pg_ctl and createdb are too (not a link to initdb)
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return Path(versions[-1]).parent if versions else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """A PostgreSQL cluster of the test session's own."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="rnn-workbench-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        # PostgreSQL refuses to run as root: there, as the postgres user the package created
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.as_user:
            shutil.chown(self.root, "postgres")
        self.started = False

    def _run(self, *argv: str, timeout: float = 60) -> None:
        done = subprocess.run([*self.as_user, *argv], capture_output=True, text=True, timeout=timeout,
                              cwd=self.root)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv[:2])} failed: {done.stderr[-2000:] or done.stdout[-2000:]}")

    def start(self) -> None:
        self._run(str(self.bindir / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres",
                  "-E", "UTF8", "--no-sync")
        options = f"-k {self.root} -p {self.port} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-o", options, "-l",
                  str(self.root / "server.log"), "-w", "-t", "60", "start")
        self.started = True

    def stop(self) -> None:
        """Stop the server and remove its files; a second call does nothing."""
        try:
            if self.started:
                self.started = False
                self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}"

    def create_database(self) -> str:
        name = f"study_{uuid.uuid4().hex[:10]}"
        self._run(str(self.bindir / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                  name)
        return f"{self.url}/{name}"


@pytest.fixture(scope="session")
def postgres():
    bindir = server_binaries()
    if bindir is None:
        pytest.skip("no PostgreSQL server binaries here (initdb, pg_ctl): apt-get install postgresql")
    cluster = Cluster(bindir)
    track(cleanup=cluster.stop)  # also when the session itself is stopped (SIGTERM), fixtures or not
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def new_database(postgres) -> str:
    """A URL of a database nobody has used yet, on the session's server."""
    return postgres.create_database()
