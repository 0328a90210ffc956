"""Jobs, schedules and sensors as the data team meets them in the UI: every one described and
targeting what it says; the run-failure alert through a real SMTP server and a real webhook; no
secret in the Dagster instance's storage; the partitions starting at the first day of data."""

import json
import os
import re
import sqlite3
import subprocess
import sys
import threading
import zlib
from datetime import UTC, date, datetime, timedelta
from email import message_from_bytes
from email.policy import default as default_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import dagster as dg
import psycopg
import pytest
from rich.console import Console

from chargeops import periods
from pipelines.definitions import defs
from pipelines.jobmeta import OWNERS, STAGE_TAG, STAGES, TRIGGER_TAG
from pipelines.partitions import daily
from pipelines.resources import AlertsResource, DatabaseResource, SmtpResource
from tests.smtp import Collector, smtp_server

ROOT = Path(__file__).resolve().parent.parent

# what each job is for: its stage and exactly the assets it materialises
JOBS = {
    "analytics_daily": ("analytics", {
        "connector_states", "sessions", "utilisation", "uptime", "energy", "peak_usage",
        "expected_revenue", "emissions",
    }),
    "stripe_sync": ("payments", {"stripe_payments"}),
    "reconciliation_daily": ("payments", {"reconciliation"}),
    "maintenance_daily": ("maintenance", {"maintenance_features", "maintenance_scores"}),
    "maintenance_features_daily": ("maintenance", {"maintenance_features"}),
    "maintenance_scores_daily": ("maintenance", {"maintenance_scores"}),
    "maintenance_weekly": ("maintenance", {"maintenance_model"}),
    "quarterly_reports": ("reports", {"evchart_files", "compliance_report"}),
    "uk_reliability_yearly": ("reports", {"uk_reliability_report"}),
    "operator_dashboard_daily_job": ("dashboard", {"operator_dashboard_daily"}),
    "operator_dashboard_weekly_job": ("dashboard", {"operator_dashboard_weekly"}),
    "raw_freshness": ("raw", set()),  # the raw tables' checks only: Dagster writes no raw rows
}  # fmt: skip

# schedule -> (job, a tick, the partition it asks for); None: unpartitioned
TICKS = {
    "previous_day": ("analytics_daily", datetime(2026, 11, 24, 0, 30), "2026-11-23"),
    "reconcile_recent_days": ("reconciliation_daily", datetime(2026, 11, 24, 2), "2026-11-23"),
    "stripe_hourly": ("stripe_sync", datetime(2026, 11, 24, 5, 15), None),
    "maintenance_daily": ("maintenance_daily", datetime(2026, 11, 24, 1, 30), "2026-11-23"),
    "maintenance_weekly": ("maintenance_weekly", datetime(2026, 11, 23, 2), None),
    # the period that ended, not the one just begun (Dagster's partitioned-job schedule with
    # end_offset=1 would ask for 2026-07-01)
    "quarterly_reports_schedule": ("quarterly_reports", datetime(2026, 7, 1, 3), "2026-04-01"),
    "uk_reliability_yearly_schedule": (
        "uk_reliability_yearly",
        datetime(2027, 1, 1, 3),
        "2026-01-01",
    ),
    # no sites in the database: local days are UTC days
    "dashboard_daily": ("operator_dashboard_daily_job", datetime(2026, 11, 24, 6), "2026-11-23"),
    "dashboard_weekly": ("operator_dashboard_weekly_job", datetime(2026, 11, 23, 7), "2026-11-16"),
    "raw_freshness_every_5_min": ("raw_freshness", datetime(2026, 11, 24, 5, 5), None),
}


def _repo():
    return defs.get_repository_def()


def test_every_job_is_described_owned_and_selects_its_stage():
    repo = _repo()
    jobs = {j.name: j for j in repo.get_all_jobs() if not j.name.startswith("__")}
    assert set(jobs) == set(JOBS)
    for name, (stage, assets) in JOBS.items():
        job = jobs[name]
        assert job.description and len(job.description) > 40, name
        assert job.owners == OWNERS, name
        assert job.tags[STAGE_TAG] == stage, name
        assert job.run_tags[STAGE_TAG] == stage, name  # the UI's runs of it carry it too
        selected = {k.to_user_string() for k in job.asset_layer.selected_asset_keys}
        assert selected == assets, name
    assert {stage for stage, _ in JOBS.values()} == set(STAGES)


def test_every_schedule_is_described_on_and_asks_its_job_for_the_right_partition(
    db, database_url, monkeypatch
):
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("STRIPE_API_KEY", "sk_test_schedule")
    repo = _repo()
    schedules = {s.name: s for s in repo.schedule_defs}
    assert set(schedules) == set(TICKS)
    with dg.instance_for_test() as instance:
        for name, (job, tick, key) in TICKS.items():
            schedule = schedules[name]
            assert schedule.job_name == job, name
            assert schedule.description and len(schedule.description) > 30, name
            assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING, name
            assert schedule.execution_timezone == "UTC", name
            with dg.build_schedule_context(
                instance=instance,
                scheduled_execution_time=tick.replace(tzinfo=UTC),
                repository_def=repo,
                resources={"database": DatabaseResource(url=database_url)},
            ) as ctx:  # (a context left open restores its instance later, in another test)
                result = schedule.evaluate_tick(ctx)
            requests = result.run_requests
            assert requests, (name, result.skip_message)
            assert requests[0].partition_key == key, name
            assert requests[0].tags[TRIGGER_TAG] == name, name
    with dg.build_schedule_context(
        scheduled_execution_time=datetime(2026, 11, 24, 2, tzinfo=UTC), repository_def=repo
    ) as ctx:
        reconcile = schedules["reconcile_recent_days"].evaluate_tick(ctx)
    assert len(reconcile.run_requests) == 30
    assert reconcile.run_requests[-1].partition_key == "2026-10-25"
    monkeypatch.delenv("STRIPE_API_KEY")
    with dg.build_schedule_context(
        scheduled_execution_time=datetime(2026, 11, 24, tzinfo=UTC), repository_def=repo
    ) as ctx:
        skipped = schedules["stripe_hourly"].evaluate_tick(ctx)
    assert not skipped.run_requests and "STRIPE_API_KEY" in skipped.skip_message


def test_every_sensor_is_described_on_and_targets_what_it_says():
    sensors = {s.name: s for s in _repo().sensor_defs}
    assert set(sensors) == {"late_data", "run_failure_alert"}
    for sensor in sensors.values():
        assert sensor.description and len(sensor.description) > 40, sensor.name
        assert sensor.default_status == dg.DefaultSensorStatus.RUNNING, sensor.name
    assert [t.job_name for t in sensors["late_data"].targets] == ["analytics_daily"]
    assert sensors["late_data"].minimum_interval_seconds == 300
    alert = sensors["run_failure_alert"]
    assert isinstance(alert, dg.RunStatusSensorDefinition)  # of failures: see below
    assert not alert.targets  # it tells people; it launches nothing
    assert alert.required_resource_keys == {"smtp", "alerts"}


# -- the run-failure alert ---------------------------------------------------------------------


class Webhook:
    """A real HTTP server on 127.0.0.1 that keeps what is POSTed and answers `status`."""

    def __init__(self, status: int = 200):
        self.status, self.posts = status, []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hook.posts.append((self.path, self.headers["Content-Type"], body))
                self.send_response(hook.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"


@dg.asset(partitions_def=daily)
def meter_day(context: dg.AssetExecutionContext) -> None:
    raise ValueError(f"no meter values for {context.partition_key}")


@dg.asset(partitions_def=daily, deps=[meter_day])
def downstream_day() -> None:
    pass


@dg.asset(partitions_def=daily)
def fine_day() -> None:
    pass


failing_job = dg.define_asset_job("failing_daily", selection=[meter_day, downstream_day])
fine_job = dg.define_asset_job("fine_daily", selection=[fine_day])


def _tick(sensor, instance, cursor, resources):
    with dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources) as ctx:
        return sensor.evaluate_tick(ctx), ctx.cursor


def _failure_context(instance, run, resources):
    """What the sensor machinery hands `run_failure_alert` for the failed `run`."""
    return dg.build_run_status_sensor_context(
        sensor_name="run_failure_alert",
        dagster_event=run.get_run_failure_event(),
        dagster_instance=instance,
        dagster_run=run.dagster_run,
        resources=resources,
    )


def test_a_failed_run_is_mailed_and_posted(tmp_path):
    """A run of a job fails in a real instance; the daemon's evaluation of the real sensor
    function (cursor included) mails the data team through the SMTP resource and POSTs JSON to
    the webhook, naming the job, run, partition, failed step and error."""
    from pipelines.defs.alerts.sensors import run_failure_alert

    handler = Collector()
    with (
        dg.instance_for_test(temp_dir=str(tmp_path)) as instance,
        smtp_server(handler) as srv,
        Webhook() as hook,
    ):
        resources = {
            "smtp": SmtpResource(host="127.0.0.1", port=srv.port, security="none"),
            "alerts": AlertsResource(
                to="Data team <data-team@example.org>",
                webhook_url=hook.url("/hooks/T000/s3cr3t-token"),
                ui_url="http://dagster.example.org:3000/",
            ),
        }
        first, cursor = _tick(run_failure_alert, instance, None, resources)
        assert "Initiating" in first.skip_message  # the cursor starts at the newest event
        jobs = dg.Definitions(
            assets=[meter_day, downstream_day, fine_day], jobs=[failing_job, fine_job]
        )
        fine = jobs.resolve_job_def("fine_daily").execute_in_process(
            instance=instance, partition_key="2026-11-23"
        )
        run = jobs.resolve_job_def("failing_daily").execute_in_process(
            instance=instance, partition_key="2026-11-23", raise_on_error=False
        )
        assert fine.success and not run.success
        tick, cursor = _tick(run_failure_alert, instance, cursor, resources)
        reaction = tick.dagster_run_reactions  # the failed run only
        assert [r.dagster_run.run_id for r in reaction] == [run.run_id]
        assert reaction[0].error is None
        # a later tick: the run is not reported twice
        again, _ = _tick(run_failure_alert, instance, cursor, resources)
        assert not again.dagster_run_reactions

    assert len(handler.received) == 1
    sender, rcpts, raw = handler.received[0]
    assert rcpts == ["data-team@example.org"]
    mail = message_from_bytes(raw, policy=default_policy)
    assert mail["Subject"] == "[chargeops] run failed: failing_daily 2026-11-23: 1 step failed"
    assert mail["X-Chargeops-Run-Id"] == run.run_id
    text = mail.get_body(("plain",)).get_content()
    assert f"Run:       {run.run_id}" in text
    assert "Partition: 2026-11-23" in text
    assert "- meter_day: ValueError: no meter values for 2026-11-23" in text
    assert f"http://dagster.example.org:3000/runs/{run.run_id}" in text
    html = mail.get_body(("html",)).get_content()
    assert "no meter values for 2026-11-23" in html and "<h2>Run failed: failing_daily" in html

    assert len(hook.posts) == 1
    path, content_type, body = hook.posts[0]
    assert path == "/hooks/T000/s3cr3t-token" and content_type == "application/json"
    payload = json.loads(body)
    assert payload["event"] == "run_failure"
    assert (payload["job"], payload["run_id"], payload["partition"]) == (
        "failing_daily", run.run_id, "2026-11-23"
    )  # fmt: skip
    assert payload["failed_steps"] == [
        {"step": "meter_day", "error": "ValueError: no meter values for 2026-11-23"}
    ]
    assert "failing_daily" in payload["error"]
    assert payload["url"] == f"http://dagster.example.org:3000/runs/{run.run_id}"
    assert payload["text"].startswith("run failed: failing_daily 2026-11-23")


def test_a_range_run_names_its_range_and_a_broken_webhook_fails_the_tick_not_the_mail(tmp_path):
    """A backfill's run of a range of days: the alert names the range. A webhook that answers
    404 is reported on the sensor's tick (without the URL's secret path) and the mail still goes."""
    from pipelines.defs.alerts.sensors import run_failure_alert

    handler = Collector()
    with (
        dg.instance_for_test(temp_dir=str(tmp_path)) as instance,
        smtp_server(handler) as srv,
        Webhook(status=404) as hook,
    ):
        job = dg.Definitions(assets=[meter_day, downstream_day], jobs=[failing_job])
        run = job.resolve_job_def("failing_daily").execute_in_process(
            instance=instance,
            raise_on_error=False,
            tags={
                "dagster/asset_partition_range_start": "2026-11-01",
                "dagster/asset_partition_range_end": "2026-11-30",
            },
        )
        assert not run.success
        resources = {
            "smtp": SmtpResource(host="127.0.0.1", port=srv.port, security="none"),
            "alerts": AlertsResource(
                to="data-team@example.org", webhook_url=hook.url("/hook/t0ken-in-path")
            ),
        }
        with _failure_context(instance, run, resources) as ctx, pytest.raises(RuntimeError) as err:
            run_failure_alert(ctx)
    message = str(err.value)
    assert "webhook http://127.0.0.1:" in message and "HTTP 404" in message
    assert "t0ken-in-path" not in message
    assert "delivered: mail to data-team@example.org" in message
    assert len(hook.posts) == 1  # a 404 is final: not tried again
    mail = message_from_bytes(handler.received[0][2], policy=default_policy)
    assert "failing_daily 2026-11-01..2026-11-30" in mail["Subject"]


def test_nobody_configured_nobody_told(tmp_path, monkeypatch):
    from pipelines.defs.alerts.sensors import run_failure_alert

    for name in ("CHARGEOPS_ALERT_TO", "CHARGEOPS_ALERT_WEBHOOK", "CHARGEOPS_SMTP_HOST"):
        monkeypatch.delenv(name, raising=False)
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        job = dg.Definitions(assets=[meter_day, downstream_day], jobs=[failing_job])
        run = job.resolve_job_def("failing_daily").execute_in_process(
            instance=instance, partition_key="2026-11-23", raise_on_error=False
        )
        resources = {"smtp": SmtpResource(), "alerts": AlertsResource()}
        with _failure_context(instance, run, resources) as ctx:
            assert run_failure_alert(ctx) is None
        # an address without a relay is a misconfiguration, said on the tick
        monkeypatch.setenv("CHARGEOPS_ALERT_TO", "data-team@example.org")
        with (
            _failure_context(instance, run, resources) as ctx,
            pytest.raises(RuntimeError, match="no SMTP relay is configured"),
        ):
            run_failure_alert(ctx)


# -- secrets -------------------------------------------------------------------------------------


def _inflate(data: bytes) -> bytes | None:
    try:
        return zlib.decompress(data)
    except zlib.error:
        return None


def _storage_texts(home: Path):
    """Every piece of text the Dagster instance under `home` keeps: each cell of each table of
    each sqlite database (runs, event logs, schedules; snapshots are zlib-compressed, so
    decompressed too) and the bytes of every other file (compute logs, config)."""
    for path in sorted(home.rglob("*")):
        if not path.is_file():
            continue
        data = path.read_bytes()
        yield str(path), data
        if data.startswith(b"SQLite format 3"):
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            try:
                tables = [
                    r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
                ]
                for table in tables:
                    for row in conn.execute(f'SELECT * FROM "{table}"'):
                        for cell in row:
                            if isinstance(cell, bytes):
                                yield f"{path}:{table}", cell
                                inflated = _inflate(cell)
                                if inflated is not None:
                                    yield f"{path}:{table} (zlib)", inflated
                            elif isinstance(cell, str):
                                yield f"{path}:{table}", cell.encode()
            finally:
                conn.close()


def _leaks(home: Path, pattern: bytes) -> list[str]:
    regex = re.compile(pattern)
    return sorted({where for where, data in _storage_texts(home) if regex.search(data)})


def _with_password(url: str, password: str) -> str:
    """The same database, with a password in the URL (the local server trusts, so it is
    accepted and ignored): a stand-in for a production DATABASE_URL."""
    info = psycopg.conninfo.conninfo_to_dict(url)
    info["password"] = password
    return psycopg.conninfo.make_conninfo(**info)


def test_the_demos_stripe_key_and_the_database_password_stay_out_of_run_storage(
    db, database_url, tmp_path, monkeypatch
):
    """The demo's Stripe stage (a local Stripe with a random `sk_test_local_...` key) into the
    persistent instance `make ui` opens: neither that key nor the DATABASE_URL's password is in
    any table or file of the instance."""
    from chargeops.demo import run_payments
    from chargeops.settings import Settings
    from pipelines.runner import DagsterRunner

    url = _with_password(database_url, "pw-not-in-storage-6d1f")
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "unused"))  # restored afterwards
    monkeypatch.delenv("STRIPE_API_KEY", raising=False)
    settings = Settings(database_url=url, data_dir=tmp_path / "data")
    runner = DagsterRunner(url, settings, Console(file=open(os.devnull, "w")))  # noqa: SIM115
    run_payments(runner, url, [], seed=3, console=runner.console)
    assert runner.runs == 1 and not runner.failed, runner.failed
    assert "STRIPE_API_KEY" not in os.environ  # the demo's key was the stage's alone
    home = tmp_path / "data" / "dagster"
    assert any(home.rglob("*.db"))
    assert _leaks(home, rb"sk_test_local_[0-9a-f]{24}") == []
    assert _leaks(home, rb"pw-not-in-storage-6d1f") == []
    # what the snapshot shows instead: the variables' names
    assert _leaks(home, rb"env[^:]*: ?[^S]{0,3}STRIPE_API_KEY"), (
        "the job snapshot names the variable"
    )


def test_the_stripe_key_set_through_envvar_never_reaches_run_storage(
    db, database_url, tmp_path, monkeypatch
):
    """The code location's own StripeResource (`dg.EnvVar("STRIPE_API_KEY")`), as a UI launch
    runs it, into a persistent instance (a DAGSTER_HOME of its own)."""
    from pipelines.payments.local_stripe import LocalStripe

    secret = "sk_test_envvar_5e3c1a9b0d7f2e4a"
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("STRIPE_API_KEY", secret)
    with LocalStripe(api_key=secret) as server:
        server.store.create_payment(amount=1500, currency="usd", created=1_764_000_000)
        monkeypatch.setenv("CHARGEOPS_STRIPE_API_BASE", server.base_url)
        with dg.DagsterInstance.get() as instance:
            result = defs.resolve_job_def("stripe_sync").execute_in_process(
                instance=instance, raise_on_error=False
            )
        assert any(r.path == "/v1/payment_intents" for r in server.requests)
    assert result.success
    assert _leaks(home, re.escape(secret.encode())) == []
    assert _leaks(home, rb"env[^:]*: ?[^S]{0,3}STRIPE_API_KEY")


# -- the first partition ---------------------------------------------------------------------


def test_partitions_start_explicit_then_recorded_then_default(tmp_path):
    data = tmp_path / "data"
    env = {"CHARGEOPS_DATA_DIR": str(data)}
    assert periods.partitions_start(env) == date(2024, 1, 1)  # nothing recorded
    assert periods.record_data_start(data, date(2026, 11, 10)) == date(2026, 11, 10)
    assert (data / "partitions_start").read_text() == "2026-11-10\n"
    assert periods.partitions_start(env) == date(2026, 11, 10)
    # new data never moves the start forward; older history moves it back
    assert periods.record_data_start(data, date(2026, 11, 20)) == date(2026, 11, 10)
    assert periods.record_data_start(data, date(2021, 5, 1)) == date(2021, 5, 1)
    # a demo that cleared the raw tables starts again at its own first day
    assert periods.record_data_start(data, date(2026, 11, 10), replace=True) == date(2026, 11, 10)
    # the variable always wins
    explicit = {**env, "CHARGEOPS_PARTITIONS_START": "2025-03-01"}
    assert periods.partitions_start(explicit) == date(2025, 3, 1)
    with pytest.raises(ValueError, match="CHARGEOPS_PARTITIONS_START='x' is not an ISO date"):
        periods.partitions_start({**env, "CHARGEOPS_PARTITIONS_START": "x"})
    (data / "partitions_start").write_text("garbage")
    with pytest.raises(ValueError, match="partitions_start holds 'garbage'"):
        periods.partitions_start(env)


def _partitions_in_a_new_process(env: dict) -> dict:
    """What a process of its own (as `dagster dev` starts for the code location) sees."""
    code = (
        "import json; from pipelines.partitions import daily, quarterly, yearly, weekly; "
        "print(json.dumps({n: p.start.date().isoformat() for n, p in "
        "[('daily', daily), ('quarterly', quarterly), ('yearly', yearly), ('weekly', weekly)]}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_the_code_location_process_starts_at_the_recorded_day(tmp_path):
    data = tmp_path / "data"
    periods.record_data_start(data, date(2026, 11, 10))
    env = {k: v for k, v in os.environ.items() if k != "CHARGEOPS_PARTITIONS_START"}
    env["CHARGEOPS_DATA_DIR"] = str(data)
    assert _partitions_in_a_new_process(env) == {
        "daily": "2026-11-10", "quarterly": "2026-10-01", "yearly": "2026-01-01",
        "weekly": "2026-11-09",
    }  # fmt: skip
    env["CHARGEOPS_PARTITIONS_START"] = "2025-02-03"
    assert _partitions_in_a_new_process(env)["daily"] == "2025-02-03"


def test_an_import_and_a_backfill_record_their_first_day(
    db, database_url, tmp_path, monkeypatch, capsys
):
    """`chargeops import` records the file's first day; `chargeops backfill` of an earlier day
    moves the start back (with the variable unset; set, it wins and is only overridden for that
    run, as before)."""
    from chargeops.cli import main

    data = tmp_path / "data"
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("CHARGEOPS_DATA_DIR", str(data))
    fixture = ROOT / "tests" / "fixtures" / "import" / "chargepoint_sessions.csv"
    assert main(["import", "chargepoint", str(fixture), "--dry-run"]) in (0, 1)
    assert periods.recorded_start({"CHARGEOPS_DATA_DIR": str(data)}) is None  # nothing written
    assert main(["import", "chargepoint", str(fixture)]) in (0, 1)
    first = db.execute(
        "SELECT min((start_ts AT TIME ZONE 'UTC')::date) FROM transaction"
    ).fetchone()[0]
    assert first is not None
    assert periods.recorded_start({"CHARGEOPS_DATA_DIR": str(data)}) == first
    monkeypatch.delenv("CHARGEOPS_PARTITIONS_START")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))  # the runner sets it
    earlier = first - timedelta(days=1)
    capsys.readouterr()
    assert main(["backfill", "--from", earlier.isoformat()]) == 0
    assert f"the partitions now start at {earlier}" in capsys.readouterr().out
    assert periods.recorded_start({"CHARGEOPS_DATA_DIR": str(data)}) == earlier
