"""Hostile-charger benchmark: what one misbehaving socket costs the other chargers.

The collector runs in this process (with a real PostgreSQL) next to well-behaved probe chargers,
each sending a MeterValues every 100 ms and timing the round trip. First with no attack, then
under each attack for a bounded time, the attacker in a process of its own (one socket; it
reconnects when it is closed):

- oversize: 1 MB DataTransfer frames (over the frame limit, under the socket limit)
- flood: Heartbeats sent as fast as the socket takes them, answers never read
- deep: JSON nested 1,000 deep
- nan: 2.0.1 MeterValues whose value is the bare token NaN

Prints, per phase, the probes' p50/p99 latency, answers/s and p99 relative to the no-attack
baseline, the attacker's frames sent / answered / closes, the audit bytes stored for it, and
this process's RSS (now and peak). Asserts nothing.

    .venv/bin/python bench/attacks.py [--seconds 5] [--probes 10]

Uses DATABASE_URL's server (a scratch database `chargeops_attacks` is created there), or the
embedded default when it is unset.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path[0] = str(ROOT)  # the project, not bench/ (bench/dagster.py would shadow `dagster`)

from chargeops.db import create_database, resolve_database_url, upgrade  # noqa: E402
from chargeops.settings import Settings  # noqa: E402

ATTACKS = ("oversize", "flood", "deep", "nan")


def rss_mb() -> tuple[float, float]:
    """(current, peak) resident set size of this process in MB."""
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024
    return fields.get("VmRSS", float("nan")), fields.get("VmHWM", float("nan"))


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def attack_frame(kind: str, i: int) -> str:
    if kind == "oversize":
        return f'[2,"o{i}","DataTransfer",{{"vendorId":"x","data":"' + "A" * 1_000_000 + '"}]'
    if kind == "flood":
        return f'[2,"h{i}","Heartbeat",{{}}]'
    if kind == "deep":
        return f'[2,"d{i}","DataTransfer",{{"vendorId":"x","data":' + "[" * 1000 + "]" * 1000 + "}]"
    return (
        f'[2,"n{i}","MeterValues",{{"evseId":1,"meterValue":[{{"timestamp":"{_now()}",'
        '"sampledValue":[{"value":NaN}]}]}]'
    )


async def attack(kind: str, url: str, seconds: float) -> dict:
    """One hostile socket for `seconds`; reconnects when closed. Runs in its own process."""
    from websockets.asyncio.client import connect

    version = "ocpp2.0.1" if kind == "nan" else "ocpp1.6"
    stop = time.monotonic() + seconds
    sent = answered = closes = 0
    while time.monotonic() < stop:
        try:
            async with connect(f"{url}/ATTACK-{kind}", subprotocols=[version],
                               max_size=None, open_timeout=10, close_timeout=1) as ws:  # fmt: skip
                while time.monotonic() < stop:
                    await asyncio.wait_for(
                        ws.send(attack_frame(kind, sent)), stop - time.monotonic()
                    )
                    sent += 1
                    if kind != "flood":  # the flood never reads its answers
                        await asyncio.wait_for(ws.recv(), max(0.1, stop - time.monotonic()))
                        answered += 1
        except TimeoutError:
            break
        except Exception:  # closed by the collector: come back, as a broken charger would
            closes += 1
            await asyncio.sleep(0.05)
    return {"sent": sent, "answered": answered, "closes": closes}


async def probe(url: str, cp_id: str, stop: asyncio.Event, latencies: list[float]) -> None:
    """A well-behaved charger: one MeterValues every 100 ms, each answer awaited."""
    from websockets.asyncio.client import connect

    async with connect(f"{url}/{cp_id}", subprotocols=["ocpp1.6"]) as ws:
        i = 0
        while not stop.is_set():
            frame = json.dumps([2, f"p{i}", "MeterValues", {"connectorId": 1, "meterValue": [
                {"timestamp": _now(), "sampledValue": [{"value": str(i)}]}]}])  # fmt: skip
            t0 = time.perf_counter()
            await ws.send(frame)
            await ws.recv()
            latencies.append(time.perf_counter() - t0)
            i += 1
            await asyncio.sleep(max(0.0, 0.1 - (time.perf_counter() - t0)))


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))] * 1000


async def run(url: str, seconds: float, n_probes: int, attacks: list[str]) -> None:
    from ingest.server import Collector

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(host="127.0.0.1", port=0, auto_register=True, data_dir=Path(tmp))
        async with Collector(settings, url) as col:
            base = col.url()
            baseline = None
            print(f"  {'phase':9} {'p50 ms':>8} {'p99 ms':>8} {'answers/s':>10} {'p99/base':>9}"
                  f" {'sent':>7} {'answered':>8} {'closes':>6} {'audit MB':>8} {'RSS MB':>7}"
                  f" {'peak MB':>7}")  # fmt: skip
            for phase in ["warm-up", "none", *attacks]:  # warm-up: handshakes, partitions
                latencies: list[float] = []
                stop = asyncio.Event()
                probes = [
                    asyncio.create_task(probe(base, f"PROBE-{phase}-{i}", stop, latencies))
                    for i in range(n_probes)
                ]
                proc = None
                if phase not in ("none", "warm-up"):
                    proc = await asyncio.create_subprocess_exec(
                        sys.executable, __file__, "--attack", phase, "--url", base,
                        "--seconds", str(seconds), stdout=subprocess.PIPE,
                    )  # fmt: skip
                t0 = time.perf_counter()
                if proc is not None:
                    out, _ = await proc.communicate()
                    result = json.loads(out.decode().strip().splitlines()[-1])
                else:
                    await asyncio.sleep(2.0 if phase == "warm-up" else seconds)
                    result = {"sent": 0, "answered": 0, "closes": 0}
                elapsed = time.perf_counter() - t0
                stop.set()
                await asyncio.gather(*probes, return_exceptions=True)
                await col.writer.flush()
                with psycopg.connect(url) as conn:
                    audit = conn.execute(
                        "SELECT coalesce(sum(octet_length(coalesce(raw, payload::text))), 0) "
                        "FROM ocpp_message WHERE charge_point_id = %s",
                        (f"ATTACK-{phase}",),
                    ).fetchone()[0]
                if phase == "warm-up":
                    continue
                p99 = pct(latencies, 0.99)
                baseline = baseline or p99
                now, peak = rss_mb()
                print(f"  {phase:9} {pct(latencies, 0.5):8.1f} {p99:8.1f}"
                      f" {len(latencies) / elapsed:10.1f} {p99 / baseline:9.2f}"
                      f" {result['sent']:7d} {result['answered']:8d} {result['closes']:6d}"
                      f" {audit / 1e6:8.1f} {now:7.0f} {peak:7.0f}", flush=True)  # fmt: skip
            counters = col.ctx.counters
            keys = sorted(k for k in counters if not k.startswith("calls:"))
            print("  collector counters: " + ", ".join(f"{k}={counters[k]}" for k in keys))


def scratch_database() -> str:
    server = resolve_database_url(Settings.from_env())
    url = create_database(server, "chargeops_attacks", replace=True)
    upgrade(url)
    return url


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--seconds", type=float, default=5.0, help="per phase")
    ap.add_argument("--probes", type=int, default=10, help="well-behaved chargers")
    ap.add_argument("--only", choices=ATTACKS, action="append", help="run only these attacks")
    ap.add_argument("--attack", choices=ATTACKS, help=argparse.SUPPRESS)
    ap.add_argument("--url", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.attack:
        print(json.dumps(asyncio.run(attack(args.attack, args.url, args.seconds))))
        return
    logging.basicConfig(level=logging.ERROR)
    url = scratch_database()
    print(f"attack benchmark: {args.probes} probe chargers (a MeterValues every 100 ms each), "
          f"{args.seconds:g} s per phase, one attacking socket, {len(ATTACKS)} attacks")  # fmt: skip
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run(url, args.seconds, args.probes, args.only or list(ATTACKS)))


if __name__ == "__main__":
    main()
