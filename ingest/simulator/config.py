"""Fleet configuration: sites, tariffs, charge points, and the knobs of the simulation.

A fleet file is TOML (``.toml``) or YAML (``.yaml``/``.yml``) with this shape (TOML shown; see
``example_fleet.toml`` for a complete file)::

    seed = 42
    start = "2024-05-01T00:00:00Z"      # tz-aware ISO 8601 (a date alone means midnight UTC)
    days = 14                            # simulated days (may be fractional)
    meter_interval_s = 300               # Sample.Periodic interval during transactions
    clock_aligned_interval_s = 3600      # Sample.Clock interval, 0 = off
    heartbeat_interval_s = 900
    fault_rate_per_day = 0.03            # per charge point
    offline_rate_per_day = 0.06          # per charge point
    missing_stop_prob = 0.01             # per session
    meter_reset_prob = 0.3               # per reboot
    # optional: reboot_rate_per_day, failed_start_prob, demand_scale, batch_window_s,
    #           validate_messages, send_notify_event, degrade_days, repair_days

    [[sites]]
    site_id = "US-CA-PAS-01"
    name = "Pasadena Tech Campus"
    site_type = "workplace"              # workplace | retail | highway | residential
    timezone = "America/Los_Angeles"     # IANA
    country = "US"                       # ISO 3166-1 alpha-2
    grid_region = "CAMX"                 # eGRID subregion, or "GB", "DE", ...
    demand_scale = 1.0                   # optional multiplier on the site type's demand
    [sites.operating_hours]              # optional; omit for 24/7; a day left out = closed
    mon = ["07:00", "19:00"]
    [sites.tariff]
    currency = "USD"
    energy_price_per_kwh = 0.32
    time_price_per_min = 0.0
    idle_fee_per_min = 0.40
    idle_grace_min = 15
    session_fee = 0.0
    tax_rate = 0.0
    prices_include_tax = false

    [[charge_points]]
    charge_point_id = "PAS-AC-001"
    site_id = "US-CA-PAS-01"
    ocpp_version = "1.6"                 # "1.6" | "2.0.1"
    vendor = "ABB"
    model = "Terra AC W22"
    firmware_version = "1.8.2"
    serial_number = "ABB-TAC-000001"
    current_type = "AC"                  # "AC" | "DC"
    max_power_w = 11000                  # per EVSE
    evse_count = 2
    connectors_per_evse = 1              # must be 1 for OCPP 1.6 (connectorId N = EVSE N)
    energy_unit = "Wh"                   # "Wh" | "kWh"
    per_phase = false
    password = "secret"                  # optional HTTP Basic auth password
    degrading = false

Any error (missing or unknown field, wrong type, bad value) raises ``ValueError`` with one line
naming the field, e.g. ``charge_points[3].ocpp_version: must be "1.6" or "2.0.1", got "2.0"``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
import tomllib
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

SITE_TYPES = ("workplace", "retail", "highway", "residential")
OCPP_VERSIONS = ("1.6", "2.0.1")
DAY_KEYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class TariffConfig:
    currency: str
    energy_price_per_kwh: float
    time_price_per_min: float = 0.0
    idle_fee_per_min: float = 0.0
    idle_grace_min: int = 0
    session_fee: float = 0.0
    tax_rate: float = 0.0
    prices_include_tax: bool = False


@dataclass(frozen=True)
class SiteConfig:
    site_id: str
    name: str
    site_type: str  # workplace | retail | highway | residential
    timezone: str  # IANA
    country: str  # ISO alpha-2
    grid_region: str  # e.g. eGRID 'CAMX', 'NYUP', 'GB', 'DE'
    operating_hours: dict[str, list[str]] | None  # {"mon": ["07:00", "19:00"], ...}; None = 24/7
    tariff: TariffConfig
    demand_scale: float = 1.0  # multiplier on the site type's offered demand


@dataclass(frozen=True)
class ChargePointConfig:
    charge_point_id: str
    site_id: str
    ocpp_version: str  # "1.6" | "2.0.1"
    vendor: str
    model: str
    firmware_version: str
    serial_number: str
    current_type: str  # "AC" | "DC"
    max_power_w: float  # per EVSE
    evse_count: int = 1
    connectors_per_evse: int = 1
    energy_unit: str = "Wh"  # "Wh" | "kWh"
    per_phase: bool = False
    password: str | None = None
    degrading: bool = False  # degrades, then fails during the run


@dataclass
class FleetConfig:
    seed: int
    start: datetime  # tz-aware UTC
    days: float
    meter_interval_s: int = 300
    clock_aligned_interval_s: int = 3600  # 0 = no clock-aligned samples
    heartbeat_interval_s: int = 900
    sites: list[SiteConfig] = field(default_factory=list)
    charge_points: list[ChargePointConfig] = field(default_factory=list)
    fault_rate_per_day: float = 0.03  # per charge point
    offline_rate_per_day: float = 0.06  # per charge point
    missing_stop_prob: float = 0.01  # per session
    meter_reset_prob: float = 0.3  # per reboot: the registers restart at 0
    reboot_rate_per_day: float = 0.01  # spontaneous reboots per charge point (besides faults)
    failed_start_prob: float = 0.02  # baseline; degrading chargers rise far above it
    demand_scale: float = 1.0  # fleet-wide multiplier on offered demand
    degrade_days: float = 4.0  # how long a degrading charger degrades before failing
    repair_days: float = 2.0  # how long the final failure lasts (mean)
    batch_window_s: int = 60  # events within one window are sent together
    validate_messages: bool = True  # JSON-schema validate outgoing frames (ocpp library)
    send_notify_event: bool = True  # 2.0.1: report faults as NotifyEvent as well

    @property
    def end(self) -> datetime:
        return self.start + timedelta(days=self.days)

    def site(self, site_id: str) -> SiteConfig:
        for s in self.sites:
            if s.site_id == site_id:
                return s
        raise KeyError(site_id)

    def validate(self) -> FleetConfig:
        _validate_fleet(self)
        return self


# ---------------------------------------------------------------------------------------------
# validation


def _err(where: str, msg: str) -> ValueError:
    return ValueError(f"{where}: {msg}")


def _hhmm(where: str, s: Any) -> time:
    if not isinstance(s, str):
        raise _err(where, f'must be "HH:MM", got {s!r}')
    try:
        if s == "24:00":
            return time(23, 59, 59)
        return time.fromisoformat(s)
    except ValueError:
        raise _err(where, f'must be "HH:MM", got {s!r}') from None


def _validate_fleet(cfg: FleetConfig) -> None:
    if not isinstance(cfg.start, datetime) or cfg.start.tzinfo is None:
        raise _err("start", "must be a time-zone-aware datetime")
    if not cfg.days > 0:
        raise _err("days", f"must be > 0, got {cfg.days!r}")
    for name in ("meter_interval_s", "heartbeat_interval_s", "batch_window_s"):
        v = getattr(cfg, name)
        if not isinstance(v, int) or v <= 0:
            raise _err(name, f"must be a positive integer, got {v!r}")
    if not isinstance(cfg.clock_aligned_interval_s, int) or cfg.clock_aligned_interval_s < 0:
        raise _err("clock_aligned_interval_s", "must be an integer >= 0")
    for name in (
        "fault_rate_per_day",
        "offline_rate_per_day",
        "reboot_rate_per_day",
        "demand_scale",
        "degrade_days",
        "repair_days",
    ):
        v = getattr(cfg, name)
        if not isinstance(v, int | float) or isinstance(v, bool) or v < 0:
            raise _err(name, f"must be a number >= 0, got {v!r}")
    for name in ("missing_stop_prob", "meter_reset_prob", "failed_start_prob"):
        v = getattr(cfg, name)
        if not isinstance(v, int | float) or isinstance(v, bool) or not 0 <= v <= 1:
            raise _err(name, f"must be a probability in [0, 1], got {v!r}")
    if not cfg.sites:
        raise _err("sites", "at least one site is needed")
    if not cfg.charge_points:
        raise _err("charge_points", "at least one charge point is needed")
    site_ids = set()
    for i, s in enumerate(cfg.sites):
        w = f"sites[{i}]"
        if s.site_id in site_ids:
            raise _err(f"{w}.site_id", f"duplicate site id {s.site_id!r}")
        site_ids.add(s.site_id)
        if s.site_type not in SITE_TYPES:
            raise _err(
                f"{w}.site_type", f"must be one of {', '.join(SITE_TYPES)}, got {s.site_type!r}"
            )
        try:
            ZoneInfo(s.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise _err(f"{w}.timezone", f"unknown IANA time zone {s.timezone!r}") from None
        if not (isinstance(s.country, str) and len(s.country) == 2 and s.country.isalpha()):
            raise _err(f"{w}.country", f"must be an ISO 3166-1 alpha-2 code, got {s.country!r}")
        if s.operating_hours is not None:
            if not isinstance(s.operating_hours, dict):
                raise _err(f"{w}.operating_hours", "must be a table of day -> [open, close]")
            for day, span in s.operating_hours.items():
                if day not in DAY_KEYS:
                    raise _err(f"{w}.operating_hours", f"unknown day {day!r} (use mon..sun)")
                if not isinstance(span, list | tuple) or len(span) != 2:
                    raise _err(f"{w}.operating_hours.{day}", 'must be ["HH:MM", "HH:MM"]')
                a = _hhmm(f"{w}.operating_hours.{day}", span[0])
                b = _hhmm(f"{w}.operating_hours.{day}", span[1])
                if b <= a:
                    raise _err(f"{w}.operating_hours.{day}", "closing must be after opening")
        if s.demand_scale < 0:
            raise _err(f"{w}.demand_scale", "must be >= 0")
        t = s.tariff
        if not (isinstance(t.currency, str) and len(t.currency) == 3 and t.currency.isupper()):
            raise _err(f"{w}.tariff.currency", f"must be an ISO 4217 code, got {t.currency!r}")
        for name in (
            "energy_price_per_kwh",
            "time_price_per_min",
            "idle_fee_per_min",
            "session_fee",
        ):
            v = getattr(t, name)
            if not isinstance(v, int | float) or isinstance(v, bool) or v < 0:
                raise _err(f"{w}.tariff.{name}", f"must be a number >= 0, got {v!r}")
        if not 0 <= t.tax_rate < 1:
            raise _err(f"{w}.tariff.tax_rate", f"must be in [0, 1), got {t.tax_rate!r}")
    cp_ids = set()
    for i, cp in enumerate(cfg.charge_points):
        w = f"charge_points[{i}]"
        if not cp.charge_point_id or not all(c.isalnum() or c in "-_." for c in cp.charge_point_id):
            raise _err(
                f"{w}.charge_point_id",
                f"must be non-empty [A-Za-z0-9-_.], got {cp.charge_point_id!r}",
            )
        if cp.charge_point_id in cp_ids:
            raise _err(f"{w}.charge_point_id", f"duplicate id {cp.charge_point_id!r}")
        cp_ids.add(cp.charge_point_id)
        if cp.site_id not in site_ids:
            raise _err(f"{w}.site_id", f"unknown site {cp.site_id!r}")
        if cp.ocpp_version not in OCPP_VERSIONS:
            raise _err(f"{w}.ocpp_version", f'must be "1.6" or "2.0.1", got {cp.ocpp_version!r}')
        if cp.current_type not in ("AC", "DC"):
            raise _err(f"{w}.current_type", f'must be "AC" or "DC", got {cp.current_type!r}')
        if cp.energy_unit not in ("Wh", "kWh"):
            raise _err(f"{w}.energy_unit", f'must be "Wh" or "kWh", got {cp.energy_unit!r}')
        if not isinstance(cp.max_power_w, int | float) or not 1000 <= cp.max_power_w <= 1_000_000:
            raise _err(
                f"{w}.max_power_w", f"must be between 1000 and 1000000 W, got {cp.max_power_w!r}"
            )
        if not isinstance(cp.evse_count, int) or not 1 <= cp.evse_count <= 16:
            raise _err(f"{w}.evse_count", f"must be an integer 1..16, got {cp.evse_count!r}")
        if not isinstance(cp.connectors_per_evse, int) or not 1 <= cp.connectors_per_evse <= 4:
            raise _err(
                f"{w}.connectors_per_evse",
                f"must be an integer 1..4, got {cp.connectors_per_evse!r}",
            )
        if cp.ocpp_version == "1.6" and cp.connectors_per_evse != 1:
            raise _err(
                f"{w}.connectors_per_evse", "must be 1 for OCPP 1.6 (connectorId N = EVSE N)"
            )
        if cp.per_phase and cp.current_type != "AC":
            raise _err(f"{w}.per_phase", "per-phase readings only make sense for AC chargers")
        for name in ("vendor", "model", "firmware_version", "serial_number"):
            if not isinstance(getattr(cp, name), str) or not getattr(cp, name):
                raise _err(f"{w}.{name}", "must be a non-empty string")


# ---------------------------------------------------------------------------------------------
# loading from TOML / YAML


def _build(cls: type, data: Any, where: str, nested: dict[str, Any] | None = None) -> Any:
    if not isinstance(data, dict):
        raise _err(where, f"must be a table/mapping, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(data) - set(fields)
    if unknown:
        raise _err(f"{where}.{sorted(unknown)[0]}", "unknown field")
    kwargs = {}
    for name, f in fields.items():
        if name not in data:
            if "None" in str(f.type) and f.default is dataclasses.MISSING:
                kwargs[name] = None
                continue
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise _err(f"{where}.{name}", "missing required field")
            continue
        v = data[name]
        if nested and name in nested:
            v = nested[name](v, f"{where}.{name}")
        else:
            v = _coerce(f.type, v, f"{where}.{name}")
        kwargs[name] = v
    return cls(**kwargs)


def _coerce(typ: Any, v: Any, where: str) -> Any:
    t = str(typ)
    if v is None:
        if "None" in t:
            return None
        raise _err(where, "must not be empty")
    if t.startswith("str"):
        if not isinstance(v, str):
            if isinstance(v, int | float) and not isinstance(v, bool) and "version" in where:
                return str(v)
            raise _err(where, f"must be a string, got {v!r}")
        return v
    if t == "bool":
        if not isinstance(v, bool):
            raise _err(where, f"must be true or false, got {v!r}")
        return v
    if t == "int":
        if isinstance(v, bool) or not isinstance(v, int):
            raise _err(where, f"must be an integer, got {v!r}")
        return v
    if t == "float":
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise _err(where, f"must be a number, got {v!r}")
        return float(v)
    return v


def _parse_start(v: Any, where: str) -> datetime:
    if isinstance(v, datetime):
        dt = v
    elif isinstance(v, date):
        dt = datetime.combine(v, time(0), tzinfo=UTC)
    elif isinstance(v, str):
        try:
            dt = datetime.fromisoformat(v.replace("Z", "+00:00"))
        except ValueError:
            raise _err(where, f"must be an ISO 8601 timestamp, got {v!r}") from None
        if len(v) == 10:
            dt = dt.replace(tzinfo=UTC)
    else:
        raise _err(where, f"must be an ISO 8601 timestamp, got {v!r}")
    if dt.tzinfo is None:
        raise _err(where, "must carry a time zone (e.g. ...Z or +00:00)")
    return dt.astimezone(UTC)


def _parse_site(v: Any, where: str) -> SiteConfig:
    def tariff(t: Any, w: str) -> TariffConfig:
        return _build(TariffConfig, t, w)

    def hours(h: Any, w: str) -> dict[str, list[str]] | None:
        if h is None:
            return None
        if not isinstance(h, dict):
            raise _err(w, "must be a table of day -> [open, close]")
        return {
            str(k): [str(x) for x in span] if isinstance(span, list) else span
            for k, span in h.items()
        }

    return _build(SiteConfig, v, where, {"tariff": tariff, "operating_hours": hours})


def fleet_from_dict(data: dict[str, Any]) -> FleetConfig:
    """Build and validate a FleetConfig from a parsed TOML/YAML mapping."""

    def sites(v: Any, w: str) -> list[SiteConfig]:
        if not isinstance(v, list):
            raise _err(w, "must be a list of sites")
        return [_parse_site(s, f"sites[{i}]") for i, s in enumerate(v)]

    def cps(v: Any, w: str) -> list[ChargePointConfig]:
        if not isinstance(v, list):
            raise _err(w, "must be a list of charge points")
        return [_build(ChargePointConfig, c, f"charge_points[{i}]") for i, c in enumerate(v)]

    cfg = _build(
        FleetConfig,
        data,
        "fleet",
        {"start": _parse_start, "sites": sites, "charge_points": cps},
    )
    # numeric fields given as ints in the file are fine as floats
    for f in dataclasses.fields(FleetConfig):
        if str(f.type) == "float" and isinstance(getattr(cfg, f.name), int):
            setattr(cfg, f.name, float(getattr(cfg, f.name)))
    return cfg.validate()


def load_fleet(path: str | Path) -> FleetConfig:
    """Load a fleet from TOML or YAML. Raises ValueError with a one-line message on bad input."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as e:
        raise ValueError(f"{p}: cannot read fleet file ({e.strerror or e})") from None
    suffix = p.suffix.lower()
    try:
        if suffix == ".toml":
            data = tomllib.loads(text)
        elif suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            raise ValueError(f"{p}: unknown fleet file type {suffix!r} (use .toml, .yaml or .yml)")
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"{p}: invalid TOML: {e}") from None
    except Exception as e:  # yaml.YAMLError and friends
        if isinstance(e, ValueError) and str(e).startswith(str(p)):
            raise
        raise ValueError(f"{p}: invalid YAML: {str(e).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{p}: the fleet file must be a table/mapping at the top level")
    try:
        return fleet_from_dict(data)
    except ValueError as e:
        raise ValueError(f"{p}: {e}") from None


# ---------------------------------------------------------------------------------------------
# the default demo fleet

_SITES: list[SiteConfig] = [
    SiteConfig(
        "US-CA-PAS-01",
        "Pasadena Tech Campus",
        "workplace",
        "America/Los_Angeles",
        "US",
        "CAMX",
        None,
        TariffConfig("USD", 0.32, 0.0, 0.40, 15, 0.0, 0.0, False),
        1.3,
    ),
    SiteConfig(
        "US-NY-ALB-01",
        "Albany Plaza Shopping Center",
        "retail",
        "America/New_York",
        "US",
        "NYUP",
        {d: ["08:00", "22:00"] for d in DAY_KEYS[:6]} | {"sun": ["09:00", "20:00"]},
        TariffConfig("USD", 0.42, 0.0, 0.50, 10, 1.00, 0.08, False),
    ),
    SiteConfig(
        "GB-M6-KNU-01",
        "Knutsford Services M6",
        "highway",
        "Europe/London",
        "GB",
        "GB",
        None,
        TariffConfig("GBP", 0.79, 0.0, 0.25, 10, 0.0, 0.20, True),
    ),
    SiteConfig(
        "DE-BE-PRE-01",
        "Berlin Prenzlauer Berg Wohnanlage",
        "residential",
        "Europe/Berlin",
        "DE",
        "DE",
        None,
        TariffConfig("EUR", 0.39, 0.0, 0.0, 0, 0.0, 0.19, True),
    ),
    SiteConfig(
        "GB-LDS-OFF-01",
        "Leeds Wellington Place offices",
        "workplace",
        "Europe/London",
        "GB",
        "GB",
        {d: ["06:00", "21:00"] for d in DAY_KEYS[:5]} | {"sat": ["08:00", "14:00"]},
        TariffConfig("GBP", 0.35, 0.0, 0.10, 30, 0.0, 0.20, True),
        1.3,
    ),
    SiteConfig(
        "DE-BY-MUC-01",
        "München Einkaufszentrum Riem",
        "retail",
        "Europe/Berlin",
        "DE",
        "DE",
        {d: ["07:00", "21:00"] for d in DAY_KEYS[:6]},
        TariffConfig("EUR", 0.59, 0.0, 0.10, 60, 0.0, 0.19, True),
    ),
]

# (site, version, vendor, model, current, max_w, evses, connectors, unit, per_phase)
_CP_TEMPLATES: list[tuple[str, str, str, str, str, float, int, int, str, bool]] = [
    ("US-CA-PAS-01", "1.6", "ChargePoint", "CPF50", "AC", 7_200, 2, 1, "Wh", False),
    ("US-CA-PAS-01", "2.0.1", "Enel X", "JuiceBox Pro 48", "AC", 11_500, 2, 1, "Wh", False),
    ("US-NY-ALB-01", "2.0.1", "Tritium", "RTM75", "DC", 75_000, 1, 2, "kWh", False),
    ("GB-M6-KNU-01", "1.6", "Kempower", "S-Series 350", "DC", 350_000, 2, 1, "Wh", False),
    ("DE-BE-PRE-01", "1.6", "Alfen", "Eve Double Pro-line", "AC", 11_000, 2, 1, "kWh", True),
    ("GB-LDS-OFF-01", "2.0.1", "Wallbox", "Commander 2", "AC", 22_000, 1, 1, "Wh", True),
    ("DE-BY-MUC-01", "2.0.1", "ABB", "Terra 184", "DC", 180_000, 2, 1, "Wh", False),
    ("US-NY-ALB-01", "1.6", "ChargePoint", "CT4021", "AC", 7_200, 2, 1, "Wh", False),
    ("GB-M6-KNU-01", "2.0.1", "Alpitronic", "HYC300", "DC", 300_000, 2, 1, "kWh", False),
    ("US-CA-PAS-01", "1.6", "BTC Power", "L2 Dual", "AC", 7_200, 2, 1, "Wh", False),
    ("DE-BE-PRE-01", "2.0.1", "Mennekes", "AMTRON Professional", "AC", 11_000, 1, 1, "Wh", True),
    ("US-CA-PAS-01", "2.0.1", "ABB", "Terra 54", "DC", 50_000, 1, 1, "Wh", False),
    ("DE-BY-MUC-01", "1.6", "Alfen", "Eve Single Pro-line", "AC", 22_000, 2, 1, "Wh", True),
    ("GB-LDS-OFF-01", "1.6", "Pod Point", "Solo 3S", "AC", 7_400, 1, 1, "Wh", False),
]


def _stable_rng(*parts: object) -> random.Random:
    return random.Random(hashlib.sha256(":".join(map(str, parts)).encode()).digest())


def default_fleet(
    n_charge_points: int = 20, days: float = 14, seed: int = 42, start: datetime | None = None
) -> FleetConfig:
    """A realistic mixed fleet over six sites in four grid regions (CAMX, NYUP, GB, DE)."""
    if n_charge_points < 1:
        raise ValueError(f"n_charge_points: must be >= 1, got {n_charge_points}")
    if start is None:
        today = datetime.now(UTC).date()
        start = datetime.combine(today - timedelta(days=14), time(0), tzinfo=UTC)
    rng = _stable_rng("default_fleet", seed)
    cps: list[ChargePointConfig] = []
    n_degrading = 0 if n_charge_points < 4 else (1 if n_charge_points < 12 else 2)
    degrading_idx = set(rng.sample(range(n_charge_points), n_degrading)) if n_degrading else set()
    counters: dict[str, int] = {}
    for i in range(n_charge_points):
        site, ver, vendor, model, cur, max_w, evses, conns, unit, phase = _CP_TEMPLATES[
            i % len(_CP_TEMPLATES)
        ]
        prefix = site.split("-")[-2]
        counters[prefix] = counters.get(prefix, 0) + 1
        cp_id = f"{prefix}-{cur}-{counters[prefix]:03d}"
        fw_major = rng.randint(1, 5)
        cps.append(
            ChargePointConfig(
                charge_point_id=cp_id,
                site_id=site,
                ocpp_version=ver,
                vendor=vendor,
                model=model,
                firmware_version=f"{fw_major}.{rng.randint(0, 9)}.{rng.randint(0, 30)}",
                serial_number=f"{vendor[:3].upper()}{rng.randint(10**7, 10**8 - 1)}",
                current_type=cur,
                max_power_w=float(max_w),
                evse_count=evses,
                connectors_per_evse=conns,
                energy_unit=unit,
                per_phase=phase,
                password=f"pw-{cp_id.lower()}" if i % 3 else None,
                degrading=i in degrading_idx,
            )
        )
    used_sites = {cp.site_id for cp in cps}
    return FleetConfig(
        seed=seed,
        start=start.astimezone(UTC),
        days=float(days),
        sites=[s for s in _SITES if s.site_id in used_sites],
        charge_points=cps,
    ).validate()
