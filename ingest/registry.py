"""Registered charge points: the one place that writes `charge_point` rows for registration."""

from __future__ import annotations

import re

import psycopg

from ingest.auth import hash_password

# OCPP 2.0.1 identifierString, at most 48: the charging station identity of OCPP-J 2.0.1; 1.6J
# leaves the characters open (percent-encoded in the path), so the same rule serves it
CHARGE_POINT_ID = re.compile(r"^[A-Za-z0-9*\-_=:+|@.]{1,48}\Z")

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
            f"invalid charge point id {charge_point_id!r}: 1-48 characters of "
            "A-Z a-z 0-9 * - _ = : + | @ . (OCPP identifierString)"
        )
    return charge_point_id


def register_params(
    charge_point_id: str, password: str | None, *, site_id: str | None = None
) -> dict:
    return {
        "id": check_id(charge_point_id),
        "site_id": site_id,
        "password_hash": hash_password(password) if password else None,
        "auto": False,
        "set_password": True,
    }


def add_charge_point(
    conn: psycopg.Connection, charge_point_id: str, password: str | None, site_id: str | None = None
) -> None:
    """Register (or re-key) a charge point; a None password means it may connect without one."""
    conn.execute(REGISTER_SQL, register_params(charge_point_id, password, site_id=site_id))


SITE_SQL = """
INSERT INTO site (site_id, name, site_type, timezone, country, grid_region, operating_hours)
VALUES (%s, %s, %s, %s, %s, %s, %s::jsonb)
ON CONFLICT (site_id) DO UPDATE SET name = excluded.name, site_type = excluded.site_type,
    timezone = excluded.timezone, country = excluded.country,
    grid_region = excluded.grid_region, operating_hours = excluded.operating_hours
"""

TARIFF_SQL = """
INSERT INTO tariff (tariff_id, site_id, currency, energy_price_per_kwh, time_price_per_min,
                    idle_fee_per_min, idle_grace_min, session_fee, tax_rate, prices_include_tax)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (tariff_id) DO NOTHING
"""

CHARGE_POINT_SQL = """
INSERT INTO charge_point (charge_point_id, site_id, password_hash, vendor, model, serial_number,
                          firmware_version, ocpp_version, current_type, max_power_w, registered_at)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (charge_point_id) DO UPDATE SET site_id = excluded.site_id,
    registered_at = least(charge_point.registered_at, excluded.registered_at),
    current_type = excluded.current_type, max_power_w = excluded.max_power_w,
    password_hash = coalesce(excluded.password_hash, charge_point.password_hash)
"""


def register_fleet(conn: psycopg.Connection, fleet) -> None:
    """Sites, their tariffs and charge points of a simulator FleetConfig, as an operator would
    enter them before the chargers connect; commissioned (registered) at the fleet's start."""
    import json

    with conn.transaction():
        for site in fleet.sites:
            hours = json.dumps(site.operating_hours) if site.operating_hours is not None else None
            conn.execute(
                SITE_SQL,
                (site.site_id, site.name, site.site_type, site.timezone, site.country,
                 site.grid_region, hours),
            )  # fmt: skip
            t = site.tariff
            conn.execute(
                TARIFF_SQL,
                (f"{site.site_id}-default", site.site_id, t.currency, t.energy_price_per_kwh,
                 t.time_price_per_min, t.idle_fee_per_min, t.idle_grace_min, t.session_fee,
                 t.tax_rate, t.prices_include_tax),
            )  # fmt: skip
        for cp in fleet.charge_points:
            conn.execute(
                CHARGE_POINT_SQL,
                (check_id(cp.charge_point_id), cp.site_id,
                 hash_password(cp.password) if cp.password else None, cp.vendor, cp.model,
                 cp.serial_number, cp.firmware_version, cp.ocpp_version, cp.current_type,
                 cp.max_power_w, fleet.start),
            )  # fmt: skip


TARIFF_COLUMNS = (
    "tariff_id", "site_id", "charge_point_id", "currency", "energy_price_per_kwh",
    "time_price_per_min", "idle_fee_per_min", "idle_grace_min", "session_fee", "tax_rate",
    "prices_include_tax", "valid_from", "valid_to",
)  # fmt: skip


def set_tariff(conn: psycopg.Connection, tariff: dict) -> str | None:
    """Add an effective-dated tariff for a site or a charge point; the tariff it supersedes (same
    scope, still open, starting earlier) ends where the new one starts. Returns that tariff's id.
    Raises ValueError for bad input; nothing is written then."""
    site, cp = tariff.get("site_id"), tariff.get("charge_point_id")
    if (site is None) == (cp is None):
        raise ValueError("a tariff applies to exactly one of --site or --charge-point")
    currency = str(tariff.get("currency") or "")
    if len(currency) != 3 or not currency.isalpha():
        raise ValueError(f"currency {currency!r} is not an ISO 4217 code")
    tariff["currency"] = currency.upper()
    for key in ("energy_price_per_kwh", "time_price_per_min", "idle_fee_per_min", "session_fee"):
        if tariff.get(key, 0) < 0:
            raise ValueError(f"{key} must not be negative")
    if not 0 <= tariff.get("tax_rate", 0) < 1:
        raise ValueError("tax rate is a fraction, e.g. 0.2 for 20 %")
    with conn.transaction():
        if (
            cp is not None
            and not conn.execute(
                "SELECT 1 FROM charge_point WHERE charge_point_id = %s", (cp,)
            ).fetchone()
        ):
            raise ValueError(f"unknown charge point {cp!r}")
        if conn.execute(
            "SELECT 1 FROM tariff WHERE tariff_id = %s", (tariff["tariff_id"],)
        ).fetchone():
            raise ValueError(
                f"tariff {tariff['tariff_id']!r} exists; tariffs are history: use a new id"
            )
        scope = "site_id = %s AND charge_point_id IS NULL" if cp is None else "charge_point_id = %s"
        row = conn.execute(
            f"""UPDATE tariff SET valid_to = %s
                WHERE {scope} AND valid_to IS NULL AND valid_from < %s
                RETURNING tariff_id""",
            (tariff["valid_from"], cp or site, tariff["valid_from"]),
        ).fetchone()
        values = {c: tariff.get(c) for c in TARIFF_COLUMNS}
        values["valid_to"] = None
        conn.execute(
            f"INSERT INTO tariff ({', '.join(TARIFF_COLUMNS)}) "
            f"VALUES ({', '.join(['%s'] * len(TARIFF_COLUMNS))})",
            tuple(values.values()),
        )
    return row[0] if row else None
