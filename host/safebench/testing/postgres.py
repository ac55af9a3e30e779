"""A PostgreSQL server of a test's own: a fresh cluster in a temporary folder, listening on 127.0.0.1 only,
with a password for its one user; removed when it stops. Started as root, it runs as the `postgres` user
(PostgreSQL refuses to run as root), which then owns its folder."""

import glob
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from ..errors import DatabaseError
from ..tls import ServerProcess, free_port

USER = "safebench"


def bin_dir():
    """The folder of Debian's PostgreSQL server programs (the newest version), or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=lambda p: int(p.split("/")[4]))
    return Path(found[-1]).parent if found else None


def _as_postgres():
    """preexec_fn and the owner for a server started as root; (None, None) otherwise."""
    if os.geteuid() != 0:
        return None, None
    user = pwd.getpwnam("postgres")

    def drop():
        os.setgid(user.pw_gid)
        os.setuid(user.pw_uid)
    return drop, user


class PostgresServer(ServerProcess):
    """`with PostgresServer() as pg:` a server; `pg.url` reaches its database `safebench` as its user."""

    def __init__(self, timeout=30.0):
        self.port, self.timeout = free_port(), timeout
        self.password = secrets.token_hex(16)
        self.folder = None

    @property
    def url(self):
        return f"postgresql://{USER}:{self.password}@127.0.0.1:{self.port}/safebench"

    def start(self):
        programs = bin_dir()
        if programs is None:
            raise DatabaseError("PostgreSQL is not installed (Debian package postgresql; `make test` installs it)")
        drop, user = _as_postgres()
        self.folder = Path(tempfile.mkdtemp(prefix="safebench-postgres-"))
        (self.folder / "password").write_text(self.password)
        if user:
            for path in (self.folder, self.folder / "password"):
                os.chown(path, user.pw_uid, user.pw_gid)
        data = self.folder / "data"
        init = subprocess.run([programs / "initdb", "-D", data, "-U", USER, "--pwfile", self.folder / "password",
                               "--auth-local=scram-sha-256", "--auth-host=scram-sha-256", "-E", "UTF8",
                               "--no-instructions"], capture_output=True, text=True, preexec_fn=drop)
        if init.returncode:
            raise DatabaseError(f"initdb failed: {(init.stderr or init.stdout).strip().splitlines()[-1]}")
        with open(self.folder / "log", "wb") as log:
            self.proc = subprocess.Popen(
                [programs / "postgres", "-D", data, "-h", "127.0.0.1", "-p", str(self.port), "-k", self.folder,
                 "-c", "fsync=off"],  # a test's database: nothing to keep past a crash
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log,  # a file: never blocks
                preexec_fn=drop)
        self._create_database()
        return self

    def _create_database(self):
        import psycopg

        deadline = time.monotonic() + self.timeout
        while True:
            if self.proc.poll() is not None:
                said = (self.folder / "log").read_text(errors="replace").strip().splitlines()
                raise DatabaseError(f"postgres exited at start: {said[-1] if said else 'it said nothing'}")
            try:
                with psycopg.connect(self.url.rsplit("/", 1)[0] + "/postgres", autocommit=True,
                                     connect_timeout=2) as db:
                    db.execute("CREATE DATABASE safebench")
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise DatabaseError(f"postgres did not answer on 127.0.0.1:{self.port} within "
                                        f"{self.timeout:.0f} s") from None
                time.sleep(0.1)

    def stop(self):
        super().stop()
        self.proc = None
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None
