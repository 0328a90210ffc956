"""EV-ChART (NEVI, 23 CFR 680.112) quarterly data-input files: Modules 2 (sessions), 3 (uptime)
and 4 (outages), built from the analytics tables, validated against the Joint Office's rules
(`reports.evchart_rules`) and only then written, with a manifest.

Identifiers: station_id = our site_id; charger_id = charge_point_id; port_id =
``{charge_point_id}-{evse_id}-{connector_id}`` (one port per connector, the granularity of our
uptime; an id longer than EV-ChART's 36 characters becomes ``p-`` + 34 hex digits of its SHA-256);
network_provider = ``CHARGEOPS_NETWORK_PROVIDER`` (default ``chargeops``). session_id = the OCPP
transaction id (unique per charger, so (station, port, session_id) is unique); an imported
session's longer id becomes ``s-`` + 34 hex digits of its SHA-256.

CSV injection: an id is what a charger or an import chose (OCPP allows `=`, `+`, `-`, `@`), so
text fields (station, port, charger, session ids, reasons, notes) are written through
`reports.csvsafe`: a cell starting with = + - @ tab or CR gets a leading `'`, text cells are
quoted. Validation runs on the cells as written, and `fit_id` counts the `'`, so a neutralised id
still fits 36 characters (or is shortened as any long id is).

Module 3 (uptime): three rows per port per quarter, one per month, each the trailing 12 months
ending at that month's end (UTC): ``uptime_reporting_start`` = the first instant of the window,
``uptime_reporting_end`` = its last second (``...T23:59:59Z``). 23 CFR 680.116(b):
uptime = (525,600 - (T_outage - T_excluded)) / 525,600 x 100, the fixed 525,600 minutes even when
the window holds a 29 February (the rule's constant), clamped to 0..100. T_outage counts every
outage minute (excluded ones included), T_excluded the operator exclusions and the minutes outside
operating hours, as `pipelines.analytics.uptime` splits them. ``uptime`` is left blank while the
station (site) has less than 12 months of data before the window's end, which EV-ChART allows in a
station's first year (validate_m3); total_outage and total_outage_excl are always filled.

Module 4 (outages): the day pieces of `analytics.outages` are merged back into one outage when
they touch (one ends where the next starts) and share the exclusion (excluded flag and reason);
pieces that differ in exclusion stay separate rows, so Module 4 adds up to Module 3's excluded
minutes. An outage belongs to the quarter in which it starts and carries its whole length (pieces
up to 92 days after the quarter are read). outage_id is the start truncated to the second; two
outages of a port starting in the same second are merged. Outages shorter than 0.005 minutes
(which round to 0.00, below EV-ChART's 0.01 minimum) are dropped and counted in the metadata.

Module 2 (sessions): sessions starting in the quarter with an end; energy in kWh and peak power in
kW with 2 decimals (peak falls back to the mean power, then 0, when no power was sampled).
session_error: ``none`` for a normal stop, else the OCPP stop reason; payment_method from the
OCPP id token type (see PAYMENT_BY_TOKEN_TYPE). Empty rows (only station/port/provider) for ports
without a session, without an outage (Module 4).

Module 5 (annual maintenance costs) needs cost data that the project does not hold: not written.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path

import polars as pl

from chargeops.frames import read_table
from chargeops.periods import quarter_key, quarter_label
from reports import csvsafe
from reports import evchart_rules as R
from reports.files import period_dir, write_manifest, write_text

MINUTES_PER_YEAR = 525_600  # 23 CFR 680.116(b)
PORT_KEY = ["charge_point_id", "evse_id", "connector_id"]
TS = pl.Datetime("us", "UTC")
PORTS = {  # the ports to report: every connector (> 0) with uptime data before the quarter's end
    "charge_point_id": pl.String, "evse_id": pl.Int32, "connector_id": pl.Int32,
    "site_id": pl.String, "first_day": pl.Date,
}  # fmt: skip
SESSIONS = {  # analytics.sessions of the quarter, with the transaction's stop reason and token type
    "charge_point_id": pl.String, "transaction_id": pl.String, "evse_id": pl.Int32,
    "connector_id": pl.Int32, "site_id": pl.String, "start_ts": TS, "end_ts": TS,
    "energy_wh": pl.Float64, "peak_power_w": pl.Float64, "mean_power_w": pl.Float64,
    "stop_reason": pl.String, "id_token_type": pl.String,
}  # fmt: skip
UPTIME = {  # analytics.uptime_daily rows (or monthly sums keyed by the month's first day)
    "day": pl.Date, "charge_point_id": pl.String, "evse_id": pl.Int32, "connector_id": pl.Int32,
    "outage_minutes": pl.Float64, "excluded_minutes": pl.Float64,
}  # fmt: skip
OUTAGES = {  # analytics.outages pieces
    "charge_point_id": pl.String, "evse_id": pl.Int32, "connector_id": pl.Int32,
    "site_id": pl.String, "start_ts": TS, "end_ts": TS, "duration_min": pl.Float64,
    "excluded": pl.Boolean, "exclusion_reason": pl.String,
}  # fmt: skip

NETWORK_PROVIDER_ENV = "CHARGEOPS_NETWORK_PROVIDER"
DEFAULT_NETWORK_PROVIDER = "chargeops"
OUTAGE_LOOKAHEAD_DAYS = 92
# OCPP stop reasons (1.6 Reason, 2.0.1 ReasonEnumType) that end a session normally
NORMAL_STOPS = frozenset(
    {"Local", "Remote", "EVDisconnected", "DeAuthorized", "UnlockCommand", "StoppedByEV",
     "EnergyLimitReached", "SOCLimitReached", "TimeLimitReached", "CostLimitReached",
     "MasterPass", "LocalOutOfCredit"}
)  # fmt: skip
# OCPP 2.0.1 IdTokenEnumType -> payment_method (EV-ChART lists no values; ours, documented)
PAYMENT_BY_TOKEN_TYPE = {
    "ISO14443": "rfid_card", "ISO15693": "rfid_card", "eMAID": "plug_and_charge",
    "Central": "app", "MacAddress": "autocharge", "NoAuthorization": "free",
}  # fmt: skip


# -- small formatting helpers ---------------------------------------------------------------------
def fit_id(plain: str, prefix: str) -> str:
    """`plain` if it fits EV-ChART's 36 characters as written (a formula-like id gets the `'` of
    `reports.csvsafe`), else `prefix` + a SHA-256 prefix of it: stable, so a re-run or the next
    quarter names the same port or session the same way."""
    if len(csvsafe.neutralise(plain)) <= 36:
        return plain
    return prefix + hashlib.sha256(plain.encode()).hexdigest()[: 36 - len(prefix)]


def port_id(charge_point_id: str, evse_id: int, connector_id: int) -> str:
    """The stable EV-ChART port id of a connector (<= 36 characters)."""
    return fit_id(f"{charge_point_id}-{evse_id}-{connector_id}", "p-")


def fmt_ts(ts: datetime | None) -> str:
    """`2024-01-01T00:00:00Z` (UTC, whole seconds, truncated)."""
    if ts is None:
        return ""
    if ts.tzinfo is not None:
        ts = ts.astimezone(UTC)
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ")


def fmt_dec(value: float | None, scale: int = 2) -> str:
    """Exactly `scale` decimals, half away from zero on the shortest decimal form of the float."""
    if value is None:
        return ""
    q = Decimal(1).scaleb(-scale)
    return str(Decimal(repr(float(value))).quantize(q, rounding=ROUND_HALF_UP))


def cfr_uptime_pct(outage_min: float, excluded_min: float) -> float:
    """23 CFR 680.116(b): ((525,600 - (T_outage - T_excluded)) / 525,600) x 100, within 0..100."""
    pct = (MINUTES_PER_YEAR - (outage_min - excluded_min)) / MINUTES_PER_YEAR * 100
    return min(100.0, max(0.0, pct))


def quarter_bounds(quarter_start: date) -> tuple[date, date]:
    """[first day, first day of the next quarter)."""
    m = quarter_start.month + 3
    return quarter_start, date(quarter_start.year + (m > 12), (m - 1) % 12 + 1, 1)


def _add_months(d: date, months: int) -> date:
    k = d.year * 12 + d.month - 1 + months
    return date(k // 12, k % 12 + 1, 1)


def _utc(d: date) -> datetime:
    return datetime.combine(d, time(), tzinfo=UTC)


def _frame(module: R.Module, rows: list[dict]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=dict.fromkeys(module.header, pl.String), orient="row")


def _empty_row(module: R.Module, station: str, port: str, provider: str) -> dict:
    row = dict.fromkeys(module.header, "")
    row.update(station_id=station, port_id=port, network_provider=provider)
    return row


def _ports_with(ports: pl.DataFrame, *data: pl.DataFrame) -> list[tuple]:
    """(charge_point_id, evse_id, connector_id, site_id) of `ports` plus ports met in `data`."""
    extra = [d.select(*PORT_KEY, "site_id") for d in data if "site_id" in d.columns]
    frames = [ports.select(*PORT_KEY, "site_id"), *extra]
    all_ports = pl.concat([f.cast({"evse_id": pl.Int32, "connector_id": pl.Int32}) for f in frames])
    return sorted(
        all_ports.filter(pl.col("connector_id") > 0)
        .unique(subset=PORT_KEY, keep="first", maintain_order=True)
        .iter_rows(),
        key=lambda r: (r[3] or "", r[0], r[1], r[2]),
    )


# -- Module 2: charging sessions ------------------------------------------------------------------
def session_error(stop_reason: str | None) -> str:
    return "none" if stop_reason is None or stop_reason in NORMAL_STOPS else stop_reason


def payment(id_token_type: str | None) -> tuple[str, str]:
    """(payment_method, payment_other)."""
    if id_token_type in PAYMENT_BY_TOKEN_TYPE:
        return PAYMENT_BY_TOKEN_TYPE[id_token_type], ""
    if id_token_type is None:
        return "other", "OCPP 1.6 idTag (type not reported)"
    return "other", f"OCPP id token type {id_token_type}"


def module2(
    sessions: pl.DataFrame, ports: pl.DataFrame, quarter_start: date, provider: str
) -> pl.DataFrame:
    """Module 2 rows (all strings, header order) for the quarter starting `quarter_start`."""
    qs, qe = quarter_bounds(quarter_start)
    s = sessions.filter(
        (pl.col("start_ts") >= _utc(qs)) & (pl.col("start_ts") < _utc(qe)) & (pl.col("connector_id") > 0)
    ).sort("start_ts", "charge_point_id", "transaction_id")  # fmt: skip
    by_port: dict[tuple, list[dict]] = {}
    # a non-finite energy or power is quarantined upstream; rows stored before that are skipped
    # here rather than failing every other port's file
    usable = pl.all_horizontal(
        pl.col(c).is_null() | pl.col(c).is_finite()
        for c in ("energy_wh", "peak_power_w", "mean_power_w")
    )
    for r in s.filter(pl.col("end_ts").is_not_null() & usable).iter_rows(named=True):
        key = (r["charge_point_id"], r["evse_id"], r["connector_id"])
        peak = r["peak_power_w"] if r["peak_power_w"] is not None else r["mean_power_w"]
        method, other = payment(r.get("id_token_type"))
        err = session_error(r.get("stop_reason"))
        by_port.setdefault(key, []).append(
            {
                "charger_id": r["charge_point_id"],
                "session_id": fit_id(r["transaction_id"], "s-"),
                "connector_id": str(r["connector_id"]),
                "session_start": fmt_ts(r["start_ts"]),
                "session_end": fmt_ts(r["end_ts"]),
                "session_error": err,
                "error_other": "",
                "energy_kwh": fmt_dec(max(r["energy_wh"] or 0.0, 0.0) / 1000),
                "power_kw": fmt_dec(max(peak or 0.0, 0.0) / 1000),
                "payment_method": method,
                "payment_other": other,
            }
        )
    rows = []
    for cp, evse, conn, site in _ports_with(ports, s):
        base = _empty_row(R.MODULE2, site or "", port_id(cp, evse, conn), provider)
        sessions_of_port = by_port.get((cp, evse, conn), [])
        rows += [base | sess for sess in sessions_of_port] or [base]
    return _frame(R.MODULE2, rows)


# -- Module 3: uptime -----------------------------------------------------------------------------
def reporting_windows(quarter_start: date) -> list[tuple[date, date]]:
    """For each month of the quarter, the trailing 12 months [start, end) ending at its end."""
    ends = [_add_months(quarter_start, k) for k in (1, 2, 3)]
    return [(_add_months(end, -12), end) for end in ends]


def module3(
    uptime: pl.DataFrame, ports: pl.DataFrame, quarter_start: date, provider: str
) -> pl.DataFrame:
    """Module 3 rows: three per port (one per month of the quarter), see the module docstring."""
    site_first = ports.group_by("site_id").agg(pl.col("first_day").min())
    operational = dict(site_first.iter_rows())
    rows = []
    for start, end in reporting_windows(quarter_start):
        sums = (
            uptime.filter((pl.col("day") >= start) & (pl.col("day") < end))
            .group_by(PORT_KEY)
            .agg(pl.col("outage_minutes").sum(), pl.col("excluded_minutes").sum())
        )
        totals = {(r[0], r[1], r[2]): (r[3], r[4]) for r in sums.iter_rows()}
        for cp, evse, conn, site in _ports_with(ports):
            outage, excluded = totals.get((cp, evse, conn), (0.0, 0.0))
            first = operational.get(site)
            full_year = first is not None and first <= start
            row = _empty_row(R.MODULE3, site or "", port_id(cp, evse, conn), provider)
            row.update(
                uptime_reporting_start=fmt_ts(_utc(start)),
                uptime_reporting_end=fmt_ts(_utc(end) - timedelta(seconds=1)),
                uptime=fmt_dec(cfr_uptime_pct(outage, excluded)) if full_year else "",
                total_outage=fmt_dec(outage),
                total_outage_excl=fmt_dec(excluded),
            )
            rows.append(row)
    return _frame(R.MODULE3, rows).sort("station_id", "port_id", "uptime_reporting_start")


# -- Module 4: outages ----------------------------------------------------------------------------
def merge_outages(pieces: pl.DataFrame) -> pl.DataFrame:
    """Touching pieces of a port with the same exclusion become one outage (start, end, minutes)."""
    p = pieces.sort(*PORT_KEY, "start_ts")
    same_port = pl.all_horizontal([pl.col(k) == pl.col(k).shift(1) for k in PORT_KEY])
    continues = (
        same_port
        & (pl.col("start_ts") == pl.col("end_ts").shift(1))
        & (pl.col("excluded") == pl.col("excluded").shift(1))
        & pl.col("exclusion_reason").eq_missing(pl.col("exclusion_reason").shift(1))
    ).fill_null(False)
    return (
        p.with_columns(oid=(~continues).cum_sum())
        .group_by("oid", maintain_order=True)
        .agg(
            *[pl.col(k).first() for k in PORT_KEY],
            pl.col("site_id").first(),
            pl.col("start_ts").min(),
            pl.col("end_ts").max(),
            pl.col("duration_min").sum(),
            pl.col("excluded").first(),
            pl.col("exclusion_reason").first(),
        )
        .drop("oid")
    )


def _exclusion_columns(excluded: bool | None, reason: str | None) -> dict:
    if not excluded:
        return {"excluded_outage": "FALSE"}
    code = R.EXCLUSION_REASON_CODES.get(reason or "")
    return {
        "excluded_outage": "TRUE",
        "excluded_outage_reason": "" if code is None else str(code),
        "excluded_outage_notes": "" if code is not None else f"excluded: {reason or 'unknown'}",
    }


def module4(
    pieces: pl.DataFrame, ports: pl.DataFrame, quarter_start: date, provider: str
) -> tuple[pl.DataFrame, int]:
    """Module 4 rows and the number of sub-0.005-minute outages dropped."""
    qs, qe = quarter_bounds(quarter_start)
    merged = merge_outages(pieces).filter(
        (pl.col("start_ts") >= _utc(qs)) & (pl.col("start_ts") < _utc(qe))
    )
    merged = (
        merged.with_columns(second=pl.col("start_ts").dt.truncate("1s"))
        .group_by(*PORT_KEY, "second", maintain_order=True)
        .agg(
            pl.col("site_id").first(),
            pl.col("duration_min").sum(),
            pl.col("excluded").first(),
            pl.col("exclusion_reason").first(),
        )
    )
    kept = merged.filter(pl.col("duration_min") >= 0.005)
    by_port: dict[tuple, list[dict]] = {}
    for r in kept.sort("second").iter_rows(named=True):
        by_port.setdefault((r["charge_point_id"], r["evse_id"], r["connector_id"]), []).append(
            {
                "outage_id": fmt_ts(r["second"]),
                "outage_duration": fmt_dec(r["duration_min"]),
                **_exclusion_columns(r["excluded"], r["exclusion_reason"]),
            }
        )
    rows = []
    for cp, evse, conn, site in _ports_with(ports, merged):
        base = _empty_row(R.MODULE4, site or "", port_id(cp, evse, conn), provider)
        rows += [base | o for o in by_port.get((cp, evse, conn), [])] or [base]
    return _frame(R.MODULE4, rows), merged.height - kept.height


# -- validation -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Violation:
    file: str
    row: int | None  # line number in the file (header = 1, first data row = 2); None = file
    column: str
    value: str
    rule: str

    def __str__(self) -> str:
        where = f"row {self.row}" if self.row is not None else "file"
        return f"{self.file}: {where}, column {self.column} = {self.value!r}: {self.rule}"


class EvchartValidationError(ValueError):
    """Every violation of every file; nothing was written."""

    def __init__(self, violations: list[Violation]):
        self.violations = violations
        lines = [f"{len(violations)} EV-ChART rule violation(s), nothing written:"]
        super().__init__("\n".join(lines + [f"  {v}" for v in violations]))


def _check_cell(f: R.Field, value: str) -> list[str]:
    """Rules of one non-empty cell, as module_validation checks its datatype."""
    if f.datatype == "string":
        out = []
        if f.max_length is not None and len(value) > f.max_length:
            out.append(f"longer than {f.max_length} characters")
        if value.isspace():
            out.append("only whitespace")
        return out
    if f.datatype == "datetime":
        ok = R.DATETIME_RE.match(value) is not None
        if ok:
            try:
                datetime.fromisoformat(value)
            except ValueError:
                ok = False
        return [] if ok else ["not a datetime like 2024-01-01T00:00:00Z"]
    if f.datatype == "boolean":
        return [] if value.upper() in {"TRUE", "FALSE"} else ["not TRUE or FALSE"]
    if f.datatype == "integer":
        try:
            n = int(value)
        except ValueError:
            return ["not an integer"]
        out = []
        if f.min_value is not None and n < f.min_value:
            out.append(f"below the minimum {f.min_value:g}")
        if f.max_value is not None and n > f.max_value:
            out.append(f"above the maximum {f.max_value:g}")
        return out
    try:  # decimal
        d = Decimal(value)
        if not d.is_finite():
            raise InvalidOperation
    except InvalidOperation:
        return ["not a decimal number"]
    out = []
    integer, _, decimals = value.lstrip("+-").partition(".")
    if f.max_precision is not None and len(integer) > f.max_precision - (f.max_scale or 0):
        out.append(f"more than {f.max_precision - (f.max_scale or 0)} integer digits")
    if f.max_scale is not None and len(decimals) > f.max_scale:
        out.append(f"more than {f.max_scale} decimal places")
    if f.min_value is not None and d < Decimal(str(f.min_value)):
        out.append(f"below the minimum {f.min_value:g}")
    if f.max_value is not None and d > Decimal(str(f.max_value)):
        out.append(f"above the maximum {f.max_value:g}")
    return out


def validate_rows(
    module: R.Module,
    header: list[str] | tuple[str, ...],
    rows: list[list[str]] | list[tuple[str, ...]],
    file: str,
    operational: dict[str, date] | None = None,
) -> list[Violation]:
    """Every violation of `rows` (strings as written) against the rules of `module`.

    `operational` (station_id -> first day of operation) enables validate_m3's rule that uptime
    may be blank only within a station's first year."""
    out: list[Violation] = []
    if tuple(header) != module.header:
        out.append(Violation(file, None, ",".join(header), "", f"header is not {module.header}"))
        return out
    if not rows:  # module_validation.check_df_required_fields: CSV_EMPTY
        out.append(Violation(file, None, "*", "", "no data rows (EV-ChART rejects an empty file)"))
    seen: dict[tuple, int] = {}
    for n, row in enumerate(rows, start=2):
        if len(row) != len(header):
            out.append(Violation(file, n, "*", ",".join(row), f"{len(row)} cells, not {len(header)}"))  # fmt: skip
            continue
        cell = dict(zip(header, row, strict=True))
        for name in ("station_id", "network_provider"):
            if not cell[name].strip():
                out.append(Violation(file, n, name, cell[name], "required"))
        if len(cell["network_provider"]) > R.NETWORK_PROVIDER_MAX:
            out.append(Violation(file, n, "network_provider", cell["network_provider"],
                                 f"longer than {R.NETWORK_PROVIDER_MAX} characters"))  # fmt: skip
        for f in module.fields:
            value = cell[f.name]
            if value == "":
                if f.required and not f.required_empty_allowed:
                    out.append(Violation(file, n, f.name, value, "required"))
                continue
            out += [Violation(file, n, f.name, value, rule) for rule in _check_cell(f, value)]
        out += _row_rules(module, cell, file, n, operational)
        key = tuple(cell[k] for k in (*module.unique_key, "network_provider"))
        if key in seen:
            keys = ",".join(module.unique_key)
            out.append(Violation(file, n, keys, "|".join(key[:-1]),
                                 f"duplicate key, first on row {seen[key]}"))  # fmt: skip
        else:
            seen[key] = n
    return out


def _row_rules(
    module: R.Module, cell: dict, file: str, n: int, operational: dict[str, date] | None
) -> list[Violation]:
    out = []
    if module.number == 2:
        fields = [c for c in module.header if c not in R.COMMON]
        if any(cell[c] for c in fields):  # not a valid empty row: every required field filled
            out += [
                Violation(file, n, c, "", "required unless the whole session row is empty")
                for c in R.M2_ROW_REQUIRED
                if cell[c] == ""
            ]
        start, end = cell["session_start"], cell["session_end"]
        if start and end and R.DATETIME_RE.match(start) and R.DATETIME_RE.match(end) and end < start:  # fmt: skip
            out.append(Violation(file, n, "session_end", end, "before session_start"))
    elif module.number == 3:
        start = cell["uptime_reporting_start"]
        first = (operational or {}).get(cell["station_id"])
        if cell["uptime"] == "" and first is not None and R.DATETIME_RE.match(start):
            one_year_before = date.fromisoformat(start[:10])
            one_year_before = one_year_before.replace(year=one_year_before.year - 1)
            if first < one_year_before:
                out.append(Violation(file, n, "uptime", "", "required after a station's first year"))  # fmt: skip
        s, e = cell["uptime_reporting_start"], cell["uptime_reporting_end"]
        if s and e and R.DATETIME_RE.match(s) and R.DATETIME_RE.match(e) and e <= s:
            out.append(Violation(file, n, "uptime_reporting_end", e, "not after the start"))
    elif module.number == 4:
        a, b = R.M4_PAIR
        if (cell[a] == "") != (cell[b] == ""):
            blank = a if cell[a] == "" else b
            out.append(Violation(file, n, blank, "", f"{a} and {b} are filled together"))
    return out


def validate_frame(
    module: R.Module, df: pl.DataFrame, file: str, operational: dict[str, date] | None = None
) -> list[Violation]:
    return validate_rows(module, df.columns, list(df.iter_rows()), file, operational)


def validate_file(module: R.Module, path: Path) -> list[Violation]:
    """Re-read a written file as EV-ChART would (BOM, LF, CSV) and validate it."""
    raw = Path(path).read_bytes()
    name = Path(path).name
    out = []
    if not raw.startswith(b"\xef\xbb\xbf"):
        out.append(Violation(name, None, "*", "", "file does not start with a UTF-8 BOM"))
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        return [*out, Violation(name, None, "*", "", f"not UTF-8: {e}")]
    if "\r" in text:
        out.append(Violation(name, None, "*", "", "line ends are not LF"))
    table = list(csv.reader(io.StringIO(text, newline="")))
    if not table:
        return [*out, Violation(name, None, "*", "", "empty file")]
    return out + validate_rows(module, table[0], table[1:], name)


# -- writing --------------------------------------------------------------------------------------
def text_columns(module: R.Module) -> tuple[str, ...]:
    """The module's string fields (ids, reasons, notes): the cells `reports.csvsafe` guards."""
    return tuple(n for n in module.header if n in R.COMMON or module.field(n).datatype == "string")


def safe(module: R.Module, df: pl.DataFrame) -> pl.DataFrame:
    """The frame as it is written: formula-like text cells prefixed with `'` (OWASP)."""
    return csvsafe.neutralise_frame(df, [c for c in text_columns(module) if c in df.columns])


def render(df: pl.DataFrame, module: R.Module) -> str:
    """CSV text, LF line ends; the module's text cells neutralised and quoted."""
    return csvsafe.rows_csv(df.columns, df.iter_rows(), text_columns(module), R.LINE_END)


@dataclass
class Written:
    folder: Path
    files: dict[int, Path] = field(default_factory=dict)
    rows: dict[int, int] = field(default_factory=dict)
    manifest: Path | None = None
    incomplete: Path | None = None  # the companion note naming missing days, if any


def write_quarter(
    frames: dict[int, pl.DataFrame],
    reports_dir: Path,
    quarter: str,
    operational: dict[str, date] | None = None,
) -> Written:
    """Validate every module frame as it will be written (text cells neutralised against CSV
    injection, `reports.csvsafe`), then (only if all pass) write them and the manifest."""
    frames = {n: safe(R.MODULES[n], df) for n, df in frames.items()}
    violations = []
    for number, df in sorted(frames.items()):
        module = R.MODULES[number]
        violations += validate_frame(module, df, module.file_name(quarter), operational)
    if violations:
        raise EvchartValidationError(violations)
    folder = period_dir(Path(reports_dir), quarter)
    out = Written(folder)
    for number, df in sorted(frames.items()):
        path = folder / R.MODULES[number].file_name(quarter)
        write_text(path, render(df, R.MODULES[number]), bom=True)
        out.files[number], out.rows[number] = path, df.height
    out.manifest = write_manifest(folder)
    return out


# -- inputs from the database ---------------------------------------------------------------------
@dataclass(frozen=True)
class Inputs:
    ports: pl.DataFrame
    sessions: pl.DataFrame
    uptime: pl.DataFrame
    outages: pl.DataFrame


def network_provider(env: dict | None = None) -> str:
    """CHARGEOPS_NETWORK_PROVIDER (default `chargeops`), checked against the rules' shape."""
    from chargeops.settings import ConfigError

    env = os.environ if env is None else env
    value = (env.get(NETWORK_PROVIDER_ENV) or DEFAULT_NETWORK_PROVIDER).strip()
    if len(value) > R.NETWORK_PROVIDER_MAX:
        raise ConfigError(
            f"{NETWORK_PROVIDER_ENV}={value!r} is longer than {R.NETWORK_PROVIDER_MAX} characters"
        )
    return value


def read_inputs(url: str, quarter_start: date) -> Inputs:
    """The analytics rows one quarter's files need (uptime as monthly sums)."""
    qs, qe = quarter_bounds(quarter_start)
    ws = _add_months(qs, -11)
    ports = read_table(
        url,
        f"""SELECT charge_point_id, evse_id, connector_id, max(site_id) AS site_id,
                   min(day) AS first_day
            FROM analytics.uptime_daily WHERE day < '{qe}' AND connector_id > 0
            GROUP BY 1, 2, 3""",
        PORTS,
    )
    sessions = read_table(
        url,
        f"""SELECT s.charge_point_id, s.transaction_id, s.evse_id, s.connector_id, s.site_id,
                   s.start_ts, s.end_ts, s.energy_wh, s.peak_power_w, s.mean_power_w,
                   t.stop_reason, t.id_token_type
            FROM analytics.sessions s
            LEFT JOIN transaction t USING (charge_point_id, transaction_id)
            WHERE s.day >= '{qs}' AND s.day < '{qe}'""",
        SESSIONS,
    )
    uptime = read_table(
        url,
        f"""SELECT date_trunc('month', day)::date AS day, charge_point_id, evse_id, connector_id,
                   sum(outage_minutes) AS outage_minutes, sum(excluded_minutes) AS excluded_minutes
            FROM analytics.uptime_daily WHERE day >= '{ws}' AND day < '{qe}'
            GROUP BY 1, 2, 3, 4""",
        UPTIME,
    )
    outages = read_table(
        url,
        f"""SELECT {", ".join(OUTAGES)} FROM analytics.outages
            WHERE day >= '{qs - timedelta(days=1)}'
              AND day < '{qe + timedelta(days=OUTAGE_LOOKAHEAD_DAYS)}'""",
        OUTAGES,
    )
    return Inputs(ports, sessions, uptime, outages)


@dataclass(frozen=True)
class Report:
    frames: dict[int, pl.DataFrame]
    operational: dict[str, date]
    dropped_short_outages: int
    open_sessions_skipped: int


def build(inputs: Inputs, quarter_start: date, provider: str) -> Report:
    """All module frames of the quarter (pure)."""
    qs, qe = quarter_bounds(quarter_start)
    m4, dropped = module4(inputs.outages, inputs.ports, quarter_start, provider)
    in_quarter = inputs.sessions.filter(
        (pl.col("start_ts") >= _utc(qs)) & (pl.col("start_ts") < _utc(qe))
    )
    operational = dict(inputs.ports.group_by("site_id").agg(pl.col("first_day").min()).iter_rows())
    return Report(
        frames={
            2: module2(inputs.sessions, inputs.ports, quarter_start, provider),
            3: module3(inputs.uptime, inputs.ports, quarter_start, provider),
            4: m4,
        },
        operational={k: v for k, v in operational.items() if k is not None},
        dropped_short_outages=dropped,
        open_sessions_skipped=in_quarter.filter(pl.col("end_ts").is_null()).height,
    )


SOURCES = ("sessions", "uptime")  # the daily assets the modules read


def produce(url: str, reports_dir: Path, quarter: str) -> tuple[Report, Written]:
    """Read, build, validate and write one quarter (label like `2026Q3`). The module files keep
    EV-ChART's template; days whose sessions or uptime failed or never ran are named in a
    companion note, `evchart_<quarter>.INCOMPLETE.txt`, listed in the manifest."""
    from chargeops.completeness import gaps
    from reports.files import incomplete_note

    start = date.fromisoformat(quarter_key(quarter))
    report = build(read_inputs(url, start), start, network_provider())
    written = write_quarter(report.frames, reports_dir, quarter, report.operational)
    qs, qe = quarter_bounds(start)
    found = gaps(url, qs, qe - timedelta(days=1), SOURCES, clip_to_recorded=True)
    note = incomplete_note(written.folder / f"evchart_{quarter}.csv", found, f"EV-ChART {quarter}")
    written.incomplete = note
    written.manifest = write_manifest(written.folder)
    return report, written


def cli(args, settings) -> int:
    """`chargeops report evchart --quarter 2026Q3 [--out DIR]`."""
    import sys

    from chargeops.db import resolve_database_url
    from chargeops.settings import ConfigError

    try:
        label = quarter_label(quarter_key(args.quarter))
    except ValueError as e:
        raise ConfigError(str(e)) from None
    out_dir = Path(args.out) if getattr(args, "out", None) else settings.reports_path
    provider = network_provider()
    try:
        report, written = produce(resolve_database_url(settings), out_dir, label)
    except EvchartValidationError as e:
        print(f"chargeops: error: {e}", file=sys.stderr)
        return 1
    for number, path in sorted(written.files.items()):
        print(f"module {number}: {written.rows[number]:>6} rows  {path}")
    print(f"manifest: {written.manifest}")
    if written.incomplete:
        print(f"incomplete: {written.incomplete}", file=sys.stderr)
    if provider not in R.KNOWN_NETWORK_PROVIDERS:
        print(
            f"note: network_provider {provider!r} is not in EV-ChART's last published list; "
            f"set {NETWORK_PROVIDER_ENV} to the value registered with EV-ChART",
            file=sys.stderr,
        )
    print("module 5: not written (no maintenance cost data)")
    return 0
