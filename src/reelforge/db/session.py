"""Connections and transactions, SQLite and PostgreSQL alike.

SQLite: WAL journal, a busy timeout, and ``BEGIN IMMEDIATE`` for every transaction so
writers queue for the lock instead of failing on a read-to-write upgrade. PostgreSQL:
``SELECT … FOR UPDATE`` where a row must be locked (``Database.lock``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from ..errors import Unavailable

MIGRATIONS = Path(__file__).parent / "migrations"
_MIGRATION_LOCK = 0x7265656C  # "reel": the PostgreSQL advisory lock held while migrating
_IDLE_TX_MS = 10_000  # no reelforge transaction waits on anything but the database itself


class Database:
    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self.engine = _make_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One transaction: committed on success, rolled back on any error.

        A lost connection becomes ``Unavailable`` (503) with a fix, never a bare 500.
        """
        try:
            with self._sessions.begin() as session:
                yield session
        except (OperationalError, DBAPIError) as exc:
            if _is_connection_error(exc):
                raise Unavailable("The database is not reachable right now.",
                                  fix="Retry in a few seconds; operators: check the database "
                                      "server and REELFORGE_DATABASE_URL.") from exc
            raise

    def lock(self, session: Session, model: type, key: Any) -> Any:
        """Load a row and lock it for the rest of the transaction."""
        stmt = select(model).where(model.id == key)
        if not self.is_sqlite:  # SQLite's BEGIN IMMEDIATE already serializes writers
            stmt = stmt.with_for_update()
        return session.execute(stmt).scalar_one_or_none()

    def ping(self) -> None:
        with self.session() as s:
            s.execute(text("SELECT 1"))

    def upgrade(self) -> None:
        """Apply every Alembic migration (idempotent)."""
        from alembic import command
        from alembic.config import Config

        if self.is_sqlite:
            db_path = self.url.split("///", 1)[-1]
            if db_path and db_path != ":memory:":
                Path(db_path).parent.mkdir(parents=True, exist_ok=True)
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        cfg.attributes["connection_url"] = self.url
        with self.engine.begin() as conn:
            if not self.is_sqlite:  # processes starting together migrate one at a time
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK})
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

    def dispose(self) -> None:
        self.engine.dispose()

    def describe(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)


def _make_engine(url: str) -> Engine:
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    if not url.startswith("sqlite"):
        connect_args = {}
        if "options=" not in url:
            # A process frozen mid-transaction (SIGSTOP, a VM pause) must not hold its row
            # locks for ever: the server ends such a session and the others carry on.
            connect_args["options"] = f"-c idle_in_transaction_session_timeout={_IDLE_TX_MS}"
        return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20,
                             connect_args=connect_args)
    db_path = url.split("///", 1)[-1]
    if db_path and db_path != ":memory:":
        Path(db_path).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30},
                           pool_size=20, max_overflow=40)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _is_connection_error(exc: DBAPIError) -> bool:
    if exc.connection_invalidated:
        return True
    msg = str(exc.orig).lower() if exc.orig is not None else str(exc).lower()
    return any(s in msg for s in ("connection", "could not connect", "server closed",
                                  "terminating", "shutting down", "the database system is"))
