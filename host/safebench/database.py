"""The rig's database: the device registry and every reading the ingest received, with its verdict.

One schema, two engines, chosen by URL:
- SQLite (the default, one file, no server): a path, or ``sqlite:///PATH``;
- PostgreSQL, for a fleet: ``postgresql://USER@HOST:PORT/NAME`` (psycopg 3).

SQL here is written once, with ``?`` placeholders; PostgreSQL's ``%s`` is put in on the way. A reading is
verified at most once per (kid, epoch, seq): a unique index over the verified rows decides, so two ingest
workers that both receive a reading store it verified once, and the second copy as a replay.
"""

import json
import sqlite3
import time
from pathlib import Path

from .errors import DatabaseError

SCHEMA_VERSION = 2  # 2: devices.board_id
DEFAULT_NAME = "safebench.db"  # in the state folder

_TABLES = (
    """CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)""",
    # the registry: a device by the kid of its certificate (SHA-256 of the DER); epoch and last_seq are the
    # last reading `read` accepted from it (its replay window, which no wipe of a board resets); board_id the
    # board its SIM is bound to (the MCU's unique ID, hex), NULL for an identity bound to none
    """CREATE TABLE IF NOT EXISTS devices (
        kid TEXT PRIMARY KEY,
        iccid TEXT NOT NULL,
        certificate {blob} NOT NULL,
        epoch BIGINT NOT NULL DEFAULT 0,
        last_seq BIGINT NOT NULL DEFAULT 0,
        registered_at DOUBLE PRECISION NOT NULL,
        revoked_at DOUBLE PRECISION,
        board_id TEXT)""",
    # every reading received, the rejected ones too; times are UTC seconds
    """CREATE TABLE IF NOT EXISTS readings (
        id {serial},
        stored_at DOUBLE PRECISION NOT NULL,
        topic TEXT NOT NULL,
        kid TEXT,
        iccid TEXT,
        epoch BIGINT,
        seq BIGINT,
        reading_time DOUBLE PRECISION,
        verdict TEXT NOT NULL,
        reason TEXT NOT NULL,
        measurements TEXT NOT NULL,
        dropped BIGINT NOT NULL DEFAULT 0,
        cose {blob} NOT NULL)""",
    """CREATE UNIQUE INDEX IF NOT EXISTS readings_verified_once ON readings (kid, epoch, seq)
        WHERE verdict = 'verified'""",
    """CREATE INDEX IF NOT EXISTS readings_by_device ON readings (kid, id)""",
    # what the rig last heard from each board of its link (the demonstrator records it from the board's answers)
    """CREATE TABLE IF NOT EXISTS links (
        iccid TEXT PRIMARY KEY,
        kid TEXT,
        tls TEXT,
        queued BIGINT NOT NULL DEFAULT 0,
        sim TEXT,
        network TEXT,
        last_error TEXT,
        updated_at DOUBLE PRECISION NOT NULL)""",
)
LINK_FIELDS = ("kid", "tls", "queued", "sim", "network", "last_error")
_DIALECTS = {"sqlite": {"blob": "BLOB", "serial": "INTEGER PRIMARY KEY AUTOINCREMENT"},
             "postgresql": {"blob": "BYTEA", "serial": "BIGSERIAL PRIMARY KEY"}}
_INSERT_READING = ("INSERT INTO readings (stored_at, topic, kid, iccid, epoch, seq, reading_time, verdict, reason, "
                   "measurements, dropped, cose) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
_VERIFIED_ONCE = " ON CONFLICT (kid, epoch, seq) WHERE verdict = 'verified' DO NOTHING RETURNING id"


def sqlite_url(path) -> str:
    return f"sqlite:///{Path(path).resolve()}"


def open_database(url) -> "Database":
    """The database at `url` (see the module's words), its schema made or brought up to date."""
    url = str(url)
    if url.startswith(("postgresql://", "postgres://")):
        return _PostgreSQL(url)
    if "://" in url and not url.startswith("sqlite://"):
        raise DatabaseError(f"{url.split('://')[0]}: not a database this rig knows: give a file path (SQLite), "
                            "sqlite:///PATH or postgresql://USER@HOST:PORT/NAME")
    return _SQLite(url.removeprefix("sqlite://"))


class Database:
    """A connection to the rig's database. Each method is one transaction; `Database` is a context manager that
    closes it. Errors of the engine come out as DatabaseError, with the URL."""

    dialect = ""

    def __init__(self, url, connection, target):
        self.url, self._db, self._target = url, connection, target
        try:
            self._create()
        except Exception:
            self.close()
            raise

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self._db.close()

    def another(self) -> "Database":
        """A connection of its own to the same database, as another worker has."""
        return open_database(self._target)

    def _sql(self, sql):
        return sql

    def _run(self, work):
        """`work(cursor)` in one transaction, committed; an engine error rolled back and said in one line."""
        try:
            cur = self._db.cursor()
            try:
                result = work(cur)
            finally:
                cur.close()
            self._db.commit()
            return result
        except self._errors as e:
            try:
                self._db.rollback()
            except self._errors:
                pass
            raise DatabaseError(f"the database {self.url}: {str(e).strip().splitlines()[0]}") from None

    def _exec(self, cur, sql, params=()):
        cur.execute(self._sql(sql), params)
        return cur

    def _create(self):
        def create(cur):
            for sql in _TABLES:
                self._exec(cur, sql.format(**_DIALECTS[self.dialect]))
            found = self._exec(cur, "SELECT version FROM schema_version").fetchone()
            if found is None:
                self._exec(cur, "INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))
            elif found[0] > SCHEMA_VERSION:
                raise DatabaseError(f"the database {self.url} has schema {found[0]}, newer than this safebench's "
                                    f"{SCHEMA_VERSION}: update safebench")
            elif found[0] < 2:  # an earlier safebench's: its devices are bound to no board yet
                self._exec(cur, "ALTER TABLE devices ADD COLUMN board_id TEXT")
                self._exec(cur, "UPDATE schema_version SET version = ?", (SCHEMA_VERSION,))
        self._run(create)

    # ---- the registry ----------------------------------------------------------------------------------

    def devices(self, kid=None) -> dict:
        """kid -> {iccid, certificate (hex DER), epoch, last_seq, revoked_at, board_id} of every registered device
        (of the one `kid` only, if given)."""
        sql = "SELECT kid, iccid, certificate, epoch, last_seq, revoked_at, board_id FROM devices"
        rows = self._run(lambda cur: self._exec(cur, *((sql,) if kid is None else (f"{sql} WHERE kid = ?", (kid,))))
                         .fetchall())
        return {kid: {"iccid": iccid, "certificate": bytes(cert).hex(), "epoch": epoch, "last_seq": last_seq,
                      "revoked_at": revoked, "board_id": board} for kid, iccid, cert, epoch, last_seq, revoked, board
                in rows}

    def add_devices(self, devices: dict):
        """Register (again) each kid -> {iccid, certificate (hex), epoch?, last_seq?}: a device registered
        before keeps the later of the two windows, and a revoked one stays revoked."""
        def add(cur):
            for kid, d in devices.items():
                epoch, last_seq = d.get("epoch", 0), d.get("last_seq", 0)
                had = self._exec(cur, "SELECT epoch, last_seq FROM devices WHERE kid = ?", (kid,)).fetchone()
                if had is None:
                    self._exec(cur, "INSERT INTO devices (kid, iccid, certificate, epoch, last_seq, registered_at) "
                                    "VALUES (?, ?, ?, ?, ?, ?)",
                               (kid, d["iccid"], bytes.fromhex(d["certificate"]), epoch, last_seq, time.time()))
                else:
                    epoch, last_seq = max(tuple(had), (epoch, last_seq))
                    self._exec(cur, "UPDATE devices SET iccid = ?, certificate = ?, epoch = ?, last_seq = ? "
                                    "WHERE kid = ?", (d["iccid"], bytes.fromhex(d["certificate"]), epoch, last_seq, kid))
        self._run(add)

    def save_windows(self, windows: dict):
        """kid -> (epoch, last_seq): the last reading `read` accepted from each device."""
        self._run(lambda cur: [self._exec(cur, "UPDATE devices SET epoch = ?, last_seq = ? WHERE kid = ?",
                                          (epoch, seq, kid)) for kid, (epoch, seq) in windows.items()])

    def bind(self, kid: str, board_id: str | None):
        """Record the board (its unique ID, hex) the device's SIM belongs to; None: bound to none."""
        self._run(lambda cur: self._exec(cur, "UPDATE devices SET board_id = ? WHERE kid = ?", (board_id, kid)))

    def revoke(self, kid: str) -> bool:
        """Mark the device revoked (from now on its readings are rejected); False if no such device."""
        def mark(cur):
            return self._exec(cur, "UPDATE devices SET revoked_at = COALESCE(revoked_at, ?) WHERE kid = ?",
                              (time.time(), kid)).rowcount > 0
        return self._run(mark)

    # ---- readings ----------------------------------------------------------------------------------------

    def store_readings(self, received) -> list:
        """Store each (topic, cose, verdict) in one transaction; the verdict of each row as stored. A verified
        reading whose (kid, epoch, seq) is stored verified already (another worker had it, or the broker sent it
        again) is stored as a replay, and its verdict says so."""
        def store(cur):
            stored = []
            for topic, cose, v in received:
                row = (time.time(), topic, v.kid or None, v.iccid or None, v.epoch, v.seq,
                       v.time.timestamp() if v.time else None)
                rest = (json.dumps(v.values), v.dropped, cose)
                if v.ok:
                    if self._exec(cur, _INSERT_READING + _VERIFIED_ONCE, row + (v.code, v.reason) + rest).fetchall():
                        stored.append(v)
                        continue
                    v = v.replayed(f"replay: seq {v.seq} of epoch {v.epoch} of this device is stored already")
                self._exec(cur, _INSERT_READING, row + (v.code, v.reason) + rest)
                stored.append(v)
            return stored
        return self._run(store)

    def readings(self, where="", params=(), last=None) -> list:
        """The stored readings as dicts, oldest first; `where` an SQL condition on the readings table; `last`:
        only the last so many of them."""
        cols = ("id", "stored_at", "topic", "kid", "iccid", "epoch", "seq", "reading_time", "verdict", "reason",
                "measurements", "dropped", "cose")
        sql = f"SELECT {', '.join(cols)} FROM readings" + (f" WHERE {where}" if where else "")
        sql += " ORDER BY id" if last is None else f" ORDER BY id DESC LIMIT {int(last)}"
        rows = self._run(lambda cur: self._exec(cur, sql, params).fetchall())
        rows = rows if last is None else rows[::-1]
        return [dict(zip(cols[:-3], r[:-3], strict=True), measurements=json.loads(r[-3]), dropped=r[-2], cose=bytes(r[-1]))
                for r in rows]

    # ---- links ----------------------------------------------------------------------------------------------

    def save_link(self, iccid: str, **fields):
        """Record what a board said of its link: any of LINK_FIELDS (kid, tls, queued, sim, network, last_error)."""
        unknown = set(fields) - set(LINK_FIELDS)
        if unknown:
            raise ValueError(f"not a link field: {', '.join(sorted(unknown))}")
        names = ["iccid", "updated_at", *fields]
        updates = ", ".join(f"{n} = excluded.{n}" for n in names[1:])
        sql = (f"INSERT INTO links ({', '.join(names)}) VALUES ({', '.join('?' * len(names))}) "
               f"ON CONFLICT (iccid) DO UPDATE SET {updates}")
        self._run(lambda cur: self._exec(cur, sql, (iccid, time.time(), *fields.values())))

    def links(self) -> dict:
        """iccid -> {kid, tls, queued, sim, network, last_error, updated_at} of every board heard of."""
        cols = (*LINK_FIELDS, "updated_at")
        rows = self._run(lambda cur: self._exec(cur, f"SELECT iccid, {', '.join(cols)} FROM links").fetchall())
        return {r[0]: dict(zip(cols, r[1:], strict=True)) for r in rows}


class _SQLite(Database):
    dialect = "sqlite"
    _errors = (sqlite3.Error,)

    def __init__(self, path):
        path = Path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(path, timeout=30, isolation_level="DEFERRED", check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")  # readers (the dashboard, a second worker) beside one writer
            db.execute("PRAGMA synchronous=NORMAL")  # WAL: a commit survives the process; a power cut keeps
            # the database whole, losing at most the last commits, which the broker delivers again (unacked)
        except (OSError, sqlite3.Error) as e:
            raise DatabaseError(f"cannot open the database {path}: {getattr(e, 'strerror', None) or e}") from None
        super().__init__(sqlite_url(path), db, path)
        self.path = path


class _PostgreSQL(Database):
    dialect = "postgresql"

    def __init__(self, url):
        try:
            import psycopg
        except ImportError:
            raise DatabaseError("PostgreSQL needs psycopg: pip install 'psycopg[binary]' (`make venv` has it)") from None
        self._errors = (psycopg.Error,)
        try:
            db = psycopg.connect(url, connect_timeout=10)
        except psycopg.Error as e:
            raise DatabaseError(f"cannot connect to the database {_without_password(url)}: "
                                f"{str(e).strip().splitlines()[0]}") from None
        super().__init__(_without_password(url), db, url)

    def _sql(self, sql):
        return sql.replace("%", "%%").replace("?", "%s")


def _without_password(url):
    """The URL as said in messages: no password."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@")))
