"""Telling the data team that a run failed: what `run_failure_alert` (pipelines/defs/<feature>/jobs.py)
sends, a mail through the SMTP resource (`reports.mail`, the dashboards' sender) and a JSON POST
to a webhook. The message names the job, the run, its partition (or range of partitions), the
steps that failed with their errors, and links to the run in the UI."""

from __future__ import annotations

import html
import json
import logging
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

PARTITION_TAG = "dagster/partition"
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
BACKFILL_TAG = "dagster/backfill"
WEBHOOK_TIMEOUT_S = 10.0
WEBHOOK_DELAYS = (0.5, 1.0)  # seconds before the 2nd and 3rd attempt (network errors, 429, 5xx)
ERROR_CHARS = 2000  # of one step's error in the message; the run log in the UI has all of it


@dataclass(frozen=True)
class FailedStep:
    step: str
    error: str  # "ValueError: ..." of the user code's own exception where there is one


@dataclass(frozen=True)
class Failure:
    job: str
    run_id: str
    partition: str | None  # one key, "first..last" for a range run, None when unpartitioned
    steps: list[FailedStep]
    error: str  # the run's failure message
    url: str
    backfill: str | None = None
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def subject(self) -> str:
        where = f" {self.partition}" if self.partition else ""
        steps = f": {len(self.steps)} step{'s' if len(self.steps) != 1 else ''} failed"
        return f"[chargeops] run failed: {self.job}{where}{steps if self.steps else ''}"

    def text(self) -> str:
        lines = [
            f"Job:       {self.job}",
            f"Run:       {self.run_id}",
            f"Partition: {self.partition or '(none)'}",
        ]
        if self.backfill:
            lines.append(f"Backfill:  {self.backfill}")
        lines += [f"Run page:  {self.url}", "", f"Error: {self.error}"]
        if self.steps:
            lines += ["", "Failed steps:"]
            lines += [f"- {s.step}: {s.error}" for s in self.steps]
        return "\n".join(lines) + "\n"

    def html(self) -> str:
        e = html.escape
        rows = [("Job", self.job), ("Run", self.run_id), ("Partition", self.partition or "(none)")]
        if self.backfill:
            rows.append(("Backfill", self.backfill))
        table = "".join(f"<tr><th align='left'>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in rows)
        steps = "".join(
            f"<li><code>{e(s.step)}</code>: <pre>{e(s.error)}</pre></li>" for s in self.steps
        )
        return (
            f"<html><body><h2>Run failed: {e(self.job)}</h2><table>{table}</table>"
            f"<p><a href='{e(self.url, quote=True)}'>Open the run in Dagster</a></p>"
            f"<p>{e(self.error)}</p>" + (f"<h3>Failed steps</h3><ul>{steps}</ul>" if steps else "")
            + "</body></html>"
        )  # fmt: skip

    def payload(self) -> dict:
        """The webhook's JSON; `text` is the one line chat webhooks (Slack, Mattermost) show."""
        return {
            "event": "run_failure",
            "text": f"{self.subject[len('[chargeops] ') :]} <{self.url}>",
            "job": self.job,
            "run_id": self.run_id,
            "partition": self.partition,
            "backfill": self.backfill,
            "failed_steps": [{"step": s.step, "error": s.error} for s in self.steps],
            "error": self.error,
            "url": self.url,
            "tags": self.tags,
        }


def _user_error(error) -> str:
    """The user code's own exception at the bottom of a SerializableErrorInfo chain, one line
    per line of its message, cut to ERROR_CHARS."""
    if error is None:
        return "failed (no error recorded)"
    while error.cause is not None:
        error = error.cause
    text = error.message.strip()  # "ValueError: ..." as Python prints it
    if error.cls_name and not text.startswith(error.cls_name):
        text = f"{error.cls_name}: {text}"
    return text[:ERROR_CHARS]


def partition_of(tags: dict[str, str]) -> str | None:
    if tags.get(PARTITION_TAG):
        return tags[PARTITION_TAG]
    if tags.get(RANGE_START_TAG):
        return f"{tags[RANGE_START_TAG]}..{tags.get(RANGE_END_TAG, tags[RANGE_START_TAG])}"
    return None


def failure_of(run, failure_event, step_failure_events, ui_url: str) -> Failure:
    """The failure of `run` (a DagsterRun) from its run-failure event and step-failure events."""
    steps = [
        FailedStep(ev.step_key or "?", _user_error(ev.event_specific_data.error))
        for ev in step_failure_events
    ]
    data = getattr(failure_event, "event_specific_data", None)
    error = getattr(data, "error", None)
    message = (failure_event.message or "").strip() if failure_event is not None else ""
    if error is not None and not steps:  # failed outside a step: resources, the run worker
        message = _user_error(error)
    tags = dict(run.tags)
    return Failure(
        job=run.job_name,
        run_id=run.run_id,
        partition=partition_of(tags),
        steps=steps,
        error=message or "the run failed",
        url=f"{ui_url.rstrip('/')}/runs/{run.run_id}",
        backfill=tags.get(BACKFILL_TAG),
        tags={k: v for k, v in tags.items() if not k.startswith(".")},
    )


def _where(url: str) -> str:
    """scheme://host[:port] of a webhook: its path and query may hold a token."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or '?'}" + (f":{parts.port}" if parts.port else "")


def post_webhook(url: str, payload: dict, timeout_s: float = WEBHOOK_TIMEOUT_S) -> int:
    """POST `payload` as JSON; the HTTP status, or RuntimeError naming the host (never the path).
    Network errors, 429 and 5xx are tried again (3 attempts); other 4xx are final."""
    body = json.dumps(payload).encode()
    delays = (*WEBHOOK_DELAYS, None)
    for attempt, delay in enumerate(delays, start=1):
        request = urllib.request.Request(
            url,
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", "User-Agent": "chargeops-alerts"},
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310
                return response.status
        except urllib.error.HTTPError as e:
            transient, what = e.code == 429 or e.code >= 500, f"HTTP {e.code}"
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            transient, what = True, f"{type(reason).__name__}: {reason}"
        if not transient or delay is None:
            tries = f" (after {attempt} attempts)" if attempt > 1 else ""
            raise RuntimeError(f"webhook {_where(url)}: {what}{tries}") from None
        log.warning("webhook %s: %s; retrying in %g s", _where(url), what, delay)
        time.sleep(delay)
    raise AssertionError("unreachable")


def deliver(failure: Failure, smtp_config, recipients, webhook: str) -> list[str]:
    """Mail `failure` to `recipients` through the relay `smtp_config()` returns (a
    `reports.mail.SmtpConfig`, None when no relay is configured) and POST it to `webhook` (when
    set). Both are tried; what was delivered is returned, and a RuntimeError lists what was not
    (a configured relay or webhook that failed)."""
    from reports import mail

    done, failed = [], []
    if recipients:
        try:
            config = smtp_config()
            if config is None:
                raise RuntimeError("CHARGEOPS_ALERT_TO is set but no SMTP relay is configured")
            message = mail.compose(
                subject=failure.subject,
                sender=config.sender,
                to=list(recipients),
                html=failure.html(),
                text=failure.text(),
                inline_images={},
                headers={"X-Chargeops-Run-Id": failure.run_id},
            )
            accepted = mail.send(message, config)
            done.append(f"mail to {', '.join(accepted)}")
        except Exception as e:  # noqa: BLE001  (reported below, with the webhook's outcome)
            failed.append(f"mail: {e}")
    if webhook:
        try:
            status = post_webhook(webhook, failure.payload())
            done.append(f"webhook {_where(webhook)} (HTTP {status})")
        except Exception as e:  # noqa: BLE001
            failed.append(str(e))
    if failed:
        raise RuntimeError(
            f"alert for run {failure.run_id} not delivered: {'; '.join(failed)}"
            + (f" (delivered: {'; '.join(done)})" if done else "")
        )
    return done
