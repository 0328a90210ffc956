"""Pure behaviour model: every charge point's timeline over the simulated period (no network).

`generate_fleet(config)` returns a `FleetTimeline`: per charge point a time-ordered list of
`Event`s (version-neutral; `client.py` turns them into OCPP 1.6J or 2.0.1 frames) and a
ground-truth record of every session, fault, offline window and meter reset.

Model, per site (site-local time for all human behaviour):

- Demand: for each charger class (AC/DC) of a site, the number of arrivals on a local day is
  Poisson(ports x sessions_per_port_day[weekday] x site.demand_scale x fleet.demand_scale); arrival
  hours follow the site type's hour-of-day pmf (weekday or weekend), uniform within the hour, and
  only while the site is open. A driver takes a random free port of the class, or leaves.
- Stay and energy: workplace uses the ACN-JPL fit (dwell given arrival hour, energy given dwell);
  other types use hand-set lognormal stays or "until charged" with arrival/target SoC
  (`calibration.HAND_SET_PROFILES`). The car (battery, AC and DC acceptance, pack voltage) comes
  from a weighted mix. Power is integrated minute by minute: AC roughly flat at
  min(charger, onboard charger), tapering above 95% SoC; DC follows a taper curve
  (full power to 50%, falling to ~45% at 80% and ~12% at 100%), capped by the charger.
  Energy delivered = min(asked, what the power curve delivers in the stay).
- After charging the car sits in SuspendedEV until the driver returns; the driver stops with the
  card (reason Local, Finishing, unplug) or just unplugs (EVDisconnected).
- Faults (Faulted + error code), operating-hour closures (Unavailable), reboots (registers reset
  to 0 with probability meter_reset_prob), offline windows (transaction messages queued and sent
  on reconnect with their original timestamps; statuses collapse to the latest; heartbeats,
  Authorize and idle clock-aligned samples are not sent), missing StopTransactions, failed starts.
- Degrading chargers: over `degrade_days` before a final failure, failed starts, derating,
  temperature, transient faults and offline windows all rise; the failure lasts ~repair_days and
  ends with a reboot.
- Registers are lifetime Wh counters per EVSE (an EVSE has one meter; for the 1.6 mapping
  connectorId N = EVSE N, so per connector).

Randomness comes from `random.Random` instances seeded from (fleet seed, site id / charge point
id, purpose), so the same config gives identical timelines, and adding a charge point to one site
does not change another site.
"""

from __future__ import annotations

import bisect
import hashlib
import math
import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from .calibration import site_profile
from .config import DAY_KEYS, ChargePointConfig, FleetConfig, SiteConfig

# event kinds and their order when timestamps tie
KIND_ORDER = {
    "reconnect": 0,
    "boot": 0,
    "status": 2,
    "authorize": 3,
    "tx_start": 4,
    "meter": 5,
    "tx_stop": 6,
    "notify": 7,
    "heartbeat": 8,
    "disconnect": 9,
}
TX_KINDS = ("tx_start", "tx_stop", "notify")

STEP_S = 60.0  # charging integration step

# (name, battery kWh, AC onboard kW, DC max kW, pack nominal V, weight)
CARS: list[tuple[str, float, float, float, float, float]] = [
    ("compact-40", 40.0, 7.4, 50.0, 350.0, 0.14),
    ("compact-58", 58.0, 11.0, 120.0, 400.0, 0.22),
    ("midsize-64", 64.0, 11.0, 100.0, 400.0, 0.16),
    ("midsize-75", 75.0, 11.0, 170.0, 400.0, 0.24),
    ("premium-84", 84.0, 11.0, 230.0, 800.0, 0.12),
    ("suv-100", 100.0, 11.5, 250.0, 400.0, 0.08),
    ("pickup-131", 131.0, 11.5, 150.0, 400.0, 0.04),
]
_CAR_WEIGHTS = [c[5] for c in CARS]

AC_FAULT_CODES = [
    ("GroundFailure", 0.25),
    ("OverCurrentFailure", 0.15),
    ("EVCommunicationError", 0.2),
    ("ConnectorLockFailure", 0.15),
    ("ReaderFailure", 0.1),
    ("InternalError", 0.15),
]
DC_FAULT_CODES = [
    ("HighTemperature", 0.2),
    ("InternalError", 0.2),
    ("PowerSwitchFailure", 0.15),
    ("EVCommunicationError", 0.2),
    ("GroundFailure", 0.1),
    ("UnderVoltage", 0.05),
    ("ReaderFailure", 0.1),
]


@dataclass(slots=True)
class Event:
    """One thing a charge point does. `ts` is the OCPP timestamp, `send_at` when it is sent."""

    send_at: float  # epoch seconds
    ts: float  # epoch seconds
    kind: str
    evse: int = 0
    connector: int = 0
    tx: str | None = None  # transaction key (uuid string; the 2.0.1 transactionId)
    data: dict[str, Any] | None = None
    queued: bool = False  # held while offline and sent late
    seq: int = 0  # generation order, tie-breaker


@dataclass
class SessionTruth:
    charge_point_id: str
    site_id: str
    ocpp_version: str
    current_type: str
    evse_id: int
    connector_id: int
    transaction_id: str  # uuid; the 2.0.1 transactionId (1.6 ids are assigned by the collector)
    id_token: str
    plug_in: datetime
    start: datetime  # Transaction.Begin
    stop: datetime | None  # Transaction.End (None: still running at the end of the run)
    unplug: datetime | None
    charging_end: datetime | None
    energy_wh: int  # delivered = meter_stop - meter_start
    meter_start: int
    meter_stop: int
    stop_reason: str | None
    missing_stop: bool  # the stop message is never sent
    failed_start: bool
    arrival_soc: float | None
    final_soc: float | None


@dataclass
class FaultTruth:
    charge_point_id: str
    evse_id: int  # 0 = the whole charge point
    start: datetime
    end: datetime
    error_code: str
    kind: str  # "fault" | "failure"


@dataclass
class OfflineTruth:
    charge_point_id: str
    start: datetime
    end: datetime
    queued_messages: int = 0


@dataclass
class ResetTruth:
    charge_point_id: str
    at: datetime
    registers_before: dict[int, int]


@dataclass
class ChargePointTimeline:
    config: ChargePointConfig
    site: SiteConfig
    events: list[Event]


@dataclass
class FleetTimeline:
    config: FleetConfig
    timelines: dict[str, ChargePointTimeline]
    sessions: list[SessionTruth]
    faults: list[FaultTruth]
    offline: list[OfflineTruth]
    resets: list[ResetTruth]

    @property
    def n_events(self) -> int:
        return sum(len(t.events) for t in self.timelines.values())


# ---------------------------------------------------------------------------------------------
# helpers


def _rng(*parts: object) -> random.Random:
    return random.Random(hashlib.sha256(":".join(map(str, parts)).encode()).digest())


def _dt(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def _poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    if lam > 50:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    L, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= L:
            return k
        k += 1


def _poisson_times(rng: random.Random, rate_per_day: float, t0: float, t1: float) -> list[float]:
    out, t = [], t0
    if rate_per_day <= 0:
        return out
    while True:
        t += rng.expovariate(rate_per_day / 86400.0)
        if t >= t1:
            return out
        out.append(t)


def _sample_quantiles(rng: random.Random, q: list[float]) -> float:
    u = rng.random() * (len(q) - 1)
    i = int(u)
    if i >= len(q) - 1:
        return q[-1]
    return q[i] + (q[i + 1] - q[i]) * (u - i)


def _weighted(rng: random.Random, items: list[tuple[str, float]]) -> str:
    return rng.choices([a for a, _ in items], weights=[w for _, w in items])[0]


def _lognormal(rng: random.Random, median: float, sigma: float) -> float:
    return median * math.exp(rng.gauss(0.0, sigma))


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _open_spans(site: SiteConfig, day: date, tz: ZoneInfo) -> list[tuple[float, float]]:
    """Open interval(s) of a local day as epoch seconds (24/7 = the whole day)."""
    d0 = datetime.combine(day, time(0), tzinfo=tz).timestamp()
    d1 = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz).timestamp()
    if site.operating_hours is None:
        return [(d0, d1)]
    span = site.operating_hours.get(DAY_KEYS[day.weekday()])
    if not span:
        return []
    a = time.fromisoformat(span[0])
    b = time(23, 59, 59) if span[1] == "24:00" else time.fromisoformat(span[1])
    return [
        (
            datetime.combine(day, a, tzinfo=tz).timestamp(),
            datetime.combine(day, b, tzinfo=tz).timestamp(),
        )
    ]


# ---------------------------------------------------------------------------------------------
# per-EVSE state


@dataclass
class _Block:
    start: float
    end: float
    kind: str  # "fault" | "failure" | "closed" | "reboot"
    error_code: str = "NoError"
    vendor_code: str | None = None
    reboot_after: bool = False


@dataclass
class _Evse:
    cp: ChargePointConfig
    evse_id: int
    cls: str  # "ac" | "dc"
    register: int
    busy_until: float = -math.inf
    blocks: list[_Block] = field(default_factory=list)
    block_starts: list[float] = field(default_factory=list)
    # (time, register after) points: session begin/end and resets, for clock-aligned samples
    reg_points: list[tuple[float, int]] = field(default_factory=list)
    tx_spans: list[tuple[float, float, str, int]] = field(default_factory=list)
    curves: dict[str, _Curve] = field(default_factory=dict)

    def blocked_at(self, t: float) -> _Block | None:
        i = bisect.bisect_right(self.block_starts, t) - 1
        if i >= 0 and t < self.blocks[i].end:
            return self.blocks[i]
        return None

    def next_block_after(self, t: float) -> _Block | None:
        i = bisect.bisect_right(self.block_starts, t)
        return self.blocks[i] if i < len(self.blocks) else None


@dataclass
class _CpPlan:
    cp: ChargePointConfig
    site: SiteConfig
    evses: list[_Evse]
    reboots: list[tuple[float, float, bool, str]]  # (down, up, reset, boot reason)
    offline: list[tuple[float, float]]
    degrade: tuple[float, float] | None  # (window start, failure time)
    events: list[Event] = field(default_factory=list)
    seq: int = 0

    def degrade_x(self, t: float) -> float:
        if not self.degrade:
            return 0.0
        a, b = self.degrade
        if t < a:
            return 0.0
        if t >= b:
            return 1.0
        return (t - a) / (b - a)

    def add(self, ts: float, kind: str, evse: int = 0, connector: int = 0, tx=None, **data) -> None:
        self.seq += 1
        self.events.append(Event(ts, ts, kind, evse, connector, tx, data or None, False, self.seq))


# ---------------------------------------------------------------------------------------------
# charging physics


def _ac_phases(site: SiteConfig, power_w: float) -> tuple[int, float]:
    """(phases, phase voltage) for an AC charge at power_w."""
    if site.country in ("US", "CA", "MX", "JP"):
        return 1, 240.0
    return (3 if power_w > 7_400 else 1), 230.0


def _dc_taper(soc: float) -> float:
    if soc < 0.1:
        return 0.7 + 3.0 * soc
    if soc < 0.5:
        return 1.0
    if soc < 0.8:
        return 1.0 - (soc - 0.5) / 0.3 * 0.55
    return max(0.05, 0.45 - (soc - 0.8) / 0.2 * 0.33)


def _charge_curve(
    cls: str,
    evse_max_w: float,
    car: tuple[str, float, float, float, float, float],
    soc0: float,
    want_wh: float,
    max_s: float,
    derate: float,
) -> tuple[list[float], list[float], list[float]]:
    """Minute steps from the start of charging: (cumulative Wh, power W, SoC) at each step start,
    plus a final point. Stops when want_wh is delivered or max_s elapses."""
    battery_wh = car[1] * 1000.0
    cum, powers, socs = [0.0], [], [soc0]
    e, soc, t = 0.0, soc0, 0.0
    while e < want_wh - 0.5 and t < max_s:
        if cls == "ac":
            p = min(evse_max_w, car[2] * 1000.0) * derate
            if soc > 0.95:
                p *= max(0.3, 1.0 - (soc - 0.95) / 0.05 * 0.7)
        else:
            p = min(evse_max_w * derate, car[3] * 1000.0 * _dc_taper(soc))
        dt = min(STEP_S, max_s - t)
        de = min(p * dt / 3600.0, want_wh - e)
        if de < p * dt / 3600.0 and p > 0:
            dt = de * 3600.0 / p
        e += de
        soc = min(1.0, soc + de / battery_wh)
        t += dt
        powers.append(p)
        cum.append(e)
        socs.append(soc)
    return cum, powers, socs


@dataclass
class _Curve:
    t0: float  # charging start (epoch)
    times: list[float]  # step boundaries (epoch), len n+1
    cum: list[float]  # cumulative Wh at boundaries
    powers: list[float]  # per step, len n
    socs: list[float]  # at boundaries

    @property
    def end(self) -> float:
        return self.times[-1]

    def at(self, t: float) -> tuple[float, float, float]:
        """(cumulative Wh, power W, SoC) at time t."""
        if t <= self.t0 or len(self.times) < 2:
            return 0.0, 0.0, self.socs[0]
        if t >= self.times[-1]:
            return self.cum[-1], 0.0, self.socs[-1]
        i = bisect.bisect_right(self.times, t) - 1
        a, b = self.times[i], self.times[i + 1]
        f = (t - a) / (b - a) if b > a else 1.0
        return (
            self.cum[i] + (self.cum[i + 1] - self.cum[i]) * f,
            self.powers[i],
            self.socs[i] + (self.socs[i + 1] - self.socs[i]) * f,
        )


# ---------------------------------------------------------------------------------------------
# the generator


class _Generator:
    def __init__(self, config: FleetConfig) -> None:
        self.cfg = config
        self.t0 = config.start.timestamp()
        self.t1 = config.end.timestamp()
        self.sessions: list[SessionTruth] = []
        self.faults: list[FaultTruth] = []
        self.offline: list[OfflineTruth] = []
        self.resets: list[ResetTruth] = []
        self.plans: dict[str, _CpPlan] = {}

    # ---- plan: reboots, faults, offline windows, closures ----------------------------------

    def _plan_cp(self, cp: ChargePointConfig, site: SiteConfig) -> _CpPlan:
        cfg, t0, t1 = self.cfg, self.t0, self.t1
        rng = _rng(cfg.seed, cp.charge_point_id, "plan")
        cls = cp.current_type.lower()
        evses = []
        for e in range(1, cp.evse_count + 1):
            # lifetime counter: older chargers have seen more energy
            reg = int(rng.uniform(0, 4_000_000 if cls == "ac" else 60_000_000))
            evses.append(_Evse(cp, e, cls, reg, reg_points=[(t0, reg)]))
        degrade = None
        if cp.degrading:
            fail_at = t0 + (t1 - t0) * rng.uniform(0.55, 0.8)
            degrade = (max(t0, fail_at - cfg.degrade_days * 86400.0), fail_at)
        plan = _CpPlan(cp, site, evses, [], [], degrade)
        codes = AC_FAULT_CODES if cls == "ac" else DC_FAULT_CODES

        blocks: dict[int, list[_Block]] = {e.evse_id: [] for e in evses}
        reboots: list[tuple[float, float, bool, str]] = []

        def add_block(b: _Block, evse_id: int) -> None:
            for e in evses if evse_id == 0 else [evses[evse_id - 1]]:
                blocks[e.evse_id].append(b)

        # random faults (more in the degrade window)
        boost = 10.0
        rate_max = cfg.fault_rate_per_day * (1 + (boost if degrade else 0))
        for t in _poisson_times(rng, rate_max, t0, t1):
            x = plan.degrade_x(t) if degrade and t < degrade[1] else 0.0
            if rng.random() > (1 + boost * x) / (1 + (boost if degrade else 0)):
                continue
            evse_id = 0 if rng.random() < 0.15 else rng.randint(1, cp.evse_count)
            if x > 0:
                dur = min(_lognormal(rng, 600, 0.8), 4 * 3600)
                code = "HighTemperature" if cls == "dc" else "OverCurrentFailure"
                if rng.random() < 0.4:
                    code = "PowerSwitchFailure"
            else:
                dur = min(_lognormal(rng, 5400, 1.2), 3 * 86400)
                code = _weighted(rng, codes)
            reboot = rng.random() < 0.5
            b = _Block(t, t + dur, "fault", code, f"E{rng.randint(100, 999)}", reboot)
            add_block(b, evse_id)
            up = t + dur + rng.uniform(40, 150)
            if reboot:
                add_block(_Block(t + dur, up, "reboot"), 0)
            self.faults.append(
                FaultTruth(
                    cp.charge_point_id, evse_id, _dt(t), _dt(min(t + dur, t1)), code, "fault"
                )
            )
            if reboot:
                reboots.append((t + dur, up, rng.random() < cfg.meter_reset_prob, "LocalReset"))
        # the final failure of a degrading charger
        if degrade:
            fail_at = degrade[1]
            dur = cfg.repair_days * 86400.0 * rng.uniform(0.6, 1.4)
            code = "PowerSwitchFailure" if cls == "dc" else "InternalError"
            b = _Block(
                fail_at,
                fail_at + dur,
                "failure",
                code,
                "E-PSU-017" if cls == "dc" else "E-RLY-004",
                True,
            )
            add_block(b, 0)
            self.faults.append(
                FaultTruth(
                    cp.charge_point_id,
                    0,
                    _dt(fail_at),
                    _dt(min(fail_at + dur, t1)),
                    code,
                    "failure",
                )
            )
            up = fail_at + dur + rng.uniform(60, 300)
            add_block(_Block(fail_at + dur, up, "reboot"), 0)
            reboots.append(
                (fail_at + dur, up, rng.random() < cfg.meter_reset_prob, "FirmwareUpdate")
            )
        # spontaneous reboots (watchdog, power blips)
        for t in _poisson_times(rng, cfg.reboot_rate_per_day, t0, t1):
            up = t + rng.uniform(30, 120)
            reboots.append((t, up, rng.random() < cfg.meter_reset_prob, "Watchdog"))
            add_block(_Block(t, up, "reboot"), 0)
        # operating-hours closures
        if site.operating_hours is not None:
            tz = ZoneInfo(site.timezone)
            day = _dt(t0).astimezone(tz).date() - timedelta(days=1)
            last = _dt(t1).astimezone(tz).date() + timedelta(days=1)
            prev_close = None
            while day <= last:
                spans = _open_spans(site, day, tz)
                for a, b_ in spans:
                    if prev_close is not None and a > prev_close:
                        add_block(_Block(prev_close, a, "closed"), 0)
                    prev_close = b_
                day += timedelta(days=1)
        for e in evses:
            bl = sorted(blocks[e.evse_id], key=lambda b: (b.start, b.end))
            merged: list[_Block] = []
            for b in bl:
                if merged and b.start < merged[-1].end:
                    last_b = merged[-1]
                    if b.end > last_b.end:
                        # extend; the stronger kind wins
                        prio = {"failure": 3, "fault": 2, "reboot": 1, "closed": 0}
                        if prio[b.kind] > prio[last_b.kind]:
                            merged[-1] = _Block(
                                last_b.start,
                                b.end,
                                b.kind,
                                b.error_code,
                                b.vendor_code,
                                b.reboot_after,
                            )
                        else:
                            last_b.end = b.end
                    continue
                merged.append(
                    _Block(b.start, b.end, b.kind, b.error_code, b.vendor_code, b.reboot_after)
                )
            e.blocks = merged
            e.block_starts = [b.start for b in merged]
        reboots.sort()
        plan.reboots = reboots
        # offline windows (not overlapping reboots)
        rate_max = cfg.offline_rate_per_day * (7.0 if degrade else 1.0)
        last_end = t0 + 600
        for t in _poisson_times(rng, rate_max, t0 + 600, t1):
            if degrade and rng.random() > (1 + 6 * plan.degrade_x(t)) / 7.0:
                continue
            dur = min(_lognormal(rng, 900, 1.2), 12 * 3600)
            if t < last_end + 300:
                continue
            if any(a - 600 < t + dur and t < b + 600 for a, b, _, _ in reboots):
                continue
            plan.offline.append((t, min(t + dur, t1)))
            last_end = t + dur
        return plan

    # ---- demand ----------------------------------------------------------------------------

    def _site_arrivals(
        self, site: SiteConfig, cls: str, n_ports: int, profile: dict
    ) -> list[float]:
        rng = _rng(self.cfg.seed, site.site_id, cls, "arrivals")
        tz = ZoneInfo(site.timezone)
        p = profile[cls]
        out = []
        day = _dt(self.t0).astimezone(tz).date()
        last = _dt(self.t1).astimezone(tz).date()
        scale = site.demand_scale * self.cfg.demand_scale
        while day <= last:
            wd = day.weekday()
            pmf = p["arrival_weekend"] if wd >= 5 else p["arrival_weekday"]
            spans = _open_spans(site, day, tz)
            n = _poisson(rng, n_ports * p["sessions_per_port_day"][wd] * scale)
            if spans and n:
                for _ in range(n):
                    for _attempt in range(20):
                        h = rng.choices(range(24), weights=pmf)[0]
                        sec = rng.random() * 3600.0
                        # local wall-clock hour (DST-aware)
                        t = datetime.combine(day, time(h), tzinfo=tz).timestamp() + sec
                        if any(a <= t < b - 900 for a, b in spans):
                            if self.t0 <= t < self.t1:
                                out.append(t)
                            break
            day += timedelta(days=1)
        out.sort()
        return out

    # ---- sessions ----------------------------------------------------------------------------

    def _choose_car(self, rng: random.Random, need_kwh: float | None = None):
        for _ in range(8):
            car = rng.choices(CARS, weights=_CAR_WEIGHTS)[0]
            if need_kwh is None or car[1] * 0.92 >= need_kwh:
                return car
        return max(CARS, key=lambda c: c[1])

    def _run_site(self, site: SiteConfig, plans: list[_CpPlan]) -> None:
        profile = site_profile(site.site_type)
        tz = ZoneInfo(site.timezone)
        tokens_rng = _rng(self.cfg.seed, site.site_id, "tokens")
        n_ports = sum(len(p.evses) for p in plans)
        pool_size = max(20, 4 * n_ports) if site.site_type in ("workplace", "residential") else 3000
        token_pool = [
            "".join(tokens_rng.choice("0123456789ABCDEF") for _ in range(14))
            for _ in range(pool_size)
        ]
        for cls in ("ac", "dc"):
            ports = [(p, e) for p in plans for e in p.evses if e.cls == cls]
            if not ports:
                continue
            rng = _rng(self.cfg.seed, site.site_id, cls, "sessions")
            for t in self._site_arrivals(site, cls, len(ports), profile):
                free = [(p, e) for p, e in ports if e.busy_until <= t and e.blocked_at(t) is None]
                if not free:
                    continue
                plan, evse = free[rng.randrange(len(free))]
                token = token_pool[int(len(token_pool) * rng.random() ** 2)]
                self._session(rng, plan, evse, t, profile[cls], tz, token)

    def _session(
        self,
        rng: random.Random,
        plan: _CpPlan,
        evse: _Evse,
        t_plug: float,
        prof: dict,
        tz: ZoneInfo,
        token: str,
    ) -> None:
        cfg, cp, site = self.cfg, plan.cp, plan.site
        # apply register resets from reboots before this session
        for _down, up, reset, _ in plan.reboots:
            if reset and evse.reg_points[-1][0] < up <= t_plug:
                evse.register = 0
                evse.reg_points.append((up, 0))
        x = plan.degrade_x(t_plug) if plan.degrade and t_plug < plan.degrade[1] else 0.0
        derate = 1.0 - 0.5 * x
        failed = rng.random() < cfg.failed_start_prob + 0.5 * x
        local_hour = _dt(t_plug).astimezone(tz).hour

        # stay and energy asked
        dwell = prof["dwell"]
        energy = prof["energy"]
        target_soc = None
        if dwell["kind"] == "calibrated":
            band = next(
                b for b in dwell["by_arrival_hour"] if b["hours"][0] <= local_hour < b["hours"][1]
            )
            stay_s = max(120.0, _sample_quantiles(rng, band["quantiles"]) * 3600.0)
        elif dwell["kind"] == "lognormal":
            stay_h = min(
                max(_lognormal(rng, dwell["median_h"], dwell["sigma"]), dwell["min_h"]),
                dwell["max_h"],
            )
            stay_s = stay_h * 3600.0
        else:
            stay_s = 4 * 3600.0  # cap for "until charged"
        if energy["kind"] == "calibrated":
            stay_h = stay_s / 3600.0
            band = next(
                b
                for b in energy["by_dwell_h"]
                if b["dwell_h"][0] <= stay_h
                and (b["dwell_h"][1] is None or stay_h < b["dwell_h"][1])
            )
            want_kwh = max(0.05, _sample_quantiles(rng, band["quantiles"]))
            car = self._choose_car(rng, want_kwh)
            target_soc = rng.uniform(0.8, 1.0)
            soc0 = target_soc - want_kwh / car[1]
            if soc0 < 0.03:
                soc0 = 0.03
                want_kwh = (target_soc - soc0) * car[1]
        else:
            car = self._choose_car(rng)
            a, b = energy["arrival_soc"]
            soc0 = min(0.95, max(0.03, rng.betavariate(a, b)))
            target_soc = rng.uniform(*energy["target_soc"])
            want_kwh = max(0.0, target_soc - soc0) * car[1]

        # closing time / blocks cut the stay short
        t_auth = t_plug + rng.uniform(8, 45)
        t_start = t_auth + rng.uniform(1, 4)
        t_charge = t_start + rng.uniform(3, 15)
        if failed:
            want_kwh = rng.uniform(0, 0.08)
            stay_s = rng.uniform(40, 110) + (t_start - t_plug)
        max_charge_s = max(0.0, t_plug + stay_s - t_charge)
        curve_raw = _charge_curve(
            evse.cls, cp.max_power_w, car, soc0, want_kwh * 1000.0, max_charge_s, derate
        )
        cum, powers, socs = curve_raw
        times = [t_charge]
        for i in range(len(powers)):
            de = cum[i + 1] - cum[i]
            times.append(times[-1] + (de * 3600.0 / powers[i] if powers[i] > 0 else STEP_S))
        curve = _Curve(t_charge, times, cum, powers, socs)
        if dwell["kind"] == "until_charged" and not failed:
            stay_s = (curve.end - t_plug) + _lognormal(
                rng, dwell["overstay_median_min"] * 60.0, dwell["overstay_sigma"]
            )
        t_unplug = t_plug + stay_s
        cut: _Block | None = None
        nb = evse.next_block_after(t_plug)
        if nb is not None and nb.start < t_unplug:
            if nb.kind == "closed":
                t_unplug = max(t_charge + 60, nb.start - rng.uniform(120, 900))
            else:
                cut = nb
                t_unplug = nb.start
        # the stop
        local_stop = rng.random() < 0.6 and cut is None
        t_stop = t_unplug - rng.uniform(20, 90) if local_stop else t_unplug
        t_stop = max(t_stop, t_start + 20)
        if t_unplug < t_stop:
            t_unplug = t_stop
        e_stop, _, soc_stop = curve.at(t_stop)
        e_stop_wh = int(round(e_stop))
        if failed:
            reason = "Other"
        elif cut is not None:
            reason = (
                "Reboot" if cut.kind == "reboot" else ("Other" if cut.kind != "closed" else "Local")
            )
        else:
            reason = "Local" if local_stop else "EVDisconnected"
        missing = rng.random() < cfg.missing_stop_prob
        tx_key = _uuid(rng)
        meter_start = evse.register
        meter_stop = meter_start + e_stop_wh
        conn = 1 if cp.connectors_per_evse == 1 else rng.randint(1, cp.connectors_per_evse)
        open_at_end = t_stop >= self.t1
        charging_end = curve.end if curve.end < t_stop else None

        # --- events ---
        ev, c = evse.evse_id, conn
        dc = evse.cls == "dc"
        battery_v = car[4]
        phases, v_phase = (1, 0.0) if dc else _ac_phases(site, min(cp.max_power_w, car[2] * 1000))

        def sample(t: float, reg: int) -> dict[str, Any]:
            _, p, soc = curve.at(t)
            if dc:
                v = battery_v * (0.88 + 0.2 * soc)
                temp = (
                    28.0
                    + 14.0 * p / cp.max_power_w
                    + 28.0 * plan.degrade_x(t)
                    + rng.uniform(-1.5, 1.5)
                )
                return {
                    "energy_wh": reg,
                    "power_w": round(p, 1),
                    "current_a": round(p / v, 2),
                    "voltage_v": round(v, 1),
                    "soc": round(soc * 100.0, 1),
                    "temperature_c": round(temp, 1),
                }
            v = v_phase + rng.uniform(-3, 3)
            return {
                "energy_wh": reg,
                "power_w": round(p, 1),
                "current_a": round(p / (v * phases), 2),
                "voltage_v": round(v, 1),
                "phases": phases,
            }

        plan.add(t_plug, "status", ev, c, status="Preparing")
        if cp.connectors_per_evse > 1:
            for other in range(1, cp.connectors_per_evse + 1):
                if other != c:
                    plan.add(t_plug, "status", ev, other, status="Unavailable")
        plan.add(t_auth, "authorize", ev, c, id_token=token)
        plan.add(
            t_start,
            "tx_start",
            ev,
            c,
            tx_key,
            id_token=token,
            meter_start=meter_start,
            sample=sample(t_start, meter_start),
        )
        plan.add(t_charge, "status", ev, c, tx_key, status="Charging")
        # periodic samples
        t = t_start + cfg.meter_interval_s
        end_tx = min(t_stop, self.t1)
        while t < end_tx:
            reg = meter_start + int(round(curve.at(t)[0]))
            plan.add(t, "meter", ev, c, tx_key, context="Sample.Periodic", sample=sample(t, reg))
            t += cfg.meter_interval_s
        if failed:
            plan.add(
                t_charge + rng.uniform(5, 20),
                "status",
                ev,
                c,
                tx_key,
                status="SuspendedEVSE",
                error_code="EVCommunicationError" if x > 0.2 else "NoError",
            )
        elif charging_end is not None and charging_end < t_stop - 30:
            plan.add(charging_end, "status", ev, c, tx_key, status="SuspendedEV")
        if not missing:
            plan.add(
                t_stop,
                "tx_stop",
                ev,
                c,
                tx_key,
                meter_stop=meter_stop,
                reason=reason,
                id_token=token if local_stop else None,
                meter_start=meter_start,
                t_start=t_start,
                sample=sample(t_stop, meter_stop),
                begin_sample=sample(t_start, meter_start),
            )
        if cut is None:
            if local_stop:
                plan.add(t_stop + 0.5, "status", ev, c, status="Finishing")
            plan.add(t_unplug + 1, "status", ev, c, status="Available")
            if cp.connectors_per_evse > 1:
                for other in range(1, cp.connectors_per_evse + 1):
                    if other != c:
                        plan.add(t_unplug + 1, "status", ev, other, status="Available")
        evse.busy_until = t_unplug + 2 if cut is None else cut.end
        evse.register = meter_stop
        evse.reg_points.append((t_start, meter_start))
        evse.reg_points.append((t_stop, meter_stop))
        evse.tx_spans.append((t_start, t_stop, tx_key, meter_start))
        evse.curves[tx_key] = curve
        self.sessions.append(
            SessionTruth(
                charge_point_id=cp.charge_point_id,
                site_id=site.site_id,
                ocpp_version=cp.ocpp_version,
                current_type=cp.current_type,
                evse_id=ev,
                connector_id=c,
                transaction_id=tx_key,
                id_token=token,
                plug_in=_dt(t_plug),
                start=_dt(t_start),
                stop=None if open_at_end else _dt(t_stop),
                unplug=None if t_unplug >= self.t1 else _dt(t_unplug),
                charging_end=_dt(charging_end) if charging_end else None,
                energy_wh=int(round(curve.at(min(t_stop, self.t1))[0]))
                if open_at_end
                else e_stop_wh,
                meter_start=meter_start,
                meter_stop=meter_stop
                if not open_at_end
                else meter_start + int(round(curve.at(self.t1)[0])),
                stop_reason=None if open_at_end else reason,
                missing_stop=missing and not open_at_end,
                failed_start=failed,
                arrival_soc=round(soc0 * 100, 1),
                final_soc=round(soc_stop * 100, 1),
            )
        )

    # ---- blocks, reboots, offline -> events --------------------------------------------------

    def _block_events(self, plan: _CpPlan) -> None:
        cp = plan.cp
        notify = self.cfg.send_notify_event and cp.ocpp_version == "2.0.1"
        for e in plan.evses:
            for b in e.blocks:
                if b.kind == "reboot":
                    continue
                conns = range(1, cp.connectors_per_evse + 1)
                for c in conns:
                    if b.kind == "closed":
                        plan.add(b.start, "status", e.evse_id, c, status="Unavailable")
                    else:
                        plan.add(
                            b.start + 1,
                            "status",
                            e.evse_id,
                            c,
                            status="Faulted",
                            error_code=b.error_code,
                            vendor_error_code=b.vendor_code,
                            info=b.kind,
                        )
                    if not b.reboot_after:
                        plan.add(b.end, "status", e.evse_id, c, status="Available")
                if notify and b.kind != "closed":
                    plan.add(
                        b.start + 1, "notify", e.evse_id, 1, problem=True, error_code=b.error_code
                    )
                    plan.add(b.end, "notify", e.evse_id, 1, problem=False, error_code=b.error_code)
        for down, up, reset, reason in plan.reboots:
            if down >= self.t1:
                continue
            plan.add(down + 2, "disconnect", reason="reboot")
            if reset:
                before = {}
                for e in plan.evses:
                    before[e.evse_id] = max(
                        (r for tt, r in e.reg_points if tt <= up), default=e.register
                    )
                self.resets.append(ResetTruth(cp.charge_point_id, _dt(up), before))
            plan.add(up, "boot", reason=reason, reset=reset)
            for e in plan.evses:
                blk = e.blocked_at(up + 5)
                for c in range(1, cp.connectors_per_evse + 1):
                    st = (
                        "Available"
                        if blk is None
                        else ("Unavailable" if blk.kind == "closed" else "Faulted")
                    )
                    plan.add(up + 1, "status", e.evse_id, c, status=st)

    def _clock_events(self, plan: _CpPlan) -> None:
        step = self.cfg.clock_aligned_interval_s
        if not step:
            return
        first = math.ceil(self.t0 / step) * step
        for e in plan.evses:
            pts = sorted(e.reg_points)
            # add resets as points
            for _down, up, reset, _ in plan.reboots:
                if reset:
                    pts.append((up, 0))
            pts.sort()
            spans = e.tx_spans
            curves = e.curves
            si = 0
            t = first
            while t < self.t1:
                while si < len(spans) and spans[si][1] <= t:
                    si += 1
                if si < len(spans) and spans[si][0] < t < spans[si][1]:
                    t_start, _t_stop, key, m0 = spans[si]
                    reg = m0 + int(round(curves[key].at(t)[0]))
                    plan.add(
                        t,
                        "meter",
                        e.evse_id,
                        1,
                        key,
                        context="Sample.Clock",
                        sample={"energy_wh": reg},
                    )
                else:
                    i = bisect.bisect_right(pts, (t, math.inf)) - 1
                    reg = pts[i][1] if i >= 0 else e.register
                    plan.add(
                        t,
                        "meter",
                        e.evse_id,
                        0,
                        None,
                        context="Sample.Clock",
                        sample={"energy_wh": reg},
                    )
                t += step

    def _finish(self, plan: _CpPlan) -> list[Event]:
        cfg, cp = self.cfg, plan.cp
        rng = _rng(cfg.seed, cp.charge_point_id, "finish")
        boot_at = self.t0 + rng.uniform(0, 30)
        plan.add(boot_at, "boot", reason="PowerUp", reset=False)
        for e in plan.evses:
            blk = e.blocked_at(boot_at + 2)
            for c in range(1, cp.connectors_per_evse + 1):
                st = (
                    "Available"
                    if blk is None
                    else ("Unavailable" if blk.kind == "closed" else "Faulted")
                )
                plan.add(boot_at + 1, "status", e.evse_id, c, status=st)
        evs = [
            e
            for e in plan.events
            if self.t0 <= e.ts < self.t1 or e.kind == "boot" and e.ts < self.t1
        ]
        evs.sort(key=lambda e: (e.ts, KIND_ORDER[e.kind], e.seq))
        # offline windows: queue transaction messages, collapse statuses, drop the rest
        out: list[Event] = []
        windows = plan.offline
        wi = 0
        pending: list[Event] = []
        last_status: dict[tuple[int, int], Event] = {}
        truth: OfflineTruth | None = None
        for e in evs:
            while wi < len(windows) and e.ts >= windows[wi][1]:
                a, b = windows[wi]
                if truth is None:
                    truth = OfflineTruth(cp.charge_point_id, _dt(a), _dt(b))
                    plan.seq += 1
                    out.append(Event(a, a, "disconnect", data={"reason": "offline"}, seq=plan.seq))
                self._flush_offline(plan, out, b, pending, last_status, truth)
                pending, last_status, truth = [], {}, None
                wi += 1
            if wi < len(windows) and windows[wi][0] <= e.ts < windows[wi][1]:
                if truth is None:
                    a = windows[wi][0]
                    truth = OfflineTruth(cp.charge_point_id, _dt(a), _dt(windows[wi][1]))
                    plan.seq += 1
                    out.append(Event(a, a, "disconnect", data={"reason": "offline"}, seq=plan.seq))
                if e.kind in TX_KINDS or (e.kind == "meter" and e.tx is not None):
                    pending.append(e)
                elif e.kind == "status":
                    last_status[(e.evse, e.connector)] = e
                continue
            out.append(e)
        while wi < len(windows):
            a, b = windows[wi]
            if truth is None:
                truth = OfflineTruth(cp.charge_point_id, _dt(a), _dt(b))
                plan.seq += 1
                out.append(Event(a, a, "disconnect", data={"reason": "offline"}, seq=plan.seq))
            if b < self.t1:
                self._flush_offline(plan, out, b, pending, last_status, truth)
            else:
                self.offline.append(truth)
            pending, last_status, truth = [], {}, None
            wi += 1
        out.sort(key=lambda e: (e.send_at, e.seq if e.kind != "reconnect" else -1))
        return self._heartbeats(plan, out)

    def _flush_offline(self, plan, out, b, pending, last_status, truth) -> None:
        plan.seq += 1
        out.append(Event(b, b, "reconnect", seq=plan.seq))
        queued = sorted(pending + list(last_status.values()), key=lambda e: e.seq)
        for q in queued:
            q.send_at = b
            q.queued = True
            out.append(q)
        truth.queued_messages = len(queued)
        self.offline.append(truth)

    def _heartbeats(self, plan: _CpPlan, events: list[Event]) -> list[Event]:
        h = self.cfg.heartbeat_interval_s
        out: list[Event] = []
        connected = False
        last = None
        for e in events:
            if connected and last is not None:
                t = last + h
                while t < e.send_at and t < self.t1:
                    plan.seq += 1
                    out.append(Event(t, t, "heartbeat", seq=plan.seq))
                    t += h
            out.append(e)
            if e.kind == "disconnect":
                connected = False
            elif e.kind in ("boot", "reconnect"):
                connected = True
            last = e.send_at
        if connected and last is not None:
            t = last + h
            while t < self.t1:
                plan.seq += 1
                out.append(Event(t, t, "heartbeat", seq=plan.seq))
                t += h
        return out

    # ---- all ---------------------------------------------------------------------------------

    def run(self) -> FleetTimeline:
        cfg = self.cfg
        by_site: dict[str, list[_CpPlan]] = {}
        for cp in cfg.charge_points:
            site = cfg.site(cp.site_id)
            plan = self._plan_cp(cp, site)
            self.plans[cp.charge_point_id] = plan
            by_site.setdefault(site.site_id, []).append(plan)
        for site in cfg.sites:
            if site.site_id in by_site:
                self._run_site(site, by_site[site.site_id])
        timelines = {}
        for cp in cfg.charge_points:
            plan = self.plans[cp.charge_point_id]
            self._block_events(plan)
            self._clock_events(plan)
            timelines[cp.charge_point_id] = ChargePointTimeline(cp, plan.site, self._finish(plan))
        self.sessions.sort(key=lambda s: (s.start, s.charge_point_id, s.evse_id))
        self.offline.sort(key=lambda o: (o.start, o.charge_point_id))
        self.faults.sort(key=lambda f: (f.start, f.charge_point_id))
        return FleetTimeline(cfg, timelines, self.sessions, self.faults, self.offline, self.resets)


def generate_fleet(config: FleetConfig) -> FleetTimeline:
    """Every charge point's timeline and the ground truth. Pure and deterministic under the seed."""
    config.validate()
    return _Generator(config).run()
