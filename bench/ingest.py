"""Ingest benchmark: N concurrent real OCPP connections send MeterValues (10 sampled values each)
for T seconds; prints throughput, acknowledgement latency, the collector's peak RSS, the raw
COPY limit for the same rows and the ratio, and the `ocpp` library's default central-system path
(jsonschema validation of every frame, no database) as a baseline. Asserts nothing.

    .venv/bin/python bench/ingest.py [--connections 1000] [--seconds 20]

Uses DATABASE_URL's server (a scratch database `chargeops_bench` is created there), or the
embedded default when it is unset.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import os
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path[0] = str(ROOT)  # the project, not bench/ (bench/dagster.py would shadow `dagster`)

from chargeops.db import create_database, resolve_database_url, upgrade  # noqa: E402
from chargeops.settings import Settings  # noqa: E402
from ingest.simulator.load import MEASURANDS, load_meter_values  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def wait_listening(port: int, proc: subprocess.Popen) -> None:
    for _ in range(600):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if proc.poll() is not None:
                raise SystemExit(f"server exited with {proc.returncode}; see its log") from None
            time.sleep(0.1)
    raise SystemExit("server did not come up")


def scratch_database() -> str:
    server = resolve_database_url(Settings.from_env())
    url = create_database(server, "chargeops_bench", replace=True)
    upgrade(url)
    return url


def raw_copy_seconds(url: str, n_rows: int) -> float:
    """The floor: one plain COPY of as many rows straight into meter_value."""
    now = datetime.now(UTC)
    base = datetime(2025, 3, 1, tzinfo=UTC)
    buf = io.StringIO()
    for i in range(n_rows):
        msg, j = divmod(i, 10)
        cp = f"RAW{msg % 1000:05d}"
        ts = base + timedelta(seconds=msg // 1000)
        measurand, phase, unit = MEASURANDS[j]
        buf.write(f"{ts.isoformat()}\t{cp}\t1\t1\t\\N\t{measurand}\t{phase or ''}\tOutlet\t"
                  f"Sample.Periodic\t{i}\t{unit}\t{i}\t{unit}\t0\t{now.isoformat()}\n")  # fmt: skip
    data = buf.getvalue()
    with psycopg.connect(url) as conn:
        conn.execute("SELECT chargeops_ensure_partitions('meter_value', %s, %s)", (base, base))
        conn.commit()
        t0 = time.perf_counter()
        with (
            conn.cursor() as cur,
            cur.copy(
                "COPY meter_value (ts, charge_point_id, evse_id, connector_id, transaction_id, measurand,"
                " phase, location, context, value, unit, raw_value, raw_unit, multiplier, received_at)"
                " FROM STDIN"
            ) as copy,
        ):
            copy.write(data)
        conn.commit()
        return time.perf_counter() - t0


def serve_baseline(port: int) -> None:
    """The `ocpp` library's default central system: validation on, answers only, no storage."""
    from ocpp.routing import on
    from ocpp.v16 import ChargePoint as Cp16
    from ocpp.v16 import call_result as r16
    from ocpp.v201 import ChargePoint as Cp201
    from ocpp.v201 import call_result as r201
    from websockets.asyncio.server import serve

    class B16(Cp16):
        @on("MeterValues")
        def on_mv(self, **kw):
            return r16.MeterValues()

    class B201(Cp201):
        @on("MeterValues")
        def on_mv(self, **kw):
            return r201.MeterValues()

    async def handler(ws):
        cls = B16 if ws.subprotocol == "ocpp1.6" else B201
        with contextlib.suppress(Exception):
            await cls(ws.request.path.rsplit("/", 1)[-1], ws).start()

    async def main():
        async with serve(handler, "127.0.0.1", port, subprotocols=["ocpp2.0.1", "ocpp1.6"],
                         compression=None) as server:  # fmt: skip
            await server.serve_forever()

    asyncio.run(main())


def run_server(kind: str, url: str | None, data_dir: Path) -> tuple[subprocess.Popen, int]:
    port = _free_port()
    if kind == "chargeops":
        env = dict(os.environ, DATABASE_URL=url, CHARGEOPS_DATA_DIR=str(data_dir),
                   CHARGEOPS_AUTO_REGISTER="1", CHARGEOPS_LOG_LEVEL="WARNING")  # fmt: skip
        cmd = [sys.executable, "-m", "chargeops.cli", "collector", "--port", str(port)]
    else:
        env = dict(os.environ)
        cmd = [sys.executable, __file__, "--serve-baseline", str(port)]
    data_dir.mkdir(parents=True, exist_ok=True)
    log = open(data_dir / f"{kind}.log", "wb")  # noqa: SIM115 - the child holds it
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log)
    wait_listening(port, proc)
    return proc, port


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--connections", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--values", type=int, default=10)
    ap.add_argument("--no-baseline", action="store_true")
    ap.add_argument("--serve-baseline", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve_baseline:
        serve_baseline(args.serve_baseline)
        return
    import resource

    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    url = scratch_database()
    data_dir = Path(os.environ.get("CHARGEOPS_DATA_DIR", ROOT / ".data")) / "bench"
    print(f"ingest benchmark: {args.connections} connections (half 1.6, half 2.0.1), "
          f"{args.values} sampled values per MeterValues, {args.seconds:.0f} s, {os.cpu_count()} cores")  # fmt: skip

    results = {}
    for kind in (["library-default"] if not args.no_baseline else []) + ["chargeops"]:
        proc, port = run_server(kind, url, data_dir)
        try:
            run = asyncio.run(load_meter_values(
                f"ws://127.0.0.1:{port}/ocpp", args.connections, args.seconds, args.values,
                id_prefix="B" if kind == "chargeops" else "L"))  # fmt: skip
            res = {"rate": run.throughput, "messages": run.messages_acknowledged,
                   "p50": run.percentile_ms(0.5), "p95": run.percentile_ms(0.95),
                   "p99": run.percentile_ms(0.99), "errors": run.errors,
                   "rss": peak_rss_mb(proc.pid)}  # fmt: skip
        finally:
            proc.terminate()
            proc.wait(30)
        results[kind] = res
        print(f"  {kind:16} {res['rate']:8.0f} MeterValues/s  {res['rate'] * args.values:9.0f} values/s"
              f"  p50 {res['p50']:6.1f} ms  p95 {res['p95']:6.1f} ms  p99 {res['p99']:6.1f} ms"
              f"  peak RSS {res['rss']:6.0f} MB  errors {res['errors']}")  # fmt: skip
    ours = results["chargeops"]
    with psycopg.connect(url) as conn:
        stored = conn.execute("SELECT count(*) FROM meter_value").fetchone()[0]
    n_rows = int(ours["messages"] * args.values)
    copy_s = raw_copy_seconds(url, n_rows)
    raw_rate = n_rows / copy_s
    ours_rate = ours["rate"] * args.values
    print(f"  stored sampled values: {stored} (acknowledged: {n_rows})")
    print(f"  raw COPY of {n_rows} rows into meter_value: {copy_s:.2f} s = {raw_rate:.0f} values/s")
    print(f"  ratio ours / raw COPY: {ours_rate / raw_rate:.2f}")
    if "library-default" in results:
        print(
            f"  ratio ours / library-default: {ours['rate'] / results['library-default']['rate']:.2f}x"
        )


if __name__ == "__main__":
    main()
