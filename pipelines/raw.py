"""Reading raw rows into polars for one day partition.

The hot path of every asset; it reads through `chargeops.frames` (ADBC, see there for why).
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta

import polars as pl

from chargeops.frames import connect, read_frame
from pipelines.analytics import frames
from pipelines.analytics.frames import RawWindow

REGISTER = "Energy.Active.Import.Register"
POWER = "Power.Active.Import"
METER_MEASURANDS = (REGISTER, POWER)


def day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(0), tzinfo=UTC)
    return start, start + timedelta(days=1)


def ts_literal(ts: datetime) -> str:
    """A UTC timestamptz literal for SQL built from our own datetimes (never user text)."""
    return f"'{ts.astimezone(UTC).isoformat()}'::timestamptz"


def _cols(schema: dict) -> str:
    return ", ".join(schema)


# the reference tables of the run in progress, while `same_reference()` is active
_reference_cache: contextvars.ContextVar[dict | None] = contextvars.ContextVar(
    "reference", default=None
)


@contextlib.contextmanager
def same_reference() -> Iterator[None]:
    """Read the reference tables (charge points, connectors, sites) once for every window read
    inside: a backfill's range of days reads them once per asset, not once per day; they change
    only when a charger or site is registered, which a run does not do."""
    token = _reference_cache.set({})
    try:
        yield
    finally:
        _reference_cache.reset(token)


def _reference(conn, url: str) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    cache = _reference_cache.get()
    if cache is not None and url in cache:
        return cache[url]
    tables = (
        read_frame(
            conn, f"SELECT {_cols(frames.CHARGE_POINTS)} FROM charge_point", frames.CHARGE_POINTS
        ),
        read_frame(
            conn,
            f"SELECT {_cols(frames.CONNECTORS)} FROM connector WHERE connector_id > 0",
            frames.CONNECTORS,
        ),
        read_frame(
            conn,
            "SELECT site_id, timezone, country, operating_hours::text AS operating_hours FROM site",
            frames.SITES,
        ),
    )
    if cache is not None:
        cache[url] = tables
    return tables


def read_window(
    url: str,
    day: date,
    *,
    meter: str | None = "day",
    statuses: bool = True,
    connections: bool = True,
    transactions: bool = True,
    measurands: tuple[str, ...] = METER_MEASURANDS,
) -> RawWindow:
    """Raw rows around one UTC day.

    meter: "day" = samples in [day - 1 h, day end + 1 h): register increments that span
    midnight are whole, power for states;
    "sessions" = every sample of the transactions that start in the day, whenever taken;
    None = no meter rows. `measurands` narrows the meter rows to what the caller uses (the
    meter read is most of every asset's time).
    """
    d0, d1 = day_bounds(day)
    lo, hi = ts_literal(d0), ts_literal(d1)
    measurands_sql = ", ".join(f"'{m}'" for m in measurands)
    with connect(url) as conn:
        tx = pl.DataFrame(schema=frames.TRANSACTIONS)
        tx_events = pl.DataFrame(schema=frames.TRANSACTION_EVENTS)
        if transactions:
            tx_events = read_frame(
                conn,
                f"""SELECT {_cols(frames.TRANSACTION_EVENTS)} FROM transaction_event
                    WHERE trigger_reason = 'EVDeparted'
                      AND ts >= {lo} - interval '7 days' AND ts < {hi} + interval '2 days'""",
                frames.TRANSACTION_EVENTS,
            )
            tx = read_frame(
                conn,
                f"""SELECT {_cols(frames.TRANSACTIONS)} FROM transaction
                    WHERE (start_ts >= {lo} - interval '7 days' AND start_ts < {hi}
                           AND (stop_ts IS NULL OR stop_ts >= {lo} - interval '1 day'))
                       OR (stop_ts >= {lo} - interval '1 day' AND stop_ts < {hi} + interval '1 day')""",
                frames.TRANSACTIONS,
            )
        mv = pl.DataFrame(schema=frames.METER)
        meter_cols = ", ".join(f"m.{c}" for c in frames.METER)
        if meter == "day":
            mv = read_frame(
                conn,
                f"""SELECT {meter_cols} FROM meter_value m
                    WHERE m.ts >= {lo} - interval '1 hour' AND m.ts < {hi} + interval '1 hour'
                      AND m.measurand IN ({measurands_sql}) AND m.phase = ''""",
                frames.METER,
            )
        elif meter == "sessions":
            mv = read_frame(
                conn,
                f"""SELECT {meter_cols} FROM transaction t JOIN meter_value m
                      ON m.charge_point_id = t.charge_point_id AND m.transaction_id = t.transaction_id
                    WHERE t.start_ts >= {lo} AND t.start_ts < {hi}
                      AND m.ts >= {lo} - interval '1 day'
                      AND m.measurand IN ({measurands_sql}) AND m.phase = ''""",
                frames.METER,
            )
        st = pl.DataFrame(schema=frames.STATUS)
        if statuses:
            st = read_frame(
                conn,
                f"""SELECT {_cols(frames.STATUS)} FROM status_event
                    WHERE ts >= {lo} - interval '1 day' AND ts < {hi} + interval '2 days'
                    UNION ALL
                    SELECT {_cols(frames.STATUS)} FROM (
                        SELECT DISTINCT ON (charge_point_id, evse_id, connector_id) *
                        FROM status_event WHERE ts < {lo} - interval '1 day'
                        ORDER BY charge_point_id, evse_id, connector_id, ts DESC) last""",
                frames.STATUS,
            )
        ce = pl.DataFrame(schema=frames.CONNECTION)
        if connections:
            events = "'connect', 'disconnect', 'boot', 'heartbeat'"
            ce = read_frame(
                conn,
                f"""SELECT {_cols(frames.CONNECTION)} FROM connection_event
                    WHERE ts >= {lo} - interval '1 day' AND ts < {hi} + interval '1 hour'
                      AND event IN ({events})
                    UNION ALL
                    SELECT {_cols(frames.CONNECTION)} FROM (
                        SELECT DISTINCT ON (charge_point_id) * FROM connection_event
                        WHERE ts < {lo} - interval '1 day' AND event IN ({events})
                        ORDER BY charge_point_id, ts DESC) last""",
                frames.CONNECTION,
            )
        cps, connectors, sites = _reference(conn, url)
        exclusions = read_frame(
            conn,
            f"""SELECT {_cols(frames.EXCLUSIONS)} FROM outage_exclusion
                WHERE starts_at < {hi} AND ends_at > {lo}""",
            frames.EXCLUSIONS,
        )
    return RawWindow(
        day_start=d0, day_end=d1, transactions=tx, meter=mv, status=st, connection=ce,
        charge_points=cps, connectors=connectors, sites=sites, exclusions=exclusions,
        transaction_events=tx_events,
    )  # fmt: skip
