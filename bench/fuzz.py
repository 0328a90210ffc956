"""Fuzz benchmark: hostile chargers send hypothesis-drawn frames (tests/fuzzing.py: schema-shaped
CALLs with bad leaves, wrong message types, non-JSON, binary, deep nesting, huge numbers,
NaN/Infinity, NUL and lone-surrogate escapes, oversize and over-the-socket-limit frames) to an
in-process collector while well-behaved probe chargers (a process of their own, 20 MeterValues/s
each, under the per-connection rate limit) are measured. Prints frames/s, the collector's CPU per
frame, crashes (ERROR records logged by the collector, connections closed against the spec),
frames not answered as OCPP-J says (each with the frame), and the probes' p99 beside the fuzz
against alone (before and after it), as a ratio measured in the same run. Asserts nothing; exits 1
when a frame failed, something crashed or an acknowledged probe value is not stored.

    .venv/bin/python bench/fuzz.py [--frames 100000] [--chargers 4] [--probes 4] [--probe-seconds 20]

Uses DATABASE_URL's server (a scratch database `chargeops_fuzz` is created there), or the
embedded default when it is unset.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import multiprocessing
import os
import sys
import tempfile
import time
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path[0] = str(ROOT)  # the project, not bench/ (bench/dagster.py would shadow `dagster`)

from ocpp.v16 import ChargePoint as Cp16  # noqa: E402
from ocpp.v16 import call  # noqa: E402
from websockets.asyncio.client import connect as ws_connect  # noqa: E402

from chargeops.db import create_database, resolve_database_url, upgrade  # noqa: E402
from chargeops.settings import Settings  # noqa: E402
from ingest.server import Collector  # noqa: E402
from tests.fuzzing import ErrorRecords, draw_frames, fuzz, merge  # noqa: E402


def scratch_database() -> str:
    server = resolve_database_url(Settings.from_env())
    url = create_database(server, "chargeops_fuzz", replace=True)
    upgrade(url)
    return url


def collector_settings(data_dir: Path, unlimited: bool = False) -> Settings:
    """The collector's defaults (its per-connection rate limit too: the protection the other
    chargers have), or with `unlimited` no rate limit, to see what the frames alone cost."""
    wanted: dict = {"host": "127.0.0.1", "port": 0, "auto_register": True, "data_dir": data_dir}
    if unlimited:
        wanted |= {"calls_per_second": 10**6, "call_burst": 10**6}
    names = {f.name for f in fields(Settings)}
    return Settings(**{k: v for k, v in wanted.items() if k in names})


class Probe:
    """A well-behaved charger (the `ocpp` library's client): MeterValues one after another,
    each a new timestamp (from `first` on), recording the acknowledgement latency."""

    def __init__(self, url: str, cp_id: str, first: int = 0) -> None:
        self.url, self.cp_id = url, cp_id
        self.latencies: list[float] = []
        self.errors = 0
        self.acknowledged = 0
        self._first = first
        self._base = datetime.now(UTC) - timedelta(hours=1)

    async def run(self, stop, pause: float) -> None:
        """Until `stop` (a multiprocessing event) is set."""
        async with ws_connect(f"{self.url}/{self.cp_id}", subprotocols=["ocpp1.6"]) as ws:
            cp = Cp16(self.cp_id, ws, response_timeout=30)
            task = asyncio.create_task(cp.start())
            try:
                while not stop.is_set():
                    n = self._first + self.acknowledged + self.errors
                    ts = self._base + timedelta(milliseconds=n)
                    req = call.MeterValues(
                        connector_id=1,
                        meter_value=[
                            {
                                "timestamp": ts.isoformat().replace("+00:00", "Z"),
                                "sampledValue": [
                                    {"value": str(n), "unit": "Wh",
                                     "measurand": "Energy.Active.Import.Register"}
                                ],
                            }
                        ],
                    )  # fmt: skip
                    t0 = time.perf_counter()
                    try:
                        await cp.call(req)
                        self.acknowledged += 1
                        self.latencies.append(time.perf_counter() - t0)
                    except Exception:
                        self.errors += 1
                    await asyncio.sleep(pause)
            finally:
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task


def probe_process(url: str, n_probes: int, first: int, stop, out) -> None:
    """The probes in a process of their own, as chargers on the network: the collector's event
    loop, not theirs, is what the figure measures. Each sends well under the per-connection rate
    limit (20 MeterValues/s against 50), so what they wait for is the collector, not their own
    token bucket."""

    async def main() -> list[Probe]:
        probes = [Probe(url, f"PROBE-{i}", first) for i in range(n_probes)]
        await asyncio.gather(*(p.run(stop, pause=0.05) for p in probes))
        return probes

    probes = asyncio.run(main())
    out.put(
        (
            [x for p in probes for x in p.latencies],
            max(p.acknowledged + p.errors for p in probes),
            sum(p.acknowledged for p in probes),
            sum(p.errors for p in probes),
        )
    )


def quantile_ms(samples: list[float], q: float) -> float:
    if not samples:
        return float("nan")
    s = sorted(samples)
    return 1000 * s[min(len(s) - 1, int(q * len(s)))]


def p99_ms(samples: list[float]) -> float:
    return quantile_ms(samples, 0.99)


def hostile(
    version: str, n: int, rng_seed: int, kinds, chargers: int, url: str, ready, go, out, nice: int
) -> None:
    """A process of hostile chargers (as on the network: not on the collector's CPU): draws its
    frames, says it is ready, waits for the go, fuzzes, and sends back its results."""
    if nice:
        os.nice(nice)
    t0 = time.perf_counter()
    frames = draw_frames(version, n, rng_seed, kinds=kinds)
    print(f"  {version}: {n} frames drawn in {time.perf_counter() - t0:.1f} s", flush=True)
    ready.set()
    go.wait()
    out.put(asyncio.run(fuzz(url, {version: frames}, chargers=chargers)))


async def run(args: argparse.Namespace) -> int:
    url_db = scratch_database()
    mp = multiprocessing.get_context("spawn")
    half = args.frames // 2
    jobs = [("1.6", half, args.seed), ("2.0.1", args.frames - half, args.seed + 1)]
    loop = asyncio.get_running_loop()
    kinds = frozenset(args.kinds.split(",")) if args.kinds else None
    with tempfile.TemporaryDirectory() as tmp, ErrorRecords() as errors:
        async with Collector(collector_settings(Path(tmp), args.unlimited), url_db) as col:
            url = col.url()
            go, out = mp.Event(), mp.Queue()
            t0 = time.perf_counter()
            procs = []
            for version, n, rng_seed in jobs:
                ready = mp.Event()
                proc = mp.Process(
                    target=hostile,
                    args=(
                        version,
                        n,
                        rng_seed,
                        kinds,
                        args.chargers,
                        url,
                        ready,
                        go,
                        out,
                        args.nice,
                    ),
                )
                proc.start()
                procs.append((proc, ready))
            for _, ready in procs:
                await loop.run_in_executor(None, ready.wait)
            print(f"  drawn in {time.perf_counter() - t0:.1f} s")

            def start_probe(first: int):
                stop, results = mp.Event(), mp.Queue()
                proc = mp.Process(
                    target=probe_process, args=(url, args.probes, first, stop, results)
                )
                proc.start()
                return proc, stop, results

            async def stop_probe(proc, stop, results) -> tuple[list[float], int, int, int]:
                stop.set()
                got = await loop.run_in_executor(None, results.get)
                proc.join(30)
                return got

            probe = start_probe(0)
            await asyncio.sleep(args.probe_seconds)
            baseline, sent, acknowledged, probe_errors = await stop_probe(*probe)

            probe = start_probe(sent)
            t0, cpu0 = time.perf_counter(), time.process_time()
            go.set()
            results = []
            for _ in procs:
                results += await loop.run_in_executor(None, out.get)
            elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
            loaded, _, more_acknowledged, more_errors = await stop_probe(*probe)
            acknowledged += more_acknowledged
            probe_errors += more_errors
            # alone again, after the fuzz: the baseline spans the run, so a machine that got
            # busier or quieter meanwhile does not pass for the collector's doing
            probe = start_probe(sent + len(loaded) + more_errors + 1000)
            await asyncio.sleep(args.probe_seconds / 2)
            after, _, more_acknowledged, more_errors = await stop_probe(*probe)
            acknowledged += more_acknowledged
            probe_errors += more_errors
            for proc, _ in procs:
                proc.join(30)
            await col.writer.flush()
            counters = dict(col.ctx.counters)
    total = merge(results)
    with psycopg.connect(url_db) as conn:
        stored = conn.execute(
            "SELECT count(*) FROM meter_value WHERE charge_point_id LIKE 'PROBE-%'"
        ).fetchone()[0]

    print(f"  frames sent: {total.frames} in {elapsed:.1f} s = {total.frames / elapsed:.0f} frames/s"
          f" ({args.chargers} hostile chargers per OCPP version)")  # fmt: skip
    print(f"  collector CPU during the fuzz: {cpu:.1f} s of {elapsed:.1f} s "
          f"({100 * cpu / elapsed:.0f} % of a core), {1000 * cpu / total.frames:.2f} ms a frame")  # fmt: skip
    print("  kinds: " + ", ".join(f"{k} {v}" for k, v in sorted(total.kinds.items())))
    print("  CALLERROR codes: " + ", ".join(f"{k} {v}" for k, v in total.codes.most_common()))
    print(f"  answered or refused as OCPP-J says: {total.answered}/{total.frames}; "
          f"reconnects after a policy close (1009, over the size limit): {total.reconnects_policy}")  # fmt: skip
    print(f"  frames not answered as the spec says: {total.failure_count}")
    for line in total.failures[:20]:
        print(f"    {line[:400]}")
    print(f"  crashes (ERROR records logged by the collector): {len(errors.records)}")
    for line in errors.summary(10):
        print(f"    {line[:400]}")
    print(f"  collector counters: frames_in {counters.get('frames_in')}, "
          f"connections {counters.get('connections')}")  # fmt: skip
    alone = baseline + after
    ratio = p99_ms(loaded) / p99_ms(alone)
    print(f"  probe MeterValues p99 ({args.probes} probes, 20/s each): {p99_ms(alone):.1f} ms alone "
          f"({len(baseline)} calls before the fuzz, p99 {p99_ms(baseline):.1f} ms; {len(after)} after, "
          f"{p99_ms(after):.1f} ms), {p99_ms(loaded):.1f} ms beside the fuzz ({len(loaded)} calls); "
          f"ratio {ratio:.2f}x")  # fmt: skip
    for name, xs in (("alone", alone), ("beside the fuzz", loaded)):
        qs = ", ".join(f"p{round(q * 100)} {quantile_ms(xs, q):.1f}" for q in (0.5, 0.9, 0.99))
        print(f"    {name}: {qs}, max {quantile_ms(xs, 1.0):.1f} ms")
    print(f"  probe: {acknowledged} acknowledged, {probe_errors} errors, {stored} stored")
    bad = total.failure_count or errors.records or stored != acknowledged
    return 1 if bad else 0


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--frames", type=int, default=100_000, help="in all, half per OCPP version")
    ap.add_argument("--chargers", type=int, default=4, help="hostile chargers per version")
    ap.add_argument("--unlimited", action="store_true", help="no per-connection rate limit")
    ap.add_argument("--probe-seconds", type=float, default=20, help="the probes' baseline")
    ap.add_argument("--probes", type=int, default=4, help="well-behaved chargers measured")
    ap.add_argument("--seed", type=int, default=16)
    ap.add_argument("--nice", type=int, default=0, help="niceness of the hostile processes")
    ap.add_argument("--kinds", help="only these kinds, comma-separated (see tests/fuzzing.py)")
    args = ap.parse_args()
    logging.getLogger().setLevel(logging.ERROR)  # ErrorRecords is the only handler: it counts
    print(f"fuzz benchmark: {args.frames} hypothesis frames (half 1.6, half 2.0.1), "
          f"{os.cpu_count()} cores")  # fmt: skip
    sys.exit(asyncio.run(run(args)))


if __name__ == "__main__":
    main()
