"""The Dagster UI on the chargeops instance: `chargeops ui` (what `make ui` runs), and `DevServer`,
a running `dg dev` driven through its GraphQL API as the UI drives it (the bench and the UI tests).

`chargeops ui` resolves the database once: DATABASE_URL when set, otherwise the embedded PostgreSQL
in the data folder, started here and held for the whole session. Its URL goes to the webserver,
the daemon, the code server and every run as DATABASE_URL, so no run or step starts (and stops) a
server of its own. `dg dev` runs as a child rather than replacing this process: the embedded
server's handle is this process's, and it stops the server when `dg dev` ends (Ctrl-C).

The instance settings (run queue, managed Python loggers, telemetry) are `deploy/dagster.yaml`,
copied into DAGSTER_HOME (`<data dir>/dagster`) when that holds none.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from chargeops.settings import ConfigError, Settings

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "deploy" / "dagster.yaml"
# copies of earlier templates (the root dagster.yaml before it moved), replaced by the current one
_OLD_TEMPLATES = {"ca1d0d9045af8d8273505e6ffe533e421ec2cf2e6ea82432cd96a6218106872f"}
DONE = {"SUCCESS", "FAILURE", "CANCELED"}


def dagster_home(data_dir: Path) -> Path:
    """DAGSTER_HOME of the chargeops instance: `<data dir>/dagster`."""
    return (Path(data_dir) / "dagster").resolve()


def install_instance_settings(home: Path) -> Path:
    """`home/dagster.yaml` from the template, unless `home` has settings of its own (a copy of an
    earlier template is replaced). Returns the file."""
    home.mkdir(parents=True, exist_ok=True)
    target = home / "dagster.yaml"
    if TEMPLATE.is_file() and (
        not target.exists() or hashlib.sha256(target.read_bytes()).hexdigest() in _OLD_TEMPLATES
    ):
        shutil.copyfile(TEMPLATE, target)
    return target


def dev_command(port: int | None = None, host: str | None = None) -> list[str]:
    """`dg dev` of this project (`[tool.dg]` in pyproject.toml), or `dagster dev -m
    pipelines.definitions` where dg or the project folder is missing (an installed package)."""
    bin_dir = Path(sys.executable).parent
    where = [*(["--port", str(port)] if port else []), *(["--host", host] if host else [])]
    dg = bin_dir / "dg"
    if dg.is_file() and (ROOT / "pyproject.toml").is_file():
        return [str(dg), "dev", *where]
    dagster = bin_dir / "dagster"
    return [
        str(dagster if dagster.is_file() else "dagster"),
        "dev",
        "-m",
        "pipelines.definitions",
        *where,
    ]


def environment(settings: Settings, url: str) -> dict[str, str]:
    """The environment of `dg dev` and everything it starts."""
    home = dagster_home(settings.data_dir)
    install_instance_settings(home)
    return {
        **os.environ,
        "DATABASE_URL": url,
        "DAGSTER_HOME": str(home),
        "CHARGEOPS_DATA_DIR": str(Path(settings.data_dir).resolve()),
    }


def run_ui(settings: Settings, *, port: int | None = None, host: str | None = None) -> int:
    """`chargeops ui`: the database resolved once, then `dg dev` until it ends."""
    from chargeops.db import describe, resolve_database_url

    url = resolve_database_url(settings)  # the embedded server, if any, is held by this process
    env = environment(settings, url)
    cmd = dev_command(port, host)
    print(
        f"chargeops ui: {' '.join(Path(c).name if i == 0 else c for i, c in enumerate(cmd))} "
        f"on {describe(url)}, DAGSTER_HOME={env['DAGSTER_HOME']}",
        flush=True,
    )
    try:
        child = subprocess.Popen(
            cmd,
            cwd=ROOT if (ROOT / "pyproject.toml").is_file() else None,
            env=env,
            preexec_fn=_interruptible,
        )
    except OSError as e:
        raise ConfigError(f"cannot start {cmd[0]}: {e}") from e
    # Ctrl-C reaches dg dev from the terminal (same process group) and it shuts its services
    # down; this process waits for that, then lets the embedded server go. A SIGTERM is passed on.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: child.send_signal(signal.SIGINT))
    return child.wait()


def _interruptible() -> None:
    """In the child before exec: SIGINT back to its default, so `dg dev` shuts down on Ctrl-C or
    our SIGINT even when this process was started with SIGINT ignored (a `&` job of a script)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class GraphQLError(RuntimeError):
    pass


class DevServer:
    """`dg dev` on a free port with `env` (DAGSTER_HOME, DATABASE_URL, ...), in its own process
    group, its output in `log`; `with DevServer(...) as ui:` waits until the code location is
    loaded and the daemons are healthy, and stops everything it started on exit."""

    def __init__(self, env: dict[str, str], log: Path, *, timeout: float = 180):
        self.env, self.log_path, self.timeout = env, Path(log), timeout
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None
        self.location = self.repository = ""
        self.load_seconds = 0.0

    @classmethod
    def attach(cls, url: str, *, timeout: float = 180) -> DevServer:
        """The GraphQL helpers for a webserver started elsewhere (`chargeops ui`)."""
        self = cls({}, Path(os.devnull), timeout=timeout)
        self.url = url.rstrip("/")
        return self

    # -- life cycle -------------------------------------------------------------------------------
    def __enter__(self) -> DevServer:
        install_instance_settings(Path(self.env["DAGSTER_HOME"]))
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("wb")
        started = time.perf_counter()
        self.process = subprocess.Popen(
            dev_command(self.port, "127.0.0.1"), cwd=ROOT, env=self.env,
            stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
            preexec_fn=_interruptible,
        )  # fmt: skip
        try:
            self.wait_loaded()
            self.load_seconds = time.perf_counter() - started
            self.wait_daemons()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        """SIGINT to `dg dev` (it shuts down its webserver, daemon and code server), then SIGKILL
        to whatever of its process group is left."""
        proc = self.process
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=60)
        with contextlib.suppress(ProcessLookupError):  # the group this object started (a session)
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        self._log.close()
        self.process = None

    def tail(self, lines: int = 30) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    # -- GraphQL ----------------------------------------------------------------------------------
    def graphql(self, query: str, variables: dict | None = None, timeout: float = 60) -> dict:
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        req = urllib.request.Request(
            f"{self.url}/graphql", data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            answer = json.loads(resp.read())
        if answer.get("errors"):
            raise GraphQLError(json.dumps(answer["errors"])[:2000])
        return answer["data"]

    def locations(self) -> list[dict]:
        data = self.graphql(WORKSPACE)["workspaceOrError"]
        if data["__typename"] != "Workspace":
            raise GraphQLError(data.get("message", data["__typename"]))
        return data["locationEntries"]

    def wait_loaded(self) -> None:
        deadline = time.monotonic() + self.timeout
        while True:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"dg dev exited ({self.process.returncode}):\n{self.tail()}")
            try:
                entries = self.locations()
            except (OSError, urllib.error.URLError, GraphQLError):
                entries = []
            for entry in entries:
                if entry["loadStatus"] != "LOADED":
                    continue
                loc = entry["locationOrLoadError"] or {}
                if loc.get("__typename") == "PythonError":
                    raise RuntimeError(f"code location {entry['name']} failed: {loc['message']}")
                self.location = entry["name"]
                self.repository = loc["repositories"][0]["name"]
                return
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"the code location did not load in {self.timeout} s\n{self.tail()}"
                )
            time.sleep(0.25)

    def wait_daemons(self) -> None:
        deadline = time.monotonic() + self.timeout
        while True:
            statuses = self.graphql(DAEMONS)["instance"]["daemonHealth"]["allDaemonStatuses"]
            if all(s["healthy"] for s in statuses if s["required"]):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"daemons not healthy in {self.timeout} s: {statuses}")
            time.sleep(0.5)

    def pause_automation(self) -> tuple[list[str], int]:
        """Turn every running schedule and sensor off, as the UI's toggles do, and terminate the
        runs they requested meanwhile (the late-data sensor asks for every day an import just
        filled): the bench and the tests measure what they launch, nothing else. Returns the
        names turned off and the runs terminated."""
        repo = {"repositoryName": self.repository, "repositoryLocationName": self.location}
        found = self.graphql(AUTOMATION, {"repo": repo})
        stopped = []
        for sensor in found["sensorsOrError"].get("results", []):
            if sensor["sensorState"]["status"] == "RUNNING":
                self.graphql(STOP_SENSOR, {"id": sensor["sensorState"]["id"]})
                stopped.append(sensor["name"])
        for schedule in found["schedulesOrError"].get("results", []):
            if schedule["scheduleState"]["status"] == "RUNNING":
                self.graphql(STOP_SCHEDULE, {"id": schedule["scheduleState"]["id"]})
                stopped.append(schedule["name"])
        live = ["QUEUED", "NOT_STARTED", "STARTING", "STARTED"]
        terminated = 0
        for _ in range(2):  # again after a tick that was under way has had time to submit
            runs = self.graphql(RUNS, {"filter": {"statuses": live}})["runsOrError"]["results"]
            if runs:
                self.graphql(TERMINATE, {"runIds": [r["runId"] for r in runs]})
                terminated += len(runs)
            time.sleep(3)
        # a terminated run holds its place in the queue until its process has gone
        deadline = time.monotonic() + self.timeout
        busy = [*live, "CANCELING"]
        while self.graphql(RUNS, {"filter": {"statuses": busy}})["runsOrError"]["results"]:
            if time.monotonic() > deadline:
                raise TimeoutError(f"runs still ending after {self.timeout} s")
            time.sleep(0.5)
        return stopped, terminated

    def job_assets(self, job: str) -> list[list[str]]:
        """The asset keys (as paths) a job materialises."""
        nodes = self.graphql(ASSET_NODES, {"pipeline": self._job(job)})["assetNodes"]
        return [n["assetKey"]["path"] for n in nodes]

    def _job(self, job: str) -> dict:
        return {
            "pipelineName": job,
            "repositoryName": self.repository,
            "repositoryLocationName": self.location,
        }

    def launch_partition(self, job: str, partition: str) -> str:
        """One partition of `job`, launched as the UI's Materialize does (launchPipelineExecution
        with the partition tag); the run id."""
        params = {
            "selector": self._job(job),
            "runConfigData": {},
            "mode": "default",
            "executionMetadata": {"tags": [{"key": "dagster/partition", "value": partition}]},
        }
        result = self.graphql(LAUNCH_RUN, {"executionParams": params})["launchPipelineExecution"]
        if result["__typename"] != "LaunchRunSuccess":
            raise GraphQLError(json.dumps(result))
        return result["run"]["runId"]

    def launch_backfill(self, assets: list[list[str]], partitions: list[str]) -> str:
        """An asset backfill of `partitions` of `assets`, as the UI's partition dialog launches
        it (launchPartitionBackfill); the backfill id."""
        params = {
            "assetSelection": [{"path": path} for path in assets],
            "partitionNames": partitions,
            "fromFailure": False,
        }
        result = self.graphql(LAUNCH_BACKFILL, {"backfillParams": params})[
            "launchPartitionBackfill"
        ]
        if result["__typename"] != "LaunchBackfillSuccess":
            raise GraphQLError(json.dumps(result))
        return result["backfillId"]

    def run(self, run_id: str) -> dict:
        return self.graphql(RUN, {"runId": run_id})["runOrError"]

    def wait_run(self, run_id: str, timeout: float = 1800, poll: float = 0.25) -> dict:
        """Poll until the run ends; its status, creation, start and end times."""
        deadline = time.monotonic() + timeout
        while True:
            run = self.run(run_id)
            if run.get("status") in DONE:
                return run
            if time.monotonic() > deadline:
                raise TimeoutError(f"run {run_id} still {run.get('status')} after {timeout} s")
            time.sleep(poll)

    def backfill_runs(self, backfill_id: str) -> list[dict]:
        tags = [{"key": "dagster/backfill", "value": backfill_id}]
        return self.graphql(RUNS, {"filter": {"tags": tags}})["runsOrError"]["results"]

    def wait_backfill(self, backfill_id: str, timeout: float = 3600, poll: float = 0.5) -> dict:
        """Poll until the backfill is over and every run it launched has ended: its status, the
        runs, and when the last run ended and when the backfill said it was done."""
        deadline = time.monotonic() + timeout
        runs_done_at = None
        while True:
            backfill = self.graphql(BACKFILL, {"id": backfill_id})["partitionBackfillOrError"]
            runs = self.backfill_runs(backfill_id)
            over = backfill["status"] not in ("REQUESTED", "CANCELING", "FAILING")
            if runs and all(r["status"] in DONE for r in runs):
                runs_done_at = runs_done_at or time.time()
            else:
                runs_done_at = None
            if over and runs_done_at is not None:
                return {
                    "status": backfill["status"],
                    "runs": runs,
                    "last_run_end": max(r["endTime"] or 0 for r in runs),
                    "over_at": time.time(),
                }
            if time.monotonic() > deadline:
                raise TimeoutError(f"backfill {backfill_id} still {backfill['status']}: {runs}")
            time.sleep(poll)

    def run_events(self, run_id: str) -> list[dict]:
        """The run's event log (typename, message, step key)."""
        events, cursor = [], None
        while True:
            page = self.graphql(RUN_LOGS, {"runId": run_id, "cursor": cursor})["logsForRun"]
            events += page["events"]
            if not page["hasMore"]:
                return events
            cursor = page["cursor"]


WORKSPACE = """
query { workspaceOrError { __typename
  ... on PythonError { message }
  ... on Workspace { locationEntries { name loadStatus locationOrLoadError { __typename
    ... on PythonError { message stack }
    ... on RepositoryLocation { repositories { name } } } } } } }
"""
DAEMONS = (
    "query { instance { daemonHealth { allDaemonStatuses { daemonType required healthy } } } }"
)
ASSET_NODES = (
    "query($pipeline: PipelineSelector) { assetNodes(pipeline: $pipeline) { assetKey { path } } }"
)
LAUNCH_RUN = """
mutation($executionParams: ExecutionParams!) { launchPipelineExecution(executionParams: $executionParams) {
  __typename
  ... on LaunchRunSuccess { run { runId } }
  ... on PythonError { message stack }
  ... on RunConfigValidationInvalid { errors { message } }
  ... on PipelineNotFoundError { message }
  ... on InvalidSubsetError { message }
  ... on UnauthorizedError { message } } }
"""
LAUNCH_BACKFILL = """
mutation($backfillParams: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $backfillParams) {
  __typename
  ... on LaunchBackfillSuccess { backfillId }
  ... on PythonError { message stack }
  ... on PartitionSetNotFoundError { message }
  ... on UnauthorizedError { message } } }
"""
RUN = """
query($runId: ID!) { runOrError(runId: $runId) { __typename
  ... on Run { runId status creationTime startTime endTime jobName tags { key value } } } }
"""
RUNS = """
query($filter: RunsFilter) { runsOrError(filter: $filter) { ... on Runs { results {
  runId status creationTime startTime endTime tags { key value } } } } }
"""
BACKFILL = """
query($id: String!) { partitionBackfillOrError(backfillId: $id) { __typename
  ... on PartitionBackfill { status numPartitions }
  ... on PythonError { message } } }
"""
AUTOMATION = """
query($repo: RepositorySelector!) {
  sensorsOrError(repositorySelector: $repo) { ... on Sensors { results {
    name sensorState { id status } } } }
  schedulesOrError(repositorySelector: $repo) { ... on Schedules { results {
    name scheduleState { id status } } } } }
"""
STOP_SENSOR = "mutation($id: String) { stopSensor(id: $id) { __typename } }"
STOP_SCHEDULE = "mutation($id: String) { stopRunningSchedule(id: $id) { __typename } }"
TERMINATE = "mutation($runIds: [String!]!) { terminateRuns(runIds: $runIds) { __typename } }"
RUN_LOGS = """
query($runId: ID!, $cursor: String) { logsForRun(runId: $runId, afterCursor: $cursor) {
  ... on EventConnection { cursor hasMore events { __typename
    ... on MessageEvent { message stepKey level } } }
  ... on PythonError { message } } }
"""
