"""Registered charge points: the one place that writes `charge_point` rows for registration."""

from __future__ import annotations

import re

import psycopg

from ingest.auth import hash_password

CHARGE_POINT_ID = re.compile(r"^[A-Za-z0-9._:*+|@-]{1,48}$")

REGISTER_SQL = """
INSERT INTO charge_point (charge_point_id, site_id, password_hash, auto_registered)
VALUES (%(id)s, %(site_id)s, %(password_hash)s, %(auto)s)
ON CONFLICT (charge_point_id) DO UPDATE SET
    site_id = coalesce(excluded.site_id, charge_point.site_id),
    password_hash = CASE WHEN %(set_password)s THEN excluded.password_hash
                         ELSE charge_point.password_hash END
"""

LOOKUP_SQL = "SELECT password_hash FROM charge_point WHERE charge_point_id = %s"


def check_id(charge_point_id: str) -> str:
    if not CHARGE_POINT_ID.match(charge_point_id):
        raise ValueError(
            f"invalid charge point id {charge_point_id!r}: 1-48 characters of A-Z a-z 0-9 . _ - : * + | @"
        )
    return charge_point_id


def register_params(
    charge_point_id: str,
    password: str | None,
    *,
    site_id: str | None = None,
    auto: bool = False,
    set_password: bool = True,
) -> dict:
    return {
        "id": check_id(charge_point_id),
        "site_id": site_id,
        "password_hash": hash_password(password) if password else None,
        "auto": auto,
        "set_password": set_password,
    }


def add_charge_point(
    conn: psycopg.Connection, charge_point_id: str, password: str | None, site_id: str | None = None
) -> None:
    """Register (or re-key) a charge point; a None password means it may connect without one."""
    conn.execute(REGISTER_SQL, register_params(charge_point_id, password, site_id=site_id))
