"""Database URL resolution, connections and the migration runner.

Migrations are the numbered plain-SQL files in `sql/`, applied in order, each in its own
transaction, recorded in `schema_migrations` with a checksum. An advisory lock makes concurrent
`chargeops db upgrade` calls safe.
"""

from __future__ import annotations

import atexit
import hashlib
import logging
import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg_pool import ConnectionPool

from chargeops.settings import ConfigError, Settings

log = logging.getLogger(__name__)

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"
_MIGRATION_RE = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")
_LOCK_KEY = 0x43_48_41_52  # "CHAR"


# The tables the collector writes (and operators fill), for resets in the demo and the tests.
RAW_TABLES = (
    "meter_value", "status_event", "transaction_event", "connection_event", "ocpp_message",
    "transaction", "connector", "evse", "charge_point", "tariff", "site", "outage_exclusion",
    "spool_replay", "stripe_payment_intent", "stripe_charge", "stripe_refund", "stripe_dispute",
    "stripe_balance_transaction", "stripe_payout", "stripe_sync_state", "import_batch",
    "dashboard_delivery", "quarantine", "spool_dead_letter", "charger_message",
    "charger_variable", "transaction_event_digest", "import_flag", "import_payment",
)  # fmt: skip


def resolve_database_url(settings: Settings) -> str:
    """DATABASE_URL when set, otherwise the embedded server in the data folder."""
    if settings.database_url:
        return settings.database_url
    from chargeops.embedded import start_embedded

    return start_embedded(settings.data_dir)


def describe(url: str) -> str:
    """Where a URL points, without its password, for messages."""
    try:
        info = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "<unparseable DATABASE_URL>"
    host = info.get("host", "localhost")
    port = info.get("port", "5432")
    return f"{info.get('user', '')}@{host}:{port}/{info.get('dbname', '')}"


def connect(url: str, *, autocommit: bool = False, timeout: int = 10) -> psycopg.Connection:
    """A connection, or a ConfigError that says which server could not be reached and why."""
    try:
        return psycopg.connect(url, autocommit=autocommit, connect_timeout=timeout)
    except psycopg.OperationalError as e:
        lines = [line.strip() for line in str(e).splitlines() if line.strip()]
        reason = "; ".join(lines) or type(e).__name__
        raise ConfigError(f"cannot connect to PostgreSQL at {describe(url)}: {reason}") from e
    except psycopg.ProgrammingError as e:
        raise ConfigError(f"bad DATABASE_URL: {e}") from e


# this process's connection pools, per URL (`pooled`)
_pools: dict[tuple[int, str], ConnectionPool] = {}
_pools_lock = threading.Lock()


@contextmanager
def pooled(url: str) -> Iterator[psycopg.Connection]:
    """A connection from this process's pool for `url`, for the many short statements of the
    analytics' derived rows (a day's status rows, a partition replaced): opening one costs about
    10 ms, and a backfilled day asked for some 30 (bench/backfill.py). Not for raw data: its
    commits do not wait for the disk. Committed when the block ends, rolled
    back on an error; the pool checks a connection before handing it out (the server may have
    restarted). Keyed by process id too: a forked child never uses its parent's sockets."""
    key = (os.getpid(), url)
    with _pools_lock:
        pool = _pools.get(key)
        if pool is None:
            pool = _pools[key] = ConnectionPool(
                url,
                min_size=0,
                max_size=4,
                open=True,
                check=ConnectionPool.check_connection,
                # derived rows only: a commit waits for no fsync; WAL order still makes a
                # day's "ok" durable only after the rows it vouches for
                kwargs={"connect_timeout": 10, "options": "-c synchronous_commit=off"},
                num_workers=1,
                name=f"chargeops-{len(_pools)}",
            )
            atexit.register(pool.close)
    with pool.connection() as conn:
        yield conn


def with_database(url: str, name: str) -> str:
    """The same server as `url`, another database."""
    params = conninfo_to_dict(url)
    params["dbname"] = name
    return make_conninfo(**params)


def create_database(server_url: str, name: str, *, replace: bool = False) -> str:
    """Create database `name` on the server of `server_url` and return its URL."""
    with connect(server_url, autocommit=True) as conn:
        if replace:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return with_database(server_url, name)


def drop_database(server_url: str, name: str) -> None:
    with connect(server_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def migrations(sql_dir: Path = SQL_DIR) -> list[Migration]:
    found = []
    for path in sorted(sql_dir.glob("*.sql")):
        m = _MIGRATION_RE.match(path.name)
        if not m:
            raise ConfigError(f"migration file name not of the form NNN_name.sql: {path.name}")
        found.append(Migration(m.group(1), path.stem, path.read_text()))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise ConfigError(f"duplicate migration numbers in {sql_dir}")
    return found


# create_hypertable(..., by_range(...)) and the columnstore settings the migrations use
TIMESCALEDB_MIN = (2, 13)


@dataclass(frozen=True)
class TimescaleFacts:
    """What the server says about TimescaleDB for this database and role."""

    default_version: str | None  # None: not installed on the server
    installed_version: str | None  # None: not yet created in this database
    preloaded: bool | None  # None: this role may not read shared_preload_libraries
    needs_superuser: bool
    is_superuser: bool
    may_create: bool  # CREATE on the database (a trusted extension's requirement)


def timescale_facts(conn: psycopg.Connection) -> TimescaleFacts:
    row = conn.execute(
        """SELECT a.default_version, a.installed_version,
                  (SELECT 'timescaledb' = ANY(string_to_array(
                              replace(replace(setting, ' ', ''), '"', ''), ','))
                   FROM pg_settings WHERE name = 'shared_preload_libraries'),
                  coalesce(v.superuser AND NOT v.trusted, true),
                  r.rolsuper, has_database_privilege(current_database(), 'CREATE')
           FROM pg_roles r
           LEFT JOIN pg_available_extensions a ON a.name = 'timescaledb'
           LEFT JOIN pg_available_extension_versions v
                  ON v.name = a.name AND v.version = coalesce(a.installed_version, a.default_version)
           WHERE r.rolname = current_user"""
    ).fetchone()
    return TimescaleFacts(*row)  # the columns in the fields' order


def timescaledb_unusable(facts: TimescaleFacts) -> str | None:
    """Why TimescaleDB can't be used in this database, in one line, or None when it can: not
    installed on the server, installed but not preloaded (CREATE EXTENSION would fail with "must
    be preloaded"), older than the migrations need, or no permission to create it."""
    if facts.default_version is None and facts.installed_version is None:
        return "the timescaledb extension is not installed on this server"
    if facts.preloaded is False:
        return (
            "timescaledb is installed but not in shared_preload_libraries "
            "(add it in postgresql.conf and restart the server)"
        )
    version = facts.installed_version or facts.default_version or ""
    found = tuple(int(x) for x in re.findall(r"\d+", version)[:2])
    if found < TIMESCALEDB_MIN:
        wanted = ".".join(map(str, TIMESCALEDB_MIN))
        return f"timescaledb {version} is older than {wanted}, which the migrations need"
    may = facts.is_superuser or (not facts.needs_superuser and facts.may_create)
    if facts.installed_version is None and not may:
        return (
            "no permission: only a superuser may CREATE EXTENSION timescaledb here "
            "(create it once in this database as one, or set CHARGEOPS_TIMESCALEDB=off)"
        )
    return None


def _storage_wanted(conn: psycopg.Connection, timescaledb: str) -> str:
    """The mode the first migration is to apply: `off` where `auto` finds TimescaleDB unusable
    (logged, one line), an error naming why where it is `on`."""
    if timescaledb == "off":
        return "off"
    why = timescaledb_unusable(timescale_facts(conn))
    if why is None:
        return "on"
    if timescaledb == "on":
        raise ConfigError(f"CHARGEOPS_TIMESCALEDB=on but TimescaleDB can't be used: {why}")
    log.info("TimescaleDB not used (%s): native partitioning", why)
    return "off"


def upgrade(
    url: str,
    *,
    timescaledb: str = "auto",
    audit_retention_days: int | None = None,
    chunk_hours: int | None = None,
    sql_dir: Path = SQL_DIR,
) -> list[str]:
    """Apply pending migrations; return the names applied (empty when up to date). The storage
    mode is decided once, by the first migration, from `timescaledb` (auto, on, off).
    `audit_retention_days` (the CLI passes its setting; None leaves it as it is): days of
    `ocpp_message` kept, 0 all; `chunk_hours` likewise: the TimescaleDB chunk length of
    `meter_value` and `ocpp_message` from then on."""
    applied: list[str] = []
    with connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            conn.execute(
                """CREATE TABLE IF NOT EXISTS schema_migrations (
                       version text PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,
                       applied_at timestamptz NOT NULL DEFAULT now())"""
            )
            done = {
                v: c for v, c in conn.execute("SELECT version, checksum FROM schema_migrations")
            }
            found = migrations(sql_dir)
            pending = [m for m in found if m.version not in done]
            if pending and pending[0].version == "000":
                timescaledb = _storage_wanted(conn, timescaledb)
            for mig in found:
                if mig.version in done:
                    if done[mig.version] != mig.checksum:
                        log.warning("migration %s changed since it was applied", mig.name)
                    continue
                with conn.transaction():
                    conn.execute(
                        "SELECT set_config('chargeops.timescaledb', %s, true)", (timescaledb,)
                    )
                    conn.execute(mig.sql)
                    conn.execute(
                        "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                        (mig.version, mig.name, mig.checksum),
                    )
                log.info("applied migration %s", mig.name)
                applied.append(mig.name)
            if chunk_hours is not None:
                conn.execute("SELECT chargeops_chunk_hours(%s)", (chunk_hours,))
            if audit_retention_days is not None:
                (dropped,) = conn.execute(
                    "SELECT chargeops_audit_retention(%s)", (audit_retention_days,)
                ).fetchone()
                if dropped:
                    log.info(
                        "audit retention: %d monthly partitions of ocpp_message dropped", dropped
                    )
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    return applied


def storage_mode(conn: psycopg.Connection) -> str:
    """'timescaledb' or 'native', as decided and recorded by the first migration."""
    row = conn.execute("SELECT chargeops_storage()").fetchone()
    if row is None or row[0] is None:
        raise ConfigError("database not migrated: run `chargeops db upgrade`")
    return row[0]
