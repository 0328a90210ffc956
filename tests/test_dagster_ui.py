"""The Dagster UI as the data team uses it: `dg dev` on a scratch DAGSTER_HOME against a test
database holding a small imported history, the asset graph opened in headless Chromium (no error
banner, the assets drawn; the screenshot kept), and a partition launched through the webserver's
GraphQL API as the UI's Materialize does, which succeeds in one process; `chargeops ui` with
the embedded default, which starts its database once for all the runs. Also the instance
settings: the project's loggers reach a run's log."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import dagster as dg
import psycopg
import pytest
import yaml
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from chargeops.db import create_database, drop_database, upgrade
from chargeops.ui import TEMPLATE, DevServer, free_port, install_instance_settings

FIXTURES = Path(__file__).parent / "fixtures" / "import"
ARTIFACTS = Path(
    os.environ.get("CHARGEOPS_TEST_ARTIFACTS")
    or Path(__file__).resolve().parent.parent / "test-artifacts"
)
DAY = "2024-07-15"  # the ACN fixture's sessions: 2024-07-15 and 16 (UTC)
JOB = "analytics_daily"
ALL_ASSETS = "{ assetNodes { assetKey { path } } }"
# what the UI shows when a code location, a query or a page fails
ERROR_TEXTS = (
    "PythonError",
    "Unexpected GraphQL error",
    "An error occurred",
    "Error loading",
    "failed to load",
    "Something went wrong",
)


def received_earlier(url: str) -> None:
    """The imported rows as received two hours ago: received now they are late data for both
    days, and the late-data sensor (on by default, looking back an hour) would re-run them."""
    with psycopg.connect(url, autocommit=True) as conn:
        for table in ("meter_value", "status_event", "transaction_event"):
            conn.execute(f"UPDATE {table} SET received_at = received_at - interval '2 hours'")


@pytest.fixture(scope="module")
def ui(server_url: str, tmp_path_factory: pytest.TempPathFactory):
    """`dg dev` on its own DAGSTER_HOME and its own database holding the ACN fixture."""
    from chargeops.cli import main

    name = f"chargeops_test_ui_{uuid.uuid4().hex[:10]}"
    url = create_database(server_url, name)
    tmp = tmp_path_factory.mktemp("dagster-ui")
    old = os.environ.get("DATABASE_URL")
    try:
        upgrade(url)
        os.environ["DATABASE_URL"] = url
        assert main(["import", "acn", str(FIXTURES / "acn_sessions.json")]) == 0
        received_earlier(url)
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "DAGSTER_HOME": str(tmp / "dagster"),
            "CHARGEOPS_DATA_DIR": str(tmp / "data"),
            "CHARGEOPS_PARTITIONS_START": "2024-07-01",
        }
        with DevServer(env, tmp / "dg-dev.log", timeout=300) as server:
            print(f"dg dev at {server.url}, log {tmp / 'dg-dev.log'}")
            server.pause_automation()  # nothing but what the tests launch
            yield server
    finally:
        if old is None:
            os.environ.pop("DATABASE_URL", None)
        else:
            os.environ["DATABASE_URL"] = old
        drop_database(server_url, name)


def drawn(name: str, text: str) -> bool:
    """`name` on the page, whole or as the graph shortens a long one (`operator_da…_daily`)."""
    if name in text:
        return True
    for word in text.split():
        head, _, tail = word.partition("…")
        if _ and len(head) >= 4 and name.startswith(head) and name.endswith(tail):
            return True
    return False


@pytest.mark.once
def test_the_asset_graph_shows_every_asset_and_no_error(ui, tmp_path):
    from playwright.sync_api import sync_playwright

    from reports.browser import find_chromium

    # what the UI asks the webserver: the location loaded, its assets, no load error
    [entry] = ui.locations()
    assert entry["loadStatus"] == "LOADED"
    assert entry["locationOrLoadError"]["__typename"] == "RepositoryLocation", entry
    assets = {"/".join(n["assetKey"]["path"]) for n in ui.graphql(ALL_ASSETS)["assetNodes"]}
    assert {"sessions", "uptime", "energy", "utilisation", "emissions"} <= assets, assets

    shot = tmp_path / "asset_graph.png"
    problems: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=find_chromium(), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1920, "height": 1200})
        page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
        page.goto(f"{ui.url}/asset-groups")  # Lineage: the global asset graph
        page.get_by_text("Materialize all").first.wait_for(timeout=120_000)
        skip = page.get_by_role("button", name="Skip")  # the first visit's newsletter dialog
        with contextlib.suppress(PlaywrightTimeout):
            skip.wait_for(timeout=5_000)
            skip.click()
        # as a user does: the graph's context menu, "Expand all groups", then zoom out until
        # every asset's node is on the screen (nodes outside the view are not drawn)
        page.mouse.click(1700, 300, button="right")
        page.get_by_role("menuitem", name="Expand all groups").click()
        page.get_by_text("uptime", exact=True).first.wait_for(timeout=60_000)
        zoom_out = page.locator("button:has([aria-label='zoom_out'])")
        for _ in range(8):
            page.wait_for_timeout(500)
            text = page.inner_text("body")
            if all(drawn(a, text) for a in assets):
                break
            zoom_out.click()
        page.screenshot(path=shot)
        browser.close()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(shot, ARTIFACTS / "dagster_asset_graph.png")
    print(f"asset graph screenshot: {shot} (and {ARTIFACTS / 'dagster_asset_graph.png'})")
    assert not [a for a in assets if not drawn(a, text)], text[:3000]
    shown = [e for e in ERROR_TEXTS if e.lower() in text.lower()]
    assert not shown, f"error banner {shown}: {text[:3000]}"
    assert not problems, problems
    assert shot.stat().st_size > 20_000


@pytest.mark.once
def test_a_partition_launched_through_graphql_succeeds_in_one_process(ui):
    run = ui.wait_run(ui.launch_partition(JOB, DAY), timeout=600)
    events = ui.run_events(run["runId"])
    messages = [e.get("message") or "" for e in events]
    failures = [m for e, m in zip(events, messages, strict=True) if "Failure" in e["__typename"]]
    assert run["status"] == "SUCCESS", failures or messages[-20:]
    assert {"key": "dagster/partition", "value": DAY} in run["tags"]
    # the run launcher's process executes every step itself: the in-process executor
    started = [m for m in messages if m.startswith("Started process for run (pid: ")]
    in_process = [m for m in messages if m.startswith("Executing steps in process (pid: ")]
    assert len(started) == 1 and len(in_process) == 1, messages[:10]
    assert started[0].split("pid: ")[1].rstrip(").") == in_process[0].split("pid: ")[1].rstrip(")")
    assert not [m for m in messages if m.startswith("Launching subprocess for")]
    steps = {e["stepKey"] for e in events if e["__typename"] == "ExecutionStepSuccessEvent"}
    assert {"sessions", "uptime", "energy"} <= steps, steps


def test_the_project_loggers_reach_the_run_log(tmp_path):
    """deploy/dagster.yaml manages the loggers of the Stripe sync and the mailer (and the rest of
    the project's): what they log inside a run is in that run's event log."""
    settings = yaml.safe_load(TEMPLATE.read_text())
    managed = settings["python_logs"]["managed_python_loggers"]
    for name in ("pipelines.payments.sync", "reports.mail", "chargeops.embedded"):
        assert any(name == m or name.startswith(f"{m}.") for m in managed), name

    @dg.asset
    def logs_like_the_sync() -> None:
        logging.getLogger("pipelines.payments.sync").info("stripe charge: 3 upserted")
        logging.getLogger("reports.mail").warning("SMTP: deferred")

    home = tmp_path / "dagster"
    install_instance_settings(home)
    assert (home / "dagster.yaml").read_text() == TEMPLATE.read_text()
    with dg.instance_for_test(temp_dir=str(home), overrides=settings) as instance:
        result = dg.materialize([logs_like_the_sync], instance=instance)
        assert result.success
        logged = [
            e.user_message
            for e in instance.all_logs(result.run_id)
            if e.dagster_event is None and e.user_message
        ]
    assert "stripe charge: 3 upserted" in logged, logged
    assert "SMTP: deferred" in logged, logged


def test_an_older_copy_of_the_instance_settings_is_replaced_and_an_edited_one_kept(tmp_path):
    old = "run_coordinator:\n  module: dagster._core.run_coordinator\n"
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text(old)  # edited by someone: kept
    install_instance_settings(home)
    assert (home / "dagster.yaml").read_text() == old
    from chargeops import ui

    previous = tmp_path / "previous.yaml"  # an unedited copy of an earlier template: replaced
    previous.write_text("# earlier\n")
    import hashlib

    digest = hashlib.sha256(previous.read_bytes()).hexdigest()
    shutil.copyfile(previous, home / "dagster.yaml")
    ui._OLD_TEMPLATES.add(digest)
    try:
        install_instance_settings(home)
    finally:
        ui._OLD_TEMPLATES.discard(digest)
    assert (home / "dagster.yaml").read_text() == TEMPLATE.read_text()


@pytest.mark.once
@pytest.mark.embedded
def test_chargeops_ui_starts_the_embedded_database_once_for_all_its_runs(tmp_path):
    """`chargeops ui` with DATABASE_URL unset: the embedded server is started by it, held by it
    alone while a partition runs on it (no run or step starts or joins one), and stopped when
    the UI stops."""
    data = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(CHARGEOPS_DATA_DIR=str(data), CHARGEOPS_PARTITIONS_START="2024-07-01")
    cli = [sys.executable, "-m", "chargeops.cli"]
    for args in (["db", "upgrade"], ["import", "acn", str(FIXTURES / "acn_sessions.json")]):
        done = subprocess.run(cli + args, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
    pg = data / "pg"
    port = free_port()
    log = (tmp_path / "chargeops-ui.log").open("wb")
    ui_process = subprocess.Popen(
        [*cli, "ui", "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    try:
        ui = DevServer.attach(f"http://127.0.0.1:{port}", timeout=300)
        ui.wait_loaded()
        ui.wait_daemons()
        ui.pause_automation()
        server_pid = int((pg / "postmaster.pid").read_text().split()[0])
        holders = json.loads((pg / ".handle_pids.json").read_text())
        assert holders == [ui_process.pid]
        run_id, seen = ui.launch_partition(JOB, DAY), set()
        deadline = time.monotonic() + 600
        while (run := ui.run(run_id))["status"] not in ("SUCCESS", "FAILURE", "CANCELED"):
            assert time.monotonic() < deadline, run
            seen.update(json.loads((pg / ".handle_pids.json").read_text()))  # who holds it
            time.sleep(0.2)
        assert run["status"] == "SUCCESS"
        assert seen == {ui_process.pid}, "a run started or joined the embedded server itself"
        assert int((pg / "postmaster.pid").read_text().split()[0]) == server_pid

        ui_process.send_signal(signal.SIGTERM)  # passed on to dg dev as a Ctrl-C
        assert ui_process.wait(timeout=120) == 0
        deadline = time.monotonic() + 30
        while (pg / "postmaster.pid").exists() and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not (pg / "postmaster.pid").exists(), "the embedded server outlived the UI"
    finally:  # on a failure too: a clean stop, so that the embedded server goes with the UI
        if ui_process.poll() is None:
            ui_process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                ui_process.wait(timeout=120)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(ui_process.pid, signal.SIGKILL)
        ui_process.wait()
        log.close()
