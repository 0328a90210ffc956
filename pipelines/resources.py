"""Dagster resources."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import psycopg

from chargeops.db import connect, resolve_database_url
from chargeops.settings import Settings


class DatabaseResource(dg.ConfigurableResource):
    """The chargeops database; an empty URL means DATABASE_URL or the embedded default."""

    url: str = ""

    def resolved_url(self) -> str:
        return self.url or resolve_database_url(Settings.from_env())

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection]:
        with connect(self.resolved_url()) as conn:
            yield conn


class ReportsResource(dg.ConfigurableResource):
    """Where report files are written; empty means CHARGEOPS_REPORTS_DIR or `<data dir>/reports`."""

    directory: str = ""

    def path(self) -> Path:
        return Path(self.directory) if self.directory else Settings.from_env().reports_path


class StripeResource(dg.ConfigurableResource):
    """Stripe, through its own SDK. Empty fields fall back to the environment: STRIPE_API_KEY,
    CHARGEOPS_STRIPE_API_BASE (a local Stripe-speaking server; empty: api.stripe.com) and
    CHARGEOPS_STRIPE_ACCOUNT (a Connect account). The key is never logged."""

    api_key: str = ""
    api_base: str = ""
    account: str = ""
    max_retries: int = 4

    def config(self):
        """A `pipelines.payments.sync.StripeConfig` (which refuses a missing key clearly)."""
        import os

        from pipelines.payments.sync import StripeConfig

        return StripeConfig(
            api_key=self.api_key or os.environ.get("STRIPE_API_KEY", ""),
            api_base=self.api_base or os.environ.get("CHARGEOPS_STRIPE_API_BASE", ""),
            account=self.account or os.environ.get("CHARGEOPS_STRIPE_ACCOUNT", ""),
            max_retries=self.max_retries,
        )

    def client(self):
        """A `stripe.StripeClient` for the configured key, base URL and account."""
        return self.config().client()


class ModelStoreResource(dg.ConfigurableResource):
    """Where model versions are kept; empty means `<CHARGEOPS_DATA_DIR>/models`."""

    directory: str = ""

    def path(self) -> Path:
        return Path(self.directory) if self.directory else Settings.from_env().data_dir / "models"


class SmtpResource(dg.ConfigurableResource):
    """The SMTP relay the dashboards go through. Empty fields fall back to the environment
    (CHARGEOPS_SMTP_HOST, _PORT, _SECURITY, _USER, _PASSWORD, _FROM, _CA_FILE); with no host at
    all, dashboards are written and not sent. The password is best left to the environment."""

    host: str = ""
    port: int = 0  # 0: the environment's, else the default of `security`
    security: str = ""  # starttls | ssl | none
    username: str = ""
    password: str = ""
    sender: str = ""
    ca_file: str = ""

    def config(self):
        """A `reports.mail.SmtpConfig`, or None when no SMTP host is configured."""
        import os

        from reports.mail import SmtpConfig

        env = dict(os.environ)
        given = {
            "CHARGEOPS_SMTP_HOST": self.host,
            "CHARGEOPS_SMTP_PORT": str(self.port) if self.port else "",
            "CHARGEOPS_SMTP_SECURITY": self.security,
            "CHARGEOPS_SMTP_USER": self.username,
            "CHARGEOPS_SMTP_PASSWORD": self.password,
            "CHARGEOPS_SMTP_FROM": self.sender,
            "CHARGEOPS_SMTP_CA_FILE": self.ca_file,
        }
        env.update({k: v for k, v in given.items() if v})
        return SmtpConfig.from_env(env)


class DashboardResource(dg.ConfigurableResource):
    """Who receives which dashboard: a recipients YAML file (empty: CHARGEOPS_DASHBOARD_RECIPIENTS,
    else CHARGEOPS_DASHBOARD_TO for the whole network, else files only, one per site and one for
    the network)."""

    recipients_file: str = ""

    def audiences(self, sites: dict[str, str]):
        from reports import recipients

        return recipients.from_env(sites, path=self.recipients_file)


class AlertsResource(dg.ConfigurableResource):
    """Who hears of a failed run (the `run_failure_alert` sensor). Empty fields fall back to the
    environment: CHARGEOPS_ALERT_TO (comma-separated addresses, mailed through the SMTP resource),
    CHARGEOPS_ALERT_WEBHOOK (a URL that gets a JSON POST; it may hold a token, so the Definitions
    pass it as an `EnvVar`) and CHARGEOPS_UI_URL (the Dagster UI the message links to)."""

    to: str = ""
    webhook_url: str = ""
    ui_url: str = ""

    def recipients(self) -> tuple[str, ...]:
        import os

        from reports.recipients import parse_addresses

        raw = self.to or os.environ.get("CHARGEOPS_ALERT_TO", "")
        if not raw.strip():
            return ()
        return parse_addresses([a for a in raw.split(",") if a.strip()], "CHARGEOPS_ALERT_TO")

    def webhook(self) -> str:
        import os

        from chargeops.settings import ConfigError

        url = (self.webhook_url or os.environ.get("CHARGEOPS_ALERT_WEBHOOK", "")).strip()
        if url and not url.lower().startswith(("http://", "https://")):
            raise ConfigError("CHARGEOPS_ALERT_WEBHOOK is not an http:// or https:// URL")
        return url

    def ui(self) -> str:
        import os

        url = self.ui_url or os.environ.get("CHARGEOPS_UI_URL", "") or "http://127.0.0.1:3000"
        return url.rstrip("/")
