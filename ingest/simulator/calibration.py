"""Site-type demand profiles: the workplace type fitted to real data, the others set by hand.

Workplace: fitted from Caltech ACN-Data, site JPL (0002), 2021-05-01 to 2021-09-14 (2,114 real
sessions). The raw file is never committed; this module derives statistics from it and writes
`data/workplace_acn_jpl_2021.json` (committed, with a provenance block). Regenerate with::

    python -m ingest.simulator.calibration ../shared/data/acn-jpl-2021/acndata_sessions.json \
        [--out ingest/simulator/data/workplace_acn_jpl_2021.json]

What is fitted, per charger class ("ac" = the level-2 stations, "dc" = the one fast station,
"all" = both together):

- arrival (connection) local hour-of-day probabilities, weekday vs weekend and per weekday;
- sessions per station per day by weekday, over all stations and over the busiest quartile of
  stations (2021 was a pandemic year at JPL and a third of the stations saw fewer than 10 sessions;
  the simulator's workplace sites use the busiest-quartile rates as "a normally used site");
- dwell (connection to disconnection, hours), energy (kWh) and charging duration
  (connection to doneChargingTime, hours, where present) as 101 empirical quantiles, plus a
  lognormal fit for reference;
- dwell conditional on arrival-hour band and energy conditional on dwell band (51 quantiles each),
  so that the simulator keeps the real dependence (8 am arrivals stay all day; long stays take
  more energy) and the marginals come out right.

The fast station is recognised from the data, not by name: a station whose median session power
(kWh over hours to doneChargingTime or disconnection) exceeds 15 kW is "dc"; JPL's level-2 stations
top out near 7 kW.

The other site types (retail, highway, residential) have hand-set profiles in `HAND_SET_PROFILES`,
each with its reasoning next to the numbers.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

DATA_DIR = Path(__file__).with_name("data")
WORKPLACE_CALIBRATION = DATA_DIR / "workplace_acn_jpl_2021.json"
SITE_TZ = "America/Los_Angeles"
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DC_POWER_THRESHOLD_KW = 15.0
ARRIVAL_BANDS = ((0, 7), (7, 9), (9, 11), (11, 14), (14, 17), (17, 24))
N_QUANTILES = 101
N_COND_QUANTILES = 51


# ---------------------------------------------------------------------------------------------
# fitting


def _parse(ts: str) -> datetime:
    return parsedate_to_datetime(ts).astimezone(UTC)


def _quantiles(values: list[float], n: int) -> list[float]:
    import numpy as np

    if not values:
        return []
    q = np.quantile(np.asarray(values, dtype=float), np.linspace(0.0, 1.0, n))
    return [round(float(x), 5) for x in q]


def _lognorm(values: list[float]) -> dict[str, float]:
    import numpy as np

    logs = np.log(np.asarray([v for v in values if v > 0], dtype=float))
    return {"mu": round(float(logs.mean()), 5), "sigma": round(float(logs.std()), 5)}


def _class_stats(rows: list[dict[str, Any]], start_day, end_day, tz: ZoneInfo) -> dict[str, Any]:
    import numpy as np

    n = len(rows)
    by_weekday_hour = [[0] * 24 for _ in range(7)]
    for r in rows:
        loc = r["conn"].astimezone(tz)
        by_weekday_hour[loc.weekday()][loc.hour] += 1

    def pmf(counts: list[int]) -> list[float]:
        total = sum(counts)
        return [round(c / total, 6) if total else 0.0 for c in counts]

    weekday = [sum(by_weekday_hour[d][h] for d in range(5)) for h in range(24)]
    weekend = [sum(by_weekday_hour[d][h] for d in (5, 6)) for h in range(24)]

    # number of each weekday in the period (local dates)
    n_days = [0] * 7
    day = start_day
    while day <= end_day:
        n_days[day.weekday()] += 1
        day += timedelta(days=1)

    per_station: dict[str, list[int]] = defaultdict(lambda: [0] * 7)
    for r in rows:
        per_station[r["station"]][r["conn"].astimezone(tz).weekday()] += 1
    stations = sorted(per_station, key=lambda s: sum(per_station[s]))
    busiest = stations[len(stations) - max(1, len(stations) // 4) :]

    def rate(sts: list[str]) -> dict[str, float]:
        return {
            WEEKDAYS[d]: round(sum(per_station[s][d] for s in sts) / (n_days[d] * len(sts)), 4)
            for d in range(7)
        }

    dwell = [r["dwell_h"] for r in rows]
    energy = [r["kwh"] for r in rows]
    charging = [r["charging_h"] for r in rows if r["charging_h"] is not None]

    dwell_by_arrival = []
    for lo, hi in ARRIVAL_BANDS:
        sel = [r["dwell_h"] for r in rows if lo <= r["conn"].astimezone(tz).hour < hi]
        dwell_by_arrival.append(
            {"hours": [lo, hi], "n": len(sel), "quantiles": _quantiles(sel, N_COND_QUANTILES)}
        )
    edges = [float(x) for x in np.quantile(dwell, [0.2, 0.4, 0.6, 0.8])]
    bounds = [0.0, *[round(e, 4) for e in edges], math.inf]
    energy_by_dwell = []
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        sel = [r["kwh"] for r in rows if lo <= r["dwell_h"] < hi]
        energy_by_dwell.append(
            {
                "dwell_h": [lo, None if math.isinf(hi) else hi],
                "n": len(sel),
                "quantiles": _quantiles(sel, N_COND_QUANTILES),
            }
        )
    return {
        "n_sessions": n,
        "n_stations": len(stations),
        "arrival_hour_pmf": {"weekday": pmf(weekday), "weekend": pmf(weekend)},
        "arrival_hour_pmf_by_weekday": {WEEKDAYS[d]: pmf(by_weekday_hour[d]) for d in range(7)},
        "sessions_per_station_day": rate(stations),
        "sessions_per_station_day_busiest_quartile": rate(busiest),
        "busiest_quartile_stations": len(busiest),
        "dwell_h": {"quantiles": _quantiles(dwell, N_QUANTILES), "lognormal": _lognorm(dwell)},
        "energy_kwh": {"quantiles": _quantiles(energy, N_QUANTILES), "lognormal": _lognorm(energy)},
        "charging_duration_h": {
            "n": len(charging),
            "quantiles": _quantiles(charging, N_QUANTILES),
        },
        "dwell_h_by_arrival_hour": dwell_by_arrival,
        "energy_kwh_by_dwell_h": energy_by_dwell,
    }


def read_acn_sessions(path: str | Path) -> list[dict[str, Any]]:
    """Parse the ACN sessions file into plain rows (UTC datetimes, hours, kWh, station, class)."""
    raw = json.loads(Path(path).read_text())
    if isinstance(raw, dict) and "_items" in raw:
        raw = raw["_items"]
    rows = []
    for item in raw:
        conn = _parse(item["connectionTime"])
        disc = _parse(item["disconnectTime"])
        done = _parse(item["doneChargingTime"]) if item.get("doneChargingTime") else None
        dwell_h = (disc - conn).total_seconds() / 3600.0
        charging_h = (done - conn).total_seconds() / 3600.0 if done else None
        if charging_h is not None and charging_h < 0:
            charging_h = None
        rows.append(
            {
                "conn": conn,
                "disc": disc,
                "dwell_h": dwell_h,
                "charging_h": charging_h,
                "kwh": float(item["kWhDelivered"]),
                "station": item["stationID"],
                "site": item.get("siteID"),
            }
        )
    # classify stations by median session power
    powers: dict[str, list[float]] = defaultdict(list)
    for r in rows:
        hours = r["charging_h"] if r["charging_h"] else r["dwell_h"]
        powers[r["station"]].append(r["kwh"] / max(hours, 0.05))
    dc = {s for s, p in powers.items() if sorted(p)[len(p) // 2] > DC_POWER_THRESHOLD_KW}
    for r in rows:
        r["cls"] = "dc" if r["station"] in dc else "ac"
    return rows


def fit_workplace(path: str | Path) -> dict[str, Any]:
    rows = read_acn_sessions(path)
    if not rows:
        raise ValueError(f"{path}: no sessions")
    tz = ZoneInfo(SITE_TZ)
    first = min(r["conn"] for r in rows)
    last = max(r["conn"] for r in rows)
    start_day, end_day = first.astimezone(tz).date(), last.astimezone(tz).date()
    classes = {
        "ac": _class_stats([r for r in rows if r["cls"] == "ac"], start_day, end_day, tz),
        "dc": _class_stats([r for r in rows if r["cls"] == "dc"], start_day, end_day, tz),
        "all": _class_stats(rows, start_day, end_day, tz),
    }
    return {
        "provenance": {
            "source": "Caltech ACN-Data (Adaptive Charging Network), https://ev.caltech.edu/dataset",
            "obtained_from": "GitHub y1072302536/Electric-vehicle-charging-data, "
            "acndata_sessions.json (commit 2ad5c8e)",
            "site": "JPL (ACN siteID 0002), Pasadena, CA; timezone " + SITE_TZ,
            "period": f"{start_day.isoformat()} to {end_day.isoformat()}",
            "count": len(rows),
            "stations": len({r["station"] for r in rows}),
            "total_kwh": round(sum(r["kwh"] for r in rows), 1),
            "terms": "ACN-Data terms of use apply. Only derived statistics are committed here "
            "(histograms, quantiles); the session file itself is not part of this project.",
            "generated_by": "python -m ingest.simulator.calibration",
            "dc_rule": f"station median session power > {DC_POWER_THRESHOLD_KW} kW",
        },
        "timezone": SITE_TZ,
        "weekdays": list(WEEKDAYS),
        "classes": classes,
    }


@cache
def load_workplace_calibration(path: str | None = None) -> dict[str, Any]:
    """The committed workplace calibration (cached)."""
    return json.loads(Path(path or WORKPLACE_CALIBRATION).read_text())


# ---------------------------------------------------------------------------------------------
# hand-set profiles for the other site types


def _bumps(peaks: list[tuple[float, float, float]], base: float = 0.0) -> list[float]:
    """24 hourly weights from gaussian bumps (centre hour, width hours, weight) plus a floor."""
    w = []
    for h in range(24):
        x = h + 0.5
        w.append(base + sum(a * math.exp(-0.5 * ((x - c) / s) ** 2) for c, s, a in peaks))
    total = sum(w)
    return [round(v / total, 6) for v in w]


# Each profile: per charger class ("ac"/"dc"), the arrival hour pmf (weekday/weekend), the offered
# demand in sessions per port per day by weekday (mon..sun), a dwell model and an energy model.
# Dwell kinds: "lognormal" (median_h, sigma, min_h, max_h) or "until_charged" (the driver leaves
# when the target SoC is reached plus an overstay, lognormal with median overstay_min).
# Energy kind "soc": arrival SoC ~ Beta(a, b), target SoC uniform in [lo, hi]; the energy asked
# is (target - arrival) x battery, and physics (charger, car acceptance, taper, dwell) caps it.
HAND_SET_PROFILES: dict[str, dict[str, Any]] = {
    "retail": {
        "reasoning": (
            "Supermarket / shopping-centre car park. Arrivals follow shop footfall: a late-morning "
            "and an after-work peak on weekdays, one broad midday peak on Saturdays and Sundays "
            "(busiest day Saturday). Stays are a shopping trip: about 50 min, rarely over 3 h. "
            "DC drivers top up and leave: until ~80% plus a few minutes. Typical retail "
            "utilisation is 2-3 sessions per port per day for AC, 3-5 for DC."
        ),
        "ac": {
            "arrival_weekday": _bumps([(11.5, 1.8, 1.0), (17.5, 1.6, 1.1)], base=0.01),
            "arrival_weekend": _bumps([(13.0, 2.8, 1.0)], base=0.01),
            "sessions_per_port_day": [2.2, 2.2, 2.3, 2.4, 2.8, 3.2, 2.0],
            "dwell": {
                "kind": "lognormal",
                "median_h": 0.85,
                "sigma": 0.5,
                "min_h": 0.1,
                "max_h": 4,
            },
            "energy": {"kind": "soc", "arrival_soc": [3.0, 3.0], "target_soc": [0.8, 1.0]},
        },
        "dc": {
            "arrival_weekday": _bumps([(12.0, 2.0, 1.0), (17.5, 1.8, 1.1)], base=0.01),
            "arrival_weekend": _bumps([(13.0, 3.0, 1.0)], base=0.01),
            "sessions_per_port_day": [3.5, 3.5, 3.6, 3.8, 4.4, 4.8, 3.2],
            "dwell": {"kind": "until_charged", "overstay_median_min": 4, "overstay_sigma": 0.9},
            "energy": {"kind": "soc", "arrival_soc": [2.5, 4.0], "target_soc": [0.75, 0.85]},
        },
    },
    "highway": {
        "reasoning": (
            "Motorway / interstate rapid hub, open 24/7. Long-distance traffic: arrivals from mid "
            "morning into the evening with a little night traffic; Friday and Sunday are the heavy "
            "travel days. Drivers arrive low (SoC ~25%) and leave at ~80% because the taper makes "
            "the rest slow; a short overstay (toilet, coffee). About 4-6 sessions per DC port per "
            "day (10-15% time utilisation). The odd AC post gets about 1 session a day of ~1 h."
        ),
        "ac": {
            "arrival_weekday": _bumps([(12.0, 3.5, 1.0)], base=0.02),
            "arrival_weekend": _bumps([(13.0, 3.5, 1.0)], base=0.02),
            "sessions_per_port_day": [0.8, 0.8, 0.8, 0.9, 1.2, 1.0, 1.2],
            "dwell": {
                "kind": "lognormal",
                "median_h": 1.0,
                "sigma": 0.6,
                "min_h": 0.15,
                "max_h": 6,
            },
            "energy": {"kind": "soc", "arrival_soc": [2.0, 5.0], "target_soc": [0.8, 1.0]},
        },
        "dc": {
            "arrival_weekday": _bumps([(10.5, 2.0, 0.8), (16.5, 2.5, 1.0)], base=0.03),
            "arrival_weekend": _bumps([(12.5, 3.5, 1.0)], base=0.03),
            "sessions_per_port_day": [4.2, 4.0, 4.0, 4.5, 6.0, 5.0, 5.8],
            "dwell": {"kind": "until_charged", "overstay_median_min": 5, "overstay_sigma": 0.8},
            "energy": {"kind": "soc", "arrival_soc": [2.0, 5.5], "target_soc": [0.75, 0.85]},
        },
    },
    "residential": {
        "reasoning": (
            "On-street / multi-unit residential AC charging. Residents plug in after the commute "
            "(peak 18:00-19:00) and leave next morning: overnight stays around 11 h. About one "
            "session per port per day on weekdays, less at weekends when cars stay home or travel. "
            "Arrival SoC is mid-range (daily commuting); target 90-100%. Residential DC is rare; "
            "when present it behaves like a quick top-up."
        ),
        "ac": {
            "arrival_weekday": _bumps([(18.5, 2.0, 1.0), (8.0, 2.0, 0.12)], base=0.01),
            "arrival_weekend": _bumps([(15.0, 4.0, 1.0)], base=0.02),
            "sessions_per_port_day": [1.0, 1.0, 1.0, 1.0, 0.9, 0.7, 0.8],
            "dwell": {
                "kind": "lognormal",
                "median_h": 11.0,
                "sigma": 0.4,
                "min_h": 0.5,
                "max_h": 40,
            },
            "energy": {"kind": "soc", "arrival_soc": [4.0, 4.0], "target_soc": [0.9, 1.0]},
        },
        "dc": {
            "arrival_weekday": _bumps([(18.0, 2.5, 1.0)], base=0.02),
            "arrival_weekend": _bumps([(14.0, 4.0, 1.0)], base=0.02),
            "sessions_per_port_day": [2.0, 2.0, 2.0, 2.0, 2.2, 2.5, 2.5],
            "dwell": {"kind": "until_charged", "overstay_median_min": 6, "overstay_sigma": 0.8},
            "energy": {"kind": "soc", "arrival_soc": [3.0, 4.0], "target_soc": [0.75, 0.85]},
        },
    },
}


def workplace_profile(calibration: dict[str, Any] | None = None) -> dict[str, Any]:
    """The workplace profile in the same shape as HAND_SET_PROFILES, from the fitted data."""
    cal = calibration or load_workplace_calibration()
    out: dict[str, Any] = {
        "reasoning": "Fitted to ACN-Data JPL 2021 (see data/workplace_acn_jpl_2021.json).",
    }
    for cls in ("ac", "dc"):
        c = cal["classes"][cls]
        out[cls] = {
            "arrival_weekday": c["arrival_hour_pmf"]["weekday"],
            "arrival_weekend": c["arrival_hour_pmf"]["weekend"],
            "sessions_per_port_day": [
                c["sessions_per_station_day_busiest_quartile"][d] for d in WEEKDAYS
            ],
            "dwell": {"kind": "calibrated", "by_arrival_hour": c["dwell_h_by_arrival_hour"]},
            "energy": {"kind": "calibrated", "by_dwell_h": c["energy_kwh_by_dwell_h"]},
        }
    return out


def site_profile(site_type: str) -> dict[str, Any]:
    if site_type == "workplace":
        return workplace_profile()
    try:
        return HAND_SET_PROFILES[site_type]
    except KeyError:
        raise ValueError(f"unknown site_type {site_type!r}") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ingest.simulator.calibration",
        description="Fit the workplace profile from an ACN-Data sessions JSON file.",
    )
    parser.add_argument("path", help="acndata_sessions.json")
    parser.add_argument("--out", default=str(WORKPLACE_CALIBRATION), help="output JSON")
    args = parser.parse_args(argv)
    try:
        result = fit_workplace(args.path)
    except (OSError, ValueError, KeyError) as e:
        print(f"error: cannot fit {args.path}: {e}", file=sys.stderr)
        return 2
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    p = result["provenance"]
    ac, dc = result["classes"]["ac"], result["classes"]["dc"]
    print(
        f"wrote {args.out}: {p['count']} sessions ({ac['n_sessions']} AC on {ac['n_stations']} "
        f"stations, {dc['n_sessions']} DC on {dc['n_stations']}), {p['period']}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
