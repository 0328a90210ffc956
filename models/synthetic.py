"""A seeded synthetic fleet history for training and testing the maintenance model in seconds.

Why not the OCPP simulator itself: `ingest/simulator` replays every message over websockets
(minutes for a small fleet) and even its offline timeline generator integrates each session
minute by minute and gives a degrading charger a single failure per run (between 55 % and 80 %
of it), too few failures for a holdout. This module draws the same kinds of events straight
into the feature inputs (`models.features.FeatureInputs`) and the outage list
(`models.labels.OUTAGES`), so the feature builder runs the same code as on the real tables.

Degradation follows `ingest/simulator/behaviour.py` (the numbers are copied, not imported:
`models/` imports nothing project-specific): over `degrade_days` before a failure a ramp x goes
0 -> 1, and with it
- transient faults: rate x (1 + 10 x), short (median 10 min), HighTemperature (DC) or
  OverCurrentFailure (AC), 40 % PowerSwitchFailure;
- failed starts: probability failed_start_prob + 0.5 x (under 2 minutes and 0.1 kWh);
- derating: delivered power x (1 - 0.5 x);
- offline windows: rate x (1 + 6 x);
then the failure (InternalError / PowerSwitchFailure on every connector, ~repair_days) and a
reboot. Unlike the simulator a degrading charger fails repeatedly (about every
`failure_interval_days`, 20 by default), and `sudden_share` of failures come with no warning at all; other
charge points only have the random faults every charger has (rate fault_rate_per_day, median
90 minutes, the simulator's error-code mix), which no feature can foresee.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import numpy as np
import polars as pl

from models.features import (
    CONNECTION,
    CONNECTORS,
    FAULTS,
    FIRMWARE,
    OFFLINE,
    SESSIONS,
    FeatureInputs,
)
from models.labels import OUTAGES

DAY_S = 86400.0
# (model, current type, rated W, firmware versions, car acceptance kW options)
MODELS = [
    ("Terra AC W22", "AC", 22000.0, ("1.8.2", "1.9.0"), (7.4, 11.0, 11.0, 11.5)),
    ("Commander 2", "AC", 7400.0, ("5.3.1", "5.4.0"), (7.4, 7.4, 11.0)),
    ("Terra 54", "DC", 50000.0, ("2.4.0", "2.5.1"), (50.0, 100.0, 120.0, 170.0)),
    ("Kempower S", "DC", 150000.0, ("1.40", "1.42"), (50.0, 120.0, 170.0, 230.0, 250.0)),
]
AC_CODES = (
    ["GroundFailure", "OverCurrentFailure", "EVCommunicationError", "ConnectorLockFailure",
     "ReaderFailure", "InternalError"], [0.25, 0.15, 0.2, 0.15, 0.1, 0.15],
)  # fmt: skip
DC_CODES = (
    ["HighTemperature", "InternalError", "PowerSwitchFailure", "EVCommunicationError",
     "GroundFailure", "UnderVoltage", "ReaderFailure"], [0.2, 0.2, 0.15, 0.2, 0.1, 0.05, 0.1],
)  # fmt: skip


@dataclass(frozen=True)
class SyntheticFleet:
    charge_points: int = 100
    evses_per_cp: int = 2
    days: int = 120
    start: date = date(2024, 1, 1)
    seed: int = 7
    degrading_share: float = 0.3
    failure_interval_days: float = 20.0
    degrade_days: float = 4.0
    repair_days: float = 2.0
    sudden_share: float = 0.25
    fault_rate_per_day: float = 0.03
    offline_rate_per_day: float = 0.06
    failed_start_prob: float = 0.02
    sessions_per_port_day: float = 3.0
    heartbeat_interval_s: int = 900
    firmware_update_share: float = 0.3


@dataclass(frozen=True)
class SyntheticHistory:
    inputs: FeatureInputs
    outages: pl.DataFrame
    first_day: date
    last_day: date
    degrading: frozenset[str]  # charge point ids


def _ramp(t: np.ndarray, windows: list[tuple[float, float]]) -> np.ndarray:
    x = np.zeros_like(t, dtype=float)
    for a, b in windows:
        inside = (t >= a) & (t < b)
        x[inside] = np.maximum(x[inside], (t[inside] - a) / (b - a))
    return x


def _lognormal(rng: np.random.Generator, median: float, sigma: float, n: int) -> np.ndarray:
    return median * np.exp(sigma * rng.standard_normal(n))


def _blocked(t: np.ndarray, spans: list[tuple[float, float]]) -> np.ndarray:
    out = np.zeros_like(t, dtype=bool)
    for a, b in spans:
        out |= (t >= a) & (t < b)
    return out


def _ts(seconds: list | np.ndarray) -> pl.Series:
    return (
        pl.Series(np.asarray(seconds, dtype=float) * 1e6)
        .cast(pl.Int64)
        .cast(pl.Datetime("us", "UTC"))
    )


def generate(cfg: SyntheticFleet = SyntheticFleet()) -> SyntheticHistory:  # noqa: B008
    """The whole history, deterministic under `cfg.seed`."""
    t0 = datetime.combine(cfg.start, time(0), tzinfo=UTC).timestamp()
    t1 = t0 + cfg.days * DAY_S
    connectors, faults, sessions, conn, firmware, offline, outages = [], [], [], [], [], [], []
    degrading: set[str] = set()
    for i in range(cfg.charge_points):
        rng = np.random.default_rng([cfg.seed, i])
        cp = f"SYN-{i:04d}"
        model, cls, rated, versions, cars = MODELS[int(rng.integers(len(MODELS)))]
        fw0 = versions[0]
        first_seen = t0 - rng.uniform(0, 400) * DAY_S
        evses = list(range(1, cfg.evses_per_cp + 1))
        connectors += [(cp, e, 1, model, fw0, rated, first_seen) for e in evses]
        # failures of a degrading charger, each after a degrade window unless sudden
        windows, failures = [], []
        if rng.random() < cfg.degrading_share:
            degrading.add(cp)
            t = t0 + rng.uniform(5, cfg.failure_interval_days) * DAY_S
            while t < t1:
                if rng.random() >= cfg.sudden_share:
                    windows.append((t - cfg.degrade_days * rng.uniform(0.7, 1.3) * DAY_S, t))
                dur = cfg.repair_days * rng.uniform(0.6, 1.4) * DAY_S
                failures.append((t, t + dur))
                t += dur + rng.exponential(cfg.failure_interval_days) * DAY_S
        # faults: thinning as in the simulator (boost 10 in the degrade window)
        boost = 10.0 if windows else 0.0
        n = rng.poisson(cfg.fault_rate_per_day * (1 + boost) * cfg.days)
        ft = np.sort(rng.uniform(t0, t1, n))
        x = _ramp(ft, windows)
        keep = rng.random(n) < (1 + boost * x) / (1 + boost)
        ft, x = ft[keep], x[keep]
        blocks: dict[int, list[tuple[float, float]]] = {e: [] for e in evses}
        reboots = []
        codes = AC_CODES if cls == "AC" else DC_CODES
        for t, xi in zip(ft, x, strict=True):
            on = evses if rng.random() < 0.15 else [int(rng.choice(evses))]
            if xi > 0:
                dur = min(_lognormal(rng, 600, 0.8, 1)[0], 4 * 3600)
                code = "HighTemperature" if cls == "DC" else "OverCurrentFailure"
                code = "PowerSwitchFailure" if rng.random() < 0.4 else code
            else:
                dur = min(_lognormal(rng, 5400, 1.2, 1)[0], 3 * DAY_S)
                code = str(rng.choice(codes[0], p=codes[1]))
            for e in on:
                blocks[e].append((t, t + dur))
                faults.append((t + 1, cp, e, 1, code))
                outages.append((cp, e, 1, t, min(t + dur, t1), "faulted", False))
            if rng.random() < 0.5:
                reboots.append(t + dur + rng.uniform(40, 150))
        for a, b in failures:
            code = "PowerSwitchFailure" if cls == "DC" else "InternalError"
            for e in evses:
                blocks[e].append((a, b))
                faults.append((a + 1, cp, e, 1, code))
                outages.append((cp, e, 1, a, min(b, t1), "faulted", False))
            reboots.append(b + rng.uniform(60, 300))
        # offline windows (rate x (1 + 6 x) in the degrade window)
        om = 7.0 if windows else 1.0
        n = rng.poisson(cfg.offline_rate_per_day * om * cfg.days)
        ot = np.sort(rng.uniform(t0, t1, n))
        ot = ot[rng.random(n) < (1 + 6 * _ramp(ot, windows)) / om]
        spans = [
            (a, min(a + min(d, 12 * 3600), t1))
            for a, d in zip(ot, _lognormal(rng, 900, 1.2, len(ot)), strict=True)
        ]
        # connection events: heartbeats while online, disconnect/connect around offline windows,
        # boots (with the firmware they report) at the start, after reboots and at an update
        hb = np.arange(t0 + rng.uniform(0, cfg.heartbeat_interval_s), t1, cfg.heartbeat_interval_s)
        hb = hb[~_blocked(hb, spans)]
        conn += [(t, cp, "heartbeat") for t in hb]
        for a, b in spans:
            conn += [(a, cp, "disconnect"), (b, cp, "connect")]
        fw_now, boots = fw0, [(t0 + rng.uniform(0, 30), fw0)]
        update_at = (
            t0 + rng.uniform(0.1, 0.9) * (t1 - t0)
            if rng.random() < cfg.firmware_update_share
            else None
        )
        for t in sorted(reboots + ([update_at] if update_at else [])):
            if t >= t1:
                continue
            if t == update_at:
                fw_now = versions[1]
            boots.append((t, fw_now))
        for t, fw in boots:
            conn += [(t, cp, "boot")]
            firmware.append((t, cp, fw))
        # offline minutes per connector-day
        for a, b in spans:
            d = a
            while d < b:
                day_end = (np.floor((d - t0) / DAY_S) + 1) * DAY_S + t0
                day = cfg.start + timedelta(days=int((d - t0) // DAY_S))
                for e in evses:
                    offline.append((day, cp, e, 1, (min(b, day_end) - d) / 60))
                d = day_end
        # sessions: Poisson arrivals per port, skipped while the port is blocked
        for e in evses:
            n = rng.poisson(cfg.sessions_per_port_day * cfg.days)
            st = np.sort(rng.uniform(t0, t1, n))
            st = st[~_blocked(st, blocks[e])]
            x = _ramp(st, windows)
            failed = rng.random(len(st)) < cfg.failed_start_prob + 0.5 * x
            car_kw = rng.choice(cars, len(st)) * 1000
            peak = np.minimum(rated, car_kw) * (1 - 0.5 * x) * rng.uniform(0.95, 1.0, len(st))
            dur = np.clip(_lognormal(rng, 90, 0.6, len(st)), 5, 600)
            want = _lognormal(rng, 15000 if cls == "AC" else 30000, 0.5, len(st))
            energy = np.minimum(want, peak * 0.85 * dur / 60)
            dur = np.where(failed, rng.uniform(40, 110, len(st)) / 60, dur)
            energy = np.where(failed, rng.uniform(0, 80, len(st)), energy)
            peak = np.where(failed, np.where(energy > 0, peak * 0.2, np.nan), peak)
            sessions += list(
                zip(
                    [cp] * len(st), [e] * len(st), [1] * len(st), st, dur, energy, peak, strict=True
                )
            )

    def frame(rows: list, schema: dict, ts_cols: tuple[str, ...]) -> pl.DataFrame:
        cols = list(zip(*rows, strict=True)) if rows else [[] for _ in schema]
        data = {}
        for (name, dtype), values in zip(schema.items(), cols, strict=True):
            data[name] = (
                _ts(values) if name in ts_cols else pl.Series(values, dtype=dtype, strict=False)
            )
        return pl.DataFrame(data).select([pl.col(c).cast(t) for c, t in schema.items()])

    inputs = FeatureInputs(
        connectors=frame(connectors, CONNECTORS, ("first_seen_at",)),
        faults=frame(faults, FAULTS, ("ts",)),
        sessions=frame(sessions, SESSIONS, ("start_ts",)).with_columns(
            pl.col("peak_power_w").fill_nan(None)
        ),
        connection=frame(conn, CONNECTION, ("ts",)),
        firmware=frame(firmware, FIRMWARE, ("ts",)),
        offline=frame(offline, OFFLINE, ()),
    )
    return SyntheticHistory(
        inputs=inputs,
        outages=frame(outages, OUTAGES, ("start_ts", "end_ts")),
        first_day=cfg.start,
        last_day=cfg.start + timedelta(days=cfg.days - 1),
        degrading=frozenset(degrading),
    )
