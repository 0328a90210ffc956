"""Load generator for the ingest benchmark: many connections sending MeterValues back to back.

Each connection sends MeterValues as fast as they are acknowledged, one outstanding call per
connection (as OCPP requires), for `seconds` of wall time, after every connection is open.
Connections alternate between OCPP 1.6J and 2.0.1. Frames are written directly as OCPP-J text
(the `ocpp` library's client-side validation would make the generator, not the collector, the
bottleneck); each sampled value in a message is distinct (measurand, phase, location), so every
value is a row.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from websockets.asyncio.client import connect

MEASURANDS = [
    ("Energy.Active.Import.Register", None, "Wh"), ("Power.Active.Import", None, "W"),
    ("Current.Import", "L1", "A"), ("Current.Import", "L2", "A"), ("Current.Import", "L3", "A"),
    ("Voltage", "L1-N", "V"), ("Voltage", "L2-N", "V"), ("Voltage", "L3-N", "V"),
    ("Power.Offered", None, "W"), ("SoC", None, "Percent"),
]  # fmt: skip


@dataclass
class LoadResult:
    messages_acknowledged: int
    latencies: list[float]  # seconds per acknowledged MeterValues, sorted
    errors: int
    connections: int = 0
    seconds: float = 0.0
    values_per_message: int = 0
    error_samples: list[str] = field(default_factory=list)

    @property
    def throughput(self) -> float:
        return self.messages_acknowledged / self.seconds if self.seconds else 0.0

    def percentile_ms(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        return self.latencies[min(len(self.latencies) - 1, int(q * len(self.latencies)))] * 1000


def meter_values_frame(version: str, unique_id: str, ts: datetime, k: int, n_values: int) -> str:
    stamp = ts.strftime("%Y-%m-%dT%H:%M:%SZ")
    values = []
    for j in range(n_values):
        measurand, phase, unit = MEASURANDS[j % len(MEASURANDS)]
        value = 1000 + k * 10 + j
        if version == "1.6":
            sv: dict = {"value": str(value), "measurand": measurand, "unit": unit}
        else:
            sv = {"value": value, "measurand": measurand, "unitOfMeasure": {"unit": unit}}
        if phase:
            sv["phase"] = phase
        if j >= len(MEASURANDS):
            sv["location"] = ("Inlet", "EV", "Body", "Cable")[(j // len(MEASURANDS) - 1) % 4]
        values.append(sv)
    key = "connectorId" if version == "1.6" else "evseId"
    payload = {key: 1, "meterValue": [{"timestamp": stamp, "sampledValue": values}]}
    return json.dumps([2, unique_id, "MeterValues", payload])


async def _connection(url, cp_id, version, n_values, start, stop_at, latencies, errors) -> int:
    ws = await connect(
        f"{url}/{cp_id}", subprotocols=[f"ocpp{version}"], open_timeout=120,
        compression=None, ping_interval=None,
    )  # fmt: skip
    base = datetime(2025, 1, 1, tzinfo=UTC) + timedelta(days=hash(cp_id) % 20)
    sent = 0
    await start.wait()
    loop = asyncio.get_running_loop()
    try:
        while loop.time() < stop_at[0]:
            t0 = time.perf_counter()
            await ws.send(
                meter_values_frame(
                    version, str(sent), base + timedelta(seconds=sent), sent, n_values
                )
            )
            reply = json.loads(await ws.recv())
            latencies.append(time.perf_counter() - t0)
            if reply[0] != 3:
                errors.append(str(reply)[:200])
            sent += 1
    except Exception as e:  # a dropped connection is reported, not fatal to the run
        errors.append(f"{cp_id}: {type(e).__name__}: {e}"[:200])
    finally:
        await ws.close()
    return sent


async def load_meter_values(
    url: str,
    n_connections: int,
    seconds: float,
    values_per_message: int = 10,
    versions: tuple[str, ...] = ("1.6", "2.0.1"),
    *,
    id_prefix: str = "LOAD",
) -> LoadResult:
    """Open every connection (in waves, as a fleet would), then load for `seconds`."""
    start = asyncio.Event()
    stop_at = [float("inf")]
    latencies: list[float] = []
    errors: list[str] = []
    tasks = []
    for i in range(n_connections):
        version = versions[i % len(versions)]
        tasks.append(asyncio.create_task(_connection(
            url, f"{id_prefix}{i:05d}", version, values_per_message, start, stop_at, latencies, errors)))  # fmt: skip
        if i % 50 == 49:
            await asyncio.sleep(0.05)
    await asyncio.sleep(1.0 + n_connections / 300)  # let every handshake finish
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    stop_at[0] = t0 + seconds
    start.set()
    counts = await asyncio.gather(*tasks)
    latencies.sort()
    return LoadResult(
        messages_acknowledged=sum(counts) - len(errors),
        latencies=latencies,
        errors=len(errors),
        connections=n_connections,
        seconds=loop.time() - t0,
        values_per_message=values_per_message,
        error_samples=errors[:3],
    )
