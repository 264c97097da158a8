"""The results store: one SQLite file per sweep, one row per instance.

Layout (schema version :data:`SCHEMA_VERSION`, recorded in the file header as
``PRAGMA user_version``; ``PRAGMA application_id`` marks the file as linfa's)::

    sweep(key TEXT PRIMARY KEY, value TEXT)          -- target, config, seed, n_instances, ...
    instances(idx INTEGER PRIMARY KEY, status, holds, margin, size, params, error, replay, instance BLOB)
    metrics(idx, name, value REAL, PRIMARY KEY (idx, name))

Every chunk of results is written in one transaction, so a process killed at any
moment leaves the file holding whole chunks only; ``idx`` is the primary key, so
an instance is recorded at most once. The file is in WAL mode: while a sweep
runs (or after it was killed) a ``PATH-wal`` file sits beside it and holds the
latest chunks until the next open folds them in.

Opening a file that is not an SQLite database, an SQLite database that is not
a linfa sweep, a damaged one, one of another schema version (version 2 added
the status ``"inconclusive"``), or the results of a
different sweep (another target, configuration or seed) raises
:class:`StoreError` naming the path and what was found; such a file is never
modified.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from linfa._validate import output_parent_problem
from linfa.sweep.targets import STATUSES, Record

__all__ = ["APPLICATION_ID", "SCHEMA_VERSION", "ResultStore", "StoreError"]

#: Schema version written to new stores; stores of another version are refused.
SCHEMA_VERSION = 2
#: ``PRAGMA application_id`` of linfa sweep stores (ASCII "lnfs").
APPLICATION_ID = 0x6C6E6673
_MAGIC = b"SQLite format 3\x00"

_SCHEMA = """
CREATE TABLE sweep (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE instances (
    idx INTEGER PRIMARY KEY,
    status TEXT NOT NULL CHECK (status IN ('ok', 'fail', 'inconclusive', 'error')),
    holds INTEGER,
    margin REAL,
    size INTEGER,
    params TEXT NOT NULL DEFAULT '{}',
    error TEXT,
    replay TEXT,
    instance BLOB
);
CREATE INDEX instances_status ON instances (status);
CREATE TABLE metrics (
    idx INTEGER NOT NULL REFERENCES instances (idx),
    name TEXT NOT NULL,
    value REAL,
    PRIMARY KEY (idx, name)
) WITHOUT ROWID;
"""


class StoreError(Exception):
    """A results file that cannot be used: foreign, damaged, newer, or another sweep's."""


def _identity_rows(identity: Mapping[str, Any]) -> dict[str, str]:
    """The ``sweep`` rows that identify a sweep: target, config and seed."""
    return {
        "target": str(identity["target"]),
        "config": json.dumps(identity.get("config", {}), sort_keys=True),
        "seed": str(int(identity["seed"])),
    }


def _float_or_none(x: float | None) -> float | None:
    # SQLite stores NaN as NULL; keep None for "no value" and read NULL back as NaN for metrics.
    return None if x is None or math.isnan(x) else x


class ResultStore:
    """A sweep's results on disk (use :meth:`open`, or :meth:`open` in read-only mode).

    Parameters
    ----------
    path : path-like
    conn : sqlite3.Connection
    meta : dict of str to str
        The ``sweep`` table.
    """

    def __init__(self, path: Path, conn: sqlite3.Connection, meta: dict[str, str]) -> None:
        self.path = path
        self._conn = conn
        self.meta = meta
        self._lock: Any = None
        self._created_wal = False  # a read-only open that created PATH-wal / PATH-shm (see close)

    # ------------------------------------------------------------ opening
    @classmethod
    def open(cls, path: str | os.PathLike[str], *, identity: Mapping[str, Any] | None = None,
             readonly: bool = False) -> ResultStore:
        """Open (or, with ``identity`` and not ``readonly``, create) a results store.

        Parameters
        ----------
        path : path-like
            The results file.
        identity : mapping, optional
            ``{"target": id, "config": {...}, "seed": S}`` of the sweep about to
            run. A new file is initialised with it; an existing file must hold
            the same sweep.
        readonly : bool
            Open for reading only (for summaries); the file must exist.

        Raises
        ------
        StoreError
            If the file is not a linfa results store, is damaged, has another
            schema version, or holds a different sweep.
        """
        p = Path(path)
        exists = p.exists() and p.stat().st_size > 0
        if p.exists() and p.is_dir():
            raise StoreError(f"{p}: is a directory, expected a linfa sweep results file")
        if readonly and not exists:
            raise StoreError(f"{p}: no such results file")
        problem = output_parent_problem(p)
        if problem is not None:
            raise StoreError(problem)
        if exists:
            with open(p, "rb") as fh:
                head = fh.read(len(_MAGIC))
            if head != _MAGIC:
                raise StoreError(
                    f"{p}: not a linfa sweep results file (not an SQLite database: it starts with {head[:8]!r}); "
                    "refusing to touch it: choose another output path"
                )
        elif identity is None:
            raise StoreError(f"{p}: no such results file")
        if not readonly and not os.access(p.parent, os.W_OK):
            raise StoreError(f"{p}: cannot write in the directory {p.parent} (permission denied)")
        lock = None
        try:
            had_wal = True
            if readonly:
                had_wal = any(Path(f"{p}{x}").exists() for x in _WAL_FILES)
                conn = sqlite3.connect(f"{p.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None,
                                       check_same_thread=False)
            else:
                conn = sqlite3.connect(p, isolation_level=None, timeout=60.0, check_same_thread=False)
                lock = _writer_lock(p, conn)
            store = cls._init(p, conn, exists, identity, readonly)
        except sqlite3.DatabaseError as exc:
            _release(lock)
            raise StoreError(f"{p}: damaged or unreadable SQLite file ({exc}); it was left as it is") from None
        except BaseException:
            _release(lock)
            raise
        store._lock = lock
        store._created_wal = readonly and not had_wal and os.access(p.parent, os.W_OK)
        return store

    @classmethod
    def _init(cls, p: Path, conn: sqlite3.Connection, exists: bool, identity: Mapping[str, Any] | None,
              readonly: bool) -> ResultStore:
        try:
            # one read transaction: a store being created by another process is seen
            # either before its creation commits or after, never half-way
            conn.execute("BEGIN")
            try:
                app = conn.execute("PRAGMA application_id").fetchone()[0]
                tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            finally:
                conn.execute("COMMIT")
            if app != APPLICATION_ID:
                if tables or readonly or identity is None:
                    raise StoreError(
                        f"{p}: an SQLite database that is not a linfa sweep results file "
                        f"(application_id {app:#x}, tables {sorted(tables)}); refusing to touch it: "
                        "choose another output path"
                    )
                if not cls._create(conn, identity):  # another process created it first: open theirs
                    return cls._init(p, conn, True, identity, readonly)
            else:
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                if version != SCHEMA_VERSION:
                    newer = "a newer" if version > SCHEMA_VERSION else "an older"
                    raise StoreError(
                        f"{p}: a linfa sweep results file of schema version {version}, written by {newer} linfa; "
                        f"this linfa reads version {SCHEMA_VERSION}; it was left as it is"
                    )
                check = conn.execute("PRAGMA quick_check").fetchone()[0]
                if check != "ok":
                    raise StoreError(f"{p}: damaged linfa sweep results file (sqlite quick_check: {check}); "
                                     "it was left as it is")
                _check_schema(p, conn)
            meta = dict(conn.execute("SELECT key, value FROM sweep").fetchall())
            if not readonly:
                _enable_wal(conn)
                conn.execute("PRAGMA synchronous = NORMAL")
        except BaseException:
            conn.close()
            raise
        store = cls(p, conn, meta)
        if identity is not None:
            try:
                store._check_identity(identity)
            except BaseException:
                conn.close()
                raise
        return store

    @staticmethod
    def _create(conn: sqlite3.Connection, identity: Mapping[str, Any]) -> bool:
        """Create the schema in an empty file; False (nothing done) if another process got there first.

        The emptiness is checked again inside the same ``BEGIN IMMEDIATE`` that
        creates the tables, so two sweeps started at once cannot both create them.
        """
        import linfa

        conn.execute("BEGIN IMMEDIATE")
        app = conn.execute("PRAGMA application_id").fetchone()[0]
        tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        if app or tables:
            conn.execute("ROLLBACK")
            return False
        try:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            rows = {
                "format": "linfa.sweep",
                **_identity_rows(identity),
                "n_instances": "0",
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "linfa_version": linfa.__version__,
                "numpy_version": np.__version__,
            }
            conn.executemany("INSERT INTO sweep (key, value) VALUES (?, ?)", rows.items())
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return True

    def _check_identity(self, identity: Mapping[str, Any]) -> None:
        want = _identity_rows(identity)
        diff = [k for k, v in want.items() if self.meta.get(k) != v]
        if diff:
            have = ", ".join(f"{k} {self.meta.get(k)!r}" for k in diff)
            asked = ", ".join(f"{k} {want[k]!r}" for k in diff)
            raise StoreError(
                f"{self.path}: holds the results of a different sweep ({have}), not of this one ({asked}); "
                "it was left as it is: choose another output path"
            )
        import linfa

        # Resuming must not mix results of two versions: bit-for-bit equality is only promised within one.
        versions = {"linfa_version": linfa.__version__, "numpy_version": np.__version__}
        changed = [k for k, v in versions.items() if k in self.meta and self.meta[k] != v]
        if changed:
            was = ", ".join(f"{k.split('_')[0]} {self.meta[k]}" for k in changed)
            now = ", ".join(f"{k.split('_')[0]} {versions[k]}" for k in changed)
            raise StoreError(
                f"{self.path}: was written with {was}, this is {now}; resuming would mix results that may differ "
                "in the last bits. It was left as it is: resume with the old versions, or choose another output path"
            )

    # ------------------------------------------------------------- access
    def close(self) -> None:
        """Close the file (folding the write-ahead log into it) and let another sweep write to it.

        A read-only store that made SQLite create the ``-wal`` and ``-shm`` files beside the
        results (a reader of a write-ahead-logged file needs them, but may not delete them)
        removes them again through a momentary read-write connection, whose close SQLite
        turns into a checkpoint and the deletion of both, unless another connection (a
        running sweep) still uses them. Nothing is written to the results.
        """
        self._conn.close()
        _release(self._lock)  # after SQLite has closed its own descriptors
        self._lock = None
        if self._created_wal:
            self._created_wal = False
            _tidy_wal(self.path)

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def target(self) -> str:
        """Id of the swept target."""
        return self.meta.get("target", "")

    @property
    def seed(self) -> int:
        """The sweep's seed."""
        return int(self.meta.get("seed", "0"))

    @property
    def config(self) -> dict[str, Any]:
        """The target's configuration."""
        out: dict[str, Any] = json.loads(self.meta.get("config", "{}"))
        return out

    @property
    def n_instances(self) -> int:
        """Largest number of instances asked for so far."""
        return int(self.meta.get("n_instances", "0"))

    def request(self, n_instances: int, chunk_size: int) -> None:
        """Record that instances ``0..n_instances-1`` are asked for (the count only grows)."""
        n = max(self.n_instances, int(n_instances))
        with self._transaction():
            self._conn.executemany("INSERT OR REPLACE INTO sweep (key, value) VALUES (?, ?)",
                                   [("n_instances", str(n)), ("chunk_size", str(int(chunk_size)))])
        self.meta["n_instances"] = str(n)
        self.meta["chunk_size"] = str(int(chunk_size))

    def _transaction(self) -> _Transaction:
        return _Transaction(self._conn)

    def recorded(self, below: int | None = None, status: str | None = None) -> np.ndarray:
        """Sorted indices already recorded (those ``< below`` and of ``status``, if given)."""
        where: list[str] = []
        args: list[Any] = []
        if below is not None:
            where.append("idx < ?")
            args.append(int(below))
        if status is not None:
            where.append("status = ?")
            args.append(status)
        sql = "SELECT idx FROM instances" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY idx"
        rows = self._conn.execute(sql, tuple(args)).fetchall()
        return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))

    def missing(self, n_instances: int) -> list[int]:
        """Indices in ``range(n_instances)`` not yet recorded, in order."""
        have = self.recorded(below=n_instances)
        mask = np.ones(int(n_instances), dtype=bool)
        mask[have] = False
        return [int(i) for i in np.flatnonzero(mask)]

    def write(self, records: Iterable[Record]) -> int:
        """Write records in one transaction; an index already recorded is kept as it was.

        Returns
        -------
        int
            How many records were new.
        """
        new = 0
        with self._transaction():
            for r in records:
                cur = self._conn.execute(
                    "INSERT OR IGNORE INTO instances (idx, status, holds, margin, size, params, error, replay, "
                    "instance) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (r.index, r.status, None if r.holds is None else int(r.holds), _float_or_none(r.margin),
                     r.size, json.dumps(dict(r.params), sort_keys=True), r.error, r.replay, r.instance),
                )
                if cur.rowcount:
                    new += 1
                    self._conn.executemany(
                        "INSERT INTO metrics (idx, name, value) VALUES (?, ?, ?)",
                        [(r.index, k, _float_or_none(v)) for k, v in r.metrics.items()],
                    )
        return new

    def count(self, status: str | None = None) -> int:
        """Number of recorded instances (of one status if given)."""
        if status is None:
            return int(self._conn.execute("SELECT count(*) FROM instances").fetchone()[0])
        return int(self._conn.execute("SELECT count(*) FROM instances WHERE status = ?", (status,)).fetchone()[0])

    def counts(self) -> dict[str, int]:
        """Recorded instances per status (every status present, possibly 0)."""
        out = dict.fromkeys(STATUSES, 0)
        for status, n in self._conn.execute("SELECT status, count(*) FROM instances GROUP BY status"):
            out[status] = int(n)
        return out

    def record(self, index: int) -> Record:
        """The stored record of instance ``index`` (``KeyError`` if not recorded)."""
        rows = list(self._records("WHERE idx = ?", (int(index),)))
        if not rows:
            raise KeyError(f"index: instance {index} is not recorded in {self.path}")
        return rows[0]

    def records(self, status: str | None = None) -> Iterator[Record]:
        """All stored records in index order (of one status if given)."""
        if status is None:
            return self._records("", ())
        return self._records("WHERE status = ?", (status,))

    def _records(self, where: str, args: tuple[Any, ...]) -> Iterator[Record]:
        cur = self._conn.execute(
            "SELECT idx, status, holds, margin, size, params, error, replay, instance FROM instances "
            f"{where} ORDER BY idx", args)
        rows = cur.fetchall()
        by_idx: dict[int, dict[str, float]] = {}
        for idx, name, value in self._conn.execute(
                f"SELECT idx, name, value FROM metrics WHERE idx IN (SELECT idx FROM instances {where}) "
                "ORDER BY idx, name", args):
            by_idx.setdefault(idx, {})[name] = math.nan if value is None else float(value)
        for idx, status, holds, margin, size, params, error, replay, blob in rows:
            metrics = by_idx.get(idx, {})
            yield Record(index=idx, status=status, holds=None if holds is None else bool(holds), margin=margin,
                         metrics=metrics, params=json.loads(params), size=size,
                         instance=None if blob is None else bytes(blob), error=error, replay=replay)

    def column(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """``(indices, values)`` of the margin (``name="margin"``) or a metric, NaN for missing values."""
        if name == "margin":
            rows = self._conn.execute("SELECT idx, margin FROM instances WHERE margin IS NOT NULL ORDER BY idx")
        else:
            rows = self._conn.execute("SELECT idx, value FROM metrics WHERE name = ? ORDER BY idx", (name,))
        data = rows.fetchall()
        idx = np.array([r[0] for r in data], dtype=np.int64)
        val = np.array([np.nan if r[1] is None else r[1] for r in data], dtype=float)
        return idx, val

    def metric_columns(self) -> dict[str, np.ndarray]:
        """Every metric's values in index order (NaN for missing values), by name in name order."""
        cols: dict[str, list[float]] = {}
        for name, value in self._conn.execute("SELECT name, value FROM metrics ORDER BY name, idx"):
            cols.setdefault(name, []).append(np.nan if value is None else value)
        return {name: np.array(vals, dtype=float) for name, vals in cols.items()}

    def metric_names(self) -> list[str]:
        """Names of the recorded metrics."""
        return [r[0] for r in self._conn.execute("SELECT DISTINCT name FROM metrics ORDER BY name")]

    def first(self, sql_where: str, order: str) -> Record | None:
        """The first record matching a fixed ``WHERE`` clause in a fixed order (for summaries)."""
        row = self._conn.execute(f"SELECT idx FROM instances WHERE {sql_where} ORDER BY {order} LIMIT 1").fetchone()
        return None if row is None else self.record(row[0])


_TABLES = {
    "sweep": ["key", "value"],
    "instances": ["idx", "status", "holds", "margin", "size", "params", "error", "replay", "instance"],
    "metrics": ["idx", "name", "value"],
}


def _check_schema(p: Path, conn: sqlite3.Connection) -> None:
    """Raise :class:`StoreError` unless every table of the schema is there with its columns (nothing written)."""
    have = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    missing = [t for t in _TABLES if t not in have]
    if missing:
        raise StoreError(f"{p}: a linfa sweep results file without its table(s) {missing} (damaged or edited "
                         "by hand); it was left as it is: choose another output path")
    for table, columns in _TABLES.items():
        got = [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]
        if got != columns:
            raise StoreError(f"{p}: table {table!r} has columns {got}, expected {columns} (damaged or edited by "
                             "hand); it was left as it is: choose another output path")


def _writer_lock(p: Path, conn: sqlite3.Connection) -> Any:
    """Hold an exclusive ``flock`` on the results file while this process writes to it.

    A second sweep on the same file (same or another target) is refused at once
    instead of running the same instances again; a summary (read-only) is not
    affected. The lock goes with the process, even when it is killed.
    Where ``fcntl`` is missing (Windows) there is no lock: run one sweep per file.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        return None
    conn.execute("PRAGMA schema_version").fetchone()  # the file exists now (SQLite creates it on first use)
    fd = os.open(p, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        conn.close()
        raise StoreError(f"{p}: another linfa sweep is writing to this file right now; wait for it to finish "
                         "(running the same command afterwards resumes or confirms it), or choose another "
                         "output path") from None
    return fd


#: The files SQLite keeps beside a write-ahead-logged database while it is open.
_WAL_FILES = ("-wal", "-shm")


def _tidy_wal(p: Path) -> None:
    """Let SQLite remove the ``-wal``/``-shm`` files of ``p`` if no connection uses them.

    The last connection to close a write-ahead-logged database checkpoints it and deletes
    both files; a read-only connection cannot, so a momentary read-write one (which writes
    nothing of its own) does. A busy or unwritable file is left as it is.
    """
    try:
        conn = sqlite3.connect(p, isolation_level=None, timeout=0.1)
        try:
            conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
        finally:
            conn.close()
    except sqlite3.Error:
        pass


def _enable_wal(conn: sqlite3.Connection, timeout: float = 60.0) -> None:
    """Switch the file to write-ahead logging (a persistent property of the file).

    SQLite refuses a journal-mode change at once ("database is locked", without
    calling the busy handler) while another connection holds a lock, as happens
    when several sweeps open a new store together; retry for up to ``timeout`` s.
    """
    deadline = time.monotonic() + timeout
    delay = 0.005
    while True:
        try:
            if conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
                return
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(2 * delay, 0.1)


def _release(lock: Any) -> None:
    if lock is not None:
        os.close(lock)  # closing the descriptor releases the flock


class _Transaction:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self.conn.execute("ROLLBACK" if exc_type is not None else "COMMIT")
