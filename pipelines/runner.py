"""Materialising assets from the command line (`chargeops demo`, `chargeops backfill`) into the
persistent Dagster instance under the data folder, so that `dagster dev` (`make ui`) shows the
same runs, metadata and check results as if the UI had launched them."""

import logging
import os
import shutil
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import dagster as dg
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from chargeops.periods import quarter_start
from chargeops.settings import Settings
from pipelines.partitions import DAILY_BACKFILL
from pipelines.resources import DatabaseResource, ModelStoreResource, ReportsResource

Run = tuple[str, str | None]  # (label, partition key or None)
RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"


def day_ranges(days: list[date], most: int, workers: int = 1) -> list[list[date]]:
    """`days` in runs of consecutive days, at most `most` each, a stretch of consecutive days
    cut into pieces of equal length and, with `workers`, into a multiple of `workers` pieces
    (137 days on 2 workers: 6 runs of 22-23 days, 3 rounds, rather than 31, 31, 31, 31, 13,
    whose last round has one worker idle)."""
    stretches: list[list[date]] = []
    for day in sorted(set(days)):
        if stretches and (day - stretches[-1][-1]).days == 1:
            stretches[-1].append(day)
        else:
            stretches.append([day])
    chunks: list[list[date]] = []
    for stretch in stretches:
        pieces = -(-len(stretch) // most)
        if workers > 1 and pieces > 1:
            pieces = min(len(stretch), -(-pieces // workers) * workers)
        size = -(-len(stretch) // pieces)
        chunks += [stretch[i : i + size] for i in range(0, len(stretch), size)]
    return chunks


def dagster_home(data_dir: Path) -> Path:
    return (Path(data_dir) / "dagster").resolve()


class DagsterRunner:
    """Runs selections of assets with their checks, a progress bar per stage, and counts what
    failed: runs, and checks of ERROR severity (a failing WARN check is a warning)."""

    def __init__(
        self,
        url: str,
        settings: Settings,
        console: Console | None = None,
        *,
        ephemeral: bool = False,
        workers: int = 1,
    ):
        """`ephemeral`: keep the runs' events in memory (the robustness sweep) instead of the
        instance `make ui` shows. `workers`: processes a backfill's ranges run in at once."""
        self.ephemeral, self.workers = ephemeral, max(1, workers)
        self.url, self.settings = url, settings
        self.console = console or Console()
        self.home = home = dagster_home(settings.data_dir)
        home.mkdir(parents=True, exist_ok=True)
        config = Path(__file__).resolve().parent.parent / "deploy" / "dagster.yaml"
        if config.is_file() and not (home / "dagster.yaml").exists():
            shutil.copy(config, home / "dagster.yaml")
        os.environ["DAGSTER_HOME"] = str(home)
        import great_expectations  # noqa: F401  (its loggers exist once imported)

        for name in ("great_expectations", "great_expectations.data_context.types.base"):
            logging.getLogger(name).setLevel(logging.WARNING)
        self.failed: list[str] = []  # runs, and checks of ERROR severity
        self.warnings: list[str] = []  # checks of WARN severity
        self.runs = 0

    def resources(self, **extra) -> dict:
        # DATABASE_URL may hold a password: as a dg.EnvVar the runs' snapshots keep its name (the
        # embedded default's URL, which has none, is passed as it is)
        url = dg.EnvVar("DATABASE_URL") if os.environ.get("DATABASE_URL") == self.url else self.url
        return {
            "database": DatabaseResource(url=url),
            "reports": ReportsResource(directory=str(self.settings.reports_path.resolve())),
            "model_store": ModelStoreResource(
                directory=str((self.settings.data_dir / "models").resolve())
            ),
            **extra,
        }

    @property
    def failures(self) -> int:
        return len(self.failed)

    def run(
        self,
        what: str,
        job: str,
        runs: list[Run],
        **resources,
    ) -> None:
        """Execute the code location's `job` once per (label, partition key), in turn, recording
        what failed. Runs carry the job's name, so each one in the UI traces back to the job
        that made it."""
        self._runs(what, job, [(label, key, None) for label, key in runs], resources)

    def _runs(self, what: str, job: str, runs: list[tuple], resources: dict) -> None:
        """(label, partition key, range) runs: a range (first key, last key) is one run of a
        backfill's kind, and ranges go `self.workers` at a time in processes of their own (as a
        Dagster backfill's runs go `max_concurrent_runs` at a time); a range that fails is run
        again day by day, so what failed is the day that failed and every other day is done."""
        from pipelines.definitions import defs

        job_def = defs.resolve_job_def(job)
        with self._instance() as instance, Progress(
            TextColumn(what), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[label]}"),
            TimeElapsedColumn(), console=self.console,
        ) as progress:  # fmt: skip
            total = sum(len(keys) if keys else 1 for _, _, keys in runs)
            task = progress.add_task(what, total=total, label="")
            ranges = [r for r in runs if r[2]]
            outcomes: dict[str, Outcome] = {}
            if self.workers > 1 and len(ranges) > 1 and not resources:
                outcomes = self._in_workers(what, job, ranges, progress, task)
            for label, key, keys in runs:
                progress.update(task, label=label)
                outcome = outcomes.get(label)
                if outcome is None:
                    result = self._execute(job_def, instance, what, resources, key, keys)
                    outcome = _outcome(result, job, label)
                    if outcome.success or not keys:
                        progress.advance(task, len(keys) if keys else 1)
                if keys and not outcome.success:
                    for day in keys:  # again one run per day: the failures are the days'
                        progress.update(task, label=day)
                        result = self._execute(job_def, instance, what, resources, day)
                        self._take(_outcome(result, job, day))
                        progress.advance(task)
                    continue
                self._take(outcome)

    def _in_workers(self, what: str, job: str, ranges: list[tuple], progress, task) -> dict:
        """Run the ranges in `self.workers` processes (spawned: nothing of this one's threads or
        connections is inherited); their outcomes by label."""
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        context = multiprocessing.get_context("spawn")
        outcomes: dict[str, Outcome] = {}
        workers = min(self.workers, len(ranges))
        with ProcessPoolExecutor(workers, mp_context=context) as pool:
            futures = {
                pool.submit(_range_run, self.url, self.settings, self.ephemeral, what, job, keys): (
                    label,
                    keys,
                )
                for label, _, keys in ranges
            }
            for future in as_completed(futures):
                label, keys = futures[future]
                outcome = outcomes[label] = future.result()
                self.runs += 1
                if outcome.success:
                    progress.advance(task, len(keys))
        return outcomes

    def _instance(self):
        return dg.DagsterInstance.ephemeral() if self.ephemeral else dg.DagsterInstance.get()

    def _execute(self, job_def, instance, what: str, resources: dict, key=None, keys=None):
        """One run of `job_def`: of partition `key`, or of the range of partition `keys`."""
        tags = {"chargeops/cli_stage": what}  # the job keeps its own chargeops/stage
        if keys:
            tags[RANGE_START], tags[RANGE_END] = keys[0], keys[-1]
        self.runs += 1
        return job_def.execute_in_process(
            partition_key=key,
            resources=self.resources(**resources),
            instance=instance,
            raise_on_error=False,
            run_config={"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}},
            tags=tags,
        )

    def _take(self, outcome: "Outcome") -> None:
        self.failed += outcome.failed
        self.warnings += outcome.warnings
        for line in outcome.lines:
            self.console.print(line)

    def analytics(self, days: list[date]) -> None:
        """The `analytics_daily` job (every daily analytics asset with its checks) over `days`:
        one day is one run; more are runs of up to a month of consecutive days each, as a
        Dagster backfill runs them (`pipelines.partitions.DAILY_BACKFILL`)."""
        if len(days) == 1:
            self.run("analytics", "analytics_daily", [(str(days[0]), days[0].isoformat())])
            return
        runs = [
            (f"{chunk[0]}..{chunk[-1]}", None, [d.isoformat() for d in chunk])
            for chunk in day_ranges(
                days, DAILY_BACKFILL.max_partitions_per_run or len(days), self.workers
            )
        ]
        self._runs("analytics", "analytics_daily", runs, {})

    def reports(self, days: list[date]) -> dict:
        """EV-ChART files and the compliance report for each quarter the days touch, the UK
        reliability figures for each year."""
        quarters = sorted({quarter_start(d).isoformat() for d in days})
        years = sorted({f"{d.year}-01-01" for d in days})
        self.run("quarterly reports", "quarterly_reports", [(f"quarter {q}", q) for q in quarters])
        self.run("UK reliability", "uk_reliability_yearly", [(f"year {y[:4]}", y) for y in years])
        folder = self.settings.reports_path
        files = sorted(p for p in folder.rglob("*") if p.is_file() and p.parent != folder)
        self.console.print(f"{len(files)} report files under {folder}")
        return {"files": len(files)}

    def dashboards(self, days: list[date], **resources) -> dict:
        """The operator dashboard for the last day of `days` that is whole in every site's local
        time (the day before the last when a site is west of UTC: its last day ends in a UTC day
        not computed) and the last whole ISO week up to it (the week of that day when none is
        whole); mailed where SMTP is configured."""
        from datetime import timedelta

        from chargeops.local_days import last_whole_day
        from chargeops.periods import iso_week
        from pipelines.resources import DashboardResource, SmtpResource
        from reports.dashboard import site_zones

        last = max(days[0], last_whole_day(days[-1] + timedelta(days=1), site_zones(self.url)))
        week = iso_week(last)
        if week.end > last and week.start - timedelta(days=1) >= days[0]:
            week = iso_week(week.start - timedelta(days=1))
        mail = {"smtp": SmtpResource(), "dashboard_recipients": DashboardResource(), **resources}
        self.run(
            "daily dashboard",
            "operator_dashboard_daily_job",
            [(f"day {last}", last.isoformat())],
            **mail,
        )
        self.run(
            "weekly dashboard",
            "operator_dashboard_weekly_job",
            [(f"week {week.label}", week.start.isoformat())],
            **mail,
        )
        root = self.settings.reports_path
        folders = [root / p / "dashboard" for p in (last.isoformat(), week.label)]
        emails = sorted(p for f in folders for p in f.glob("*/dashboard.eml"))
        for f in folders:
            self.console.print(f"dashboards: {f}")
        return {"dashboards": len(emails), "folders": folders, "week": week.label, "day": last}


@dataclass
class Outcome:
    """What a run left to count: the checks of ERROR severity and the run itself if it failed,
    the checks of WARN severity, and the lines that say so (picklable: a worker returns it)."""

    success: bool
    failed: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)


def _outcome(result, job: str, label: str) -> Outcome:
    """A run's failed checks (per partition, in a range run) and failed steps."""
    out = Outcome(success=result.success)
    for evaluation in result.get_asset_check_evaluations():
        if evaluation.passed:
            continue
        where = evaluation.partition or label
        name = f"{evaluation.check_name} ({where})"
        if evaluation.severity == dg.AssetCheckSeverity.WARN:
            out.warnings.append(name)
            out.lines.append(f"[yellow]warning: {name}")
            continue
        out.failed.append(name)
        out.lines.append(f"[red]check {evaluation.check_name} failed for {where}")
    if not result.success:
        out.failed.append(f"{job} run ({label})")
        for event in result.get_step_failure_events():
            error = event.event_specific_data.error
            while error is not None and error.cause is not None:
                error = error.cause  # the user code's own exception
            message = error.message.strip().splitlines()[-1] if error else "failed"
            out.lines.append(f"[red]{event.step_key} ({label}): {message[:300]}")
    return out


def _range_run(
    url: str, settings: Settings, ephemeral: bool, what: str, job: str, keys: list[str]
) -> Outcome:
    """A worker process's range run (`DagsterRunner._in_workers`)."""
    from pipelines.definitions import defs

    runner = DagsterRunner(url, settings, Console(quiet=True), ephemeral=ephemeral)
    with runner._instance() as instance:
        result = runner._execute(defs.resolve_job_def(job), instance, what, {}, keys=keys)
        return _outcome(result, job, f"{keys[0]}..{keys[-1]}")
