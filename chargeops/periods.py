"""Reporting periods, parsed in one place: the CLI's `--period`/`--quarter`, the compliance and
EV-ChART reports and the quarterly Dagster partitions (keyed by their first day, `2026-07-01` is
`2026Q3`) all read them here, so a quarter means the same thing everywhere."""

from __future__ import annotations

import calendar
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

FORMS = "2026Q3, 2026, 2026-07, 2026-W47, 2026-11-24 or START..END (e.g. 2026-07-01..2026-09-30)"


@dataclass(frozen=True)
class Period:
    """Whole UTC days `start`..`end` (inclusive); `label` names the report folder."""

    label: str
    start: date
    end: date
    kind: str  # "quarter", "year", "month", "week" (ISO), "day" or "range"

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1


class _EndsBeforeStart(ValueError):
    """Kept apart from date()'s own ValueErrors, which get the period prefixed."""


def _quarter(y: int, q: int) -> Period:
    end_month = 3 * q
    end = date(y, end_month, calendar.monthrange(y, end_month)[1])
    return Period(f"{y}Q{q}", date(y, end_month - 2, 1), end, "quarter")


def parse_period(text: str) -> Period:
    """`2026Q3`, `2026`, `2026-07` or `START..END` (ISO dates, inclusive); a one-line ValueError
    for anything else."""
    t = text.strip()
    try:
        if m := re.fullmatch(r"(\d{4})[Qq]([1-4])", t):
            return _quarter(int(m[1]), int(m[2]))
        if re.fullmatch(r"\d{4}", t):
            y = int(t)
            return Period(t, date(y, 1, 1), date(y, 12, 31), "year")
        if m := re.fullmatch(r"(\d{4})-(\d{2})", t):
            y, mo = int(m[1]), int(m[2])
            return Period(t, date(y, mo, 1), date(y, mo, calendar.monthrange(y, mo)[1]), "month")
        if m := re.fullmatch(r"(\d{4})-?[Ww](\d{2})", t):
            return iso_week(date.fromisocalendar(int(m[1]), int(m[2]), 1))
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", t):
            return day_period(date.fromisoformat(t))
        if m := re.fullmatch(r"(\d{4}-\d{2}-\d{2})\.\.(\d{4}-\d{2}-\d{2})", t):
            start, end = date.fromisoformat(m[1]), date.fromisoformat(m[2])
            if end < start:
                raise _EndsBeforeStart(f"period {text!r} ends before it starts")
            return Period(f"{start}..{end}", start, end, "range")
    except _EndsBeforeStart as e:
        raise ValueError(str(e)) from None
    except ValueError as e:  # a month 13, a 30 February
        raise ValueError(f"period {text!r}: {e}") from None
    raise ValueError(f"period {text!r} is not {FORMS}")


def day_period(day: date) -> Period:
    return Period(day.isoformat(), day, day, "day")


def iso_week(day: date) -> Period:
    """The ISO week (Monday..Sunday) holding `day`, labelled `2026-W47`."""
    year, week, weekday = day.isocalendar()
    start = day - timedelta(days=weekday - 1)
    return Period(f"{year}-W{week:02d}", start, start + timedelta(days=6), "week")


def previous(period: Period) -> Period:
    """The period of the same kind and length just before `period` (what a dashboard compares
    with): the day, ISO week, month, quarter or year before, or a range of as many days."""
    before = period.start - timedelta(days=1)
    if period.kind == "day":
        return day_period(before)
    if period.kind == "week":
        return iso_week(before)
    if period.kind == "month":
        return parse_period(f"{before.year}-{before.month:02d}")
    if period.kind == "quarter":
        return _quarter(before.year, (before.month - 1) // 3 + 1)
    if period.kind == "year":
        return parse_period(str(before.year))
    start = period.start - timedelta(days=period.days)
    return Period(f"{start}..{before}", start, before, "range")


def quarter_key(label: str) -> str:
    """`2026Q3` -> `2026-07-01` (the quarterly partition key); a clear ValueError otherwise."""
    try:
        period = parse_period(label)
    except ValueError:
        period = None
    if period is None or period.kind != "quarter":
        raise ValueError(f"{label!r} is not a calendar quarter such as 2026Q3")
    return period.start.isoformat()


def quarter_label(key: str) -> str:
    """`2026-07-01` (or any day of the quarter) -> `2026Q3`."""
    d = date.fromisoformat(key)
    return _quarter(d.year, (d.month - 1) // 3 + 1).label


def quarter_start(day: date) -> date:
    """The first day of the calendar quarter holding `day` (a quarterly partition's key)."""
    return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)


PARTITIONS_START_ENV, PARTITIONS_START_DEFAULT = "CHARGEOPS_PARTITIONS_START", "2024-01-01"
# the first day of data this data folder holds, as the demo, `chargeops import`, `chargeops
# backfill` and the collector record it: `<CHARGEOPS_DATA_DIR>/partitions_start`, one ISO date
PARTITIONS_START_FILE = "partitions_start"


def _data_dir(env: Mapping[str, str]) -> Path:
    return Path(env["CHARGEOPS_DATA_DIR"]) if "CHARGEOPS_DATA_DIR" in env else Path(".data")


def recorded_start_path(env: Mapping[str, str] | None = None) -> Path:
    """Where the data folder (CHARGEOPS_DATA_DIR, as `Settings` reads it) records its first day."""
    import os

    return _data_dir(os.environ if env is None else env) / PARTITIONS_START_FILE


def recorded_start(env: Mapping[str, str] | None = None) -> date | None:
    """The first day of data recorded in the data folder, None when nothing is recorded."""
    path = recorded_start_path(env)
    try:
        raw = path.read_text().strip()
    except FileNotFoundError:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise ValueError(
            f"{path} holds {raw[:40]!r}, not an ISO date: correct or delete it"
        ) from None


def partitions_start(env: Mapping[str, str] | None = None) -> date:
    """The first day of the Dagster partitions: `CHARGEOPS_PARTITIONS_START` when set, else the
    first day of data recorded in the data folder (`record_data_start`), else 2024-01-01.

    Every process that loads the pipelines reads the same: the demo, the CLI and the code location
    `dagster dev` starts (in a process of its own) all see the same CHARGEOPS_DATA_DIR folder."""
    import os

    env = os.environ if env is None else env
    raw = env.get(PARTITIONS_START_ENV, "").strip()
    if not raw:
        return recorded_start(env) or date.fromisoformat(PARTITIONS_START_DEFAULT)
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise ValueError(f"{PARTITIONS_START_ENV}={raw!r} is not an ISO date") from None


def record_data_start(data_dir: Path, first: date, *, replace: bool = False) -> date:
    """Record that the data folder holds data from `first` on, so the partitions start there.

    The earlier of `first` and what is recorded is kept (an import of older history moves the
    start back; new data never moves it forward), unless `replace` (the demo, which has just
    cleared the raw tables). The file is replaced atomically; the recorded day is returned."""
    import os

    path = Path(data_dir) / PARTITIONS_START_FILE
    if not replace:
        known = recorded_start({"CHARGEOPS_DATA_DIR": str(data_dir)})
        if known is not None and known <= first:
            return known
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{PARTITIONS_START_FILE}.{os.getpid()}")
    tmp.write_text(first.isoformat() + "\n")
    os.replace(tmp, path)
    return first
