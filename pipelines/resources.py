"""Dagster resources."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import psycopg

from chargeops.db import connect, resolve_database_url
from chargeops.settings import Settings


class DatabaseResource(dg.ConfigurableResource):
    """The chargeops database; an empty URL means DATABASE_URL or the embedded default."""

    url: str = ""

    def resolved_url(self) -> str:
        return self.url or resolve_database_url(Settings.from_env())

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection]:
        with connect(self.resolved_url()) as conn:
            yield conn


class ReportsResource(dg.ConfigurableResource):
    """Where report files are written; empty means CHARGEOPS_REPORTS_DIR or `<data dir>/reports`."""

    directory: str = ""

    def path(self) -> Path:
        return Path(self.directory) if self.directory else Settings.from_env().reports_path
