"""Run a simulated fleet against a collector over real websockets, in compressed time.

A discrete-event loop over simulated time shared by all charge points: events are grouped in
windows of `config.batch_window_s` simulated seconds; for each window the shared clock (if any)
is advanced to the window's last event time, then every charge point with events in the window
sends them in order, charge points concurrently. `speed=None` runs as fast as the collector
answers; `speed=k` paces the loop at k simulated seconds per wall second.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from .behaviour import FaultTruth, OfflineTruth, SessionTruth, generate_fleet
from .client import ClientStats, CollectorUnavailable, SimChargePoint
from .config import FleetConfig

if TYPE_CHECKING:
    from ingest.clock import SimClock


@dataclass
class FleetSummary:
    messages: Counter  # sent (answered) messages by OCPP action
    sessions: list[SessionTruth]  # ground truth
    total_energy_wh: int
    faults: list[FaultTruth]
    offline_windows: list[OfflineTruth]
    late_messages: int  # queued while offline, sent on reconnect
    charge_points: int
    elapsed_s: float  # wall seconds
    errors: int  # CALLERRORs and unanswered messages
    error_samples: list[str] = field(default_factory=list)
    retries: int = 0
    simulated_days: float = 0.0

    @property
    def total_messages(self) -> int:
        return sum(self.messages.values())


async def run_fleet(
    config: FleetConfig,
    url: str,
    *,
    clock: SimClock | None = None,
    speed: float | None = None,
    progress: bool = True,
    concurrency_limit: int | None = None,
) -> FleetSummary:
    """Replay the fleet's timelines against the collector at `url` (ws://HOST:PORT/ocpp).

    Raises CollectorUnavailable (a ConnectionError) if the collector cannot be reached.
    """
    if speed is not None and speed <= 0:
        raise ValueError(f"speed: must be > 0 simulated seconds per wall second, got {speed}")
    wall0 = time.perf_counter()
    timeline = generate_fleet(config)
    stats = ClientStats()
    t0 = config.start.timestamp()
    t1 = config.end.timestamp()
    window = float(config.batch_window_s)

    clients = {
        cp_id: SimChargePoint(tl.config, url, stats, validate=config.validate_messages)
        for cp_id, tl in timeline.timelines.items()
    }
    # window index -> [(client, [events])]
    windows: dict[int, list] = defaultdict(list)
    for cp_id, tl in timeline.timelines.items():
        cur_w, cur = None, None
        for ev in tl.events:
            w = int((ev.send_at - t0) // window)
            if w != cur_w:
                cur = []
                windows[w].append((clients[cp_id], cur))
                cur_w = w
            cur.append(ev)
    order = sorted(windows)
    sem = asyncio.Semaphore(concurrency_limit) if concurrency_limit else None

    async def run_cp(client: SimChargePoint, events: list) -> None:
        if sem is None:
            for ev in events:
                await client.handle(ev)
        else:
            async with sem:
                for ev in events:
                    await client.handle(ev)

    prog = None
    task_id = None
    if progress:
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        prog = Progress(
            TextColumn("simulating"),
            BarColumn(),
            TextColumn("{task.completed:.1f}/{task.total:.1f} days"),
            TextColumn("{task.fields[msgs]} msgs"),
            TimeElapsedColumn(),
            transient=False,
        )
        prog.start()
        task_id = prog.add_task("fleet", total=config.days, msgs=0)
    loop = asyncio.get_running_loop()
    wall_start = loop.time()
    try:
        for w in order:
            batch = windows[w]
            t_last = max(evs[-1].send_at for _, evs in batch)
            if speed is not None:
                delay = wall_start + (t_last - t0) / speed - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
            if clock is not None:
                clock.advance_to(datetime.fromtimestamp(t_last, UTC))
            if len(batch) == 1:
                await run_cp(*batch[0])
            else:
                results = await asyncio.gather(
                    *(run_cp(c, evs) for c, evs in batch), return_exceptions=True
                )
                for r in results:
                    if isinstance(r, CollectorUnavailable):
                        raise r
                    if isinstance(r, BaseException):
                        raise r
            if prog is not None:
                prog.update(
                    task_id,
                    completed=min(config.days, (t_last - t0) / 86400.0),
                    msgs=sum(stats.sent.values()),
                )
        if clock is not None:
            clock.advance_to(datetime.fromtimestamp(t1, UTC))
        if prog is not None:
            prog.update(task_id, completed=config.days, msgs=sum(stats.sent.values()))
    finally:
        if prog is not None:
            prog.stop()
        await asyncio.gather(*(c.disconnect() for c in clients.values()), return_exceptions=True)

    return FleetSummary(
        messages=Counter(stats.sent),
        sessions=timeline.sessions,
        total_energy_wh=sum(s.energy_wh for s in timeline.sessions),
        faults=timeline.faults,
        offline_windows=timeline.offline,
        late_messages=stats.late,
        charge_points=len(clients),
        elapsed_s=time.perf_counter() - wall0,
        errors=stats.errors,
        error_samples=list(stats.error_samples),
        retries=stats.retries,
        simulated_days=config.days,
    )
