"""Which daily figures exist: the one answer every report, the dashboard and the demo's summary
give when a day's asset failed or never ran.

Each daily asset records in `analytics.partition_status` whether its last materialisation of a
day succeeded and passed its blocking checks (`pipelines.status`). A report that must go out
anyway (a regulator's deadline, the morning dashboard) is built from what exists and names what
does not, from here: a banner in HTML and PDF, a companion note beside a CSV.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import psycopg

# every asset that records its days, in the order of the pipeline
DAILY_ASSETS = (
    "connector_states", "sessions", "utilisation", "uptime", "energy", "peak_usage",
    "expected_revenue", "emissions", "reconciliation", "maintenance_features",
    "maintenance_scores",
)  # fmt: skip
NOTE_SUFFIX = ".INCOMPLETE.txt"


@dataclass(frozen=True)
class Gap:
    """One asset's day that is not there: never materialised ('missing') or last run failed,
    itself or a blocking check of it ('failed')."""

    asset: str
    day: date
    status: str  # 'missing' | 'failed'
    detail: str = ""


def recorded_span(conn: psycopg.Connection) -> tuple[date | None, date | None]:
    """The first and last day any daily asset recorded: how far the computed data reaches."""
    row = conn.execute("SELECT min(day), max(day) FROM analytics.partition_status").fetchone()
    return (row[0], row[1]) if row else (None, None)


def gaps(
    url: str,
    first: date,
    last: date,
    assets: tuple[str, ...] | list[str],
    *,
    clip_to_recorded: bool = False,
) -> list[Gap]:
    """The (asset, day) pairs of `assets` over `first..last` that are not 'ok'. Days before
    anything was recorded are not gaps (the network had no data yet); with `clip_to_recorded`,
    days after the last recorded one are not either (a quarter still running)."""
    with psycopg.connect(url) as conn:
        lo, hi = recorded_span(conn)
        if lo is None:
            return [Gap(a, d, "missing") for d in _days(first, last) for a in assets]
        first = max(first, lo)
        if clip_to_recorded:
            last = min(last, hi)
        if last < first:
            return []
        rows = conn.execute(
            """SELECT asset, day, status, detail FROM analytics.partition_status
               WHERE day BETWEEN %s AND %s AND asset = ANY(%s)""",
            (first, last, list(assets)),
        ).fetchall()
    known = {(a, d): (s, detail) for a, d, s, detail in rows}
    out = []
    for d in _days(first, last):
        for a in assets:
            status, detail = known.get((a, d), ("missing", ""))
            if status != "ok":
                out.append(Gap(a, d, status, detail))
    return out


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def day_ranges(days: list[date]) -> str:
    """`2026-11-01..2026-11-03, 2026-11-07`: consecutive days joined."""
    days = sorted(set(days))
    parts: list[str] = []
    i = 0
    while i < len(days):
        j = i
        while j + 1 < len(days) and days[j + 1] == days[j] + timedelta(days=1):
            j += 1
        parts.append(str(days[i]) if i == j else f"{days[i]}..{days[j]}")
        i = j + 1
    return ", ".join(parts)


def lines(found: list[Gap]) -> list[str]:
    """One line per asset: its missing and failed days, and why where known."""
    out = []
    for asset in dict.fromkeys(g.asset for g in found):
        mine = [g for g in found if g.asset == asset]
        failed = [g for g in mine if g.status == "failed"]
        missing = [g for g in mine if g.status == "missing"]
        parts = []
        if failed:
            why = "; ".join(dict.fromkeys(g.detail for g in failed if g.detail))
            parts.append(
                f"failed on {day_ranges([g.day for g in failed])}" + (f" ({why})" if why else "")
            )
        if missing:
            parts.append(f"not computed for {day_ranges([g.day for g in missing])}")
        out.append(f"{asset}: " + ", ".join(parts))
    return out


def missing_days(found: list[Gap]) -> list[date]:
    return sorted({g.day for g in found})


def note(found: list[Gap], what: str) -> str:
    """The companion note of a file built on incomplete figures."""
    head = (
        f"{what} was built from incomplete figures: the days below are missing from it or "
        "only partly in it. Re-run the named assets for those days, then this file."
    )
    return head + "\n\n" + "\n".join(f"- {line}" for line in lines(found)) + "\n"
