"""Dagster resources."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

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
