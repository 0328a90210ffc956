"""Settings from environment variables; the CLI's flags override them.

| variable | default | meaning |
| --- | --- | --- |
| DATABASE_URL | unset: embedded PostgreSQL in `$CHARGEOPS_DATA_DIR/pg` | PostgreSQL to use |
| CHARGEOPS_DATA_DIR | `.data` | local state: embedded database, spool, reports |
| CHARGEOPS_HOST | `127.0.0.1` | collector listen address |
| CHARGEOPS_PORT | `9000` | collector listen port |
| CHARGEOPS_AUTO_REGISTER | `0` | `1`: accept unknown charge points and register them (demo); `0`: refuse them at the handshake |
| CHARGEOPS_TLS_CERT / CHARGEOPS_TLS_KEY | unset | PEM files; both set turns on TLS (OCPP Security Profile 2) |
| CHARGEOPS_MAX_FRAME_BYTES | `65536` | larger frames get a CALLERROR |
| CHARGEOPS_HEARTBEAT_INTERVAL | `300` | seconds, sent in BootNotification answers |
| CHARGEOPS_SPOOL_MAX_BYTES | `1073741824` | local spool bound while the database is unreachable |
| CHARGEOPS_QUEUE_SIZE | `5000` | writer requests queued before chargers feel back-pressure |
| CHARGEOPS_TIMESCALEDB | `auto` | `auto` uses TimescaleDB when the extension can be created; `on` requires it; `off` never |
| CHARGEOPS_LOG_LEVEL | `INFO` | Python logging level |
| CHARGEOPS_REPORTS_DIR | `$CHARGEOPS_DATA_DIR/reports` | report files, one folder per period |
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path


class ConfigError(Exception):
    """Bad configuration: the CLI prints the message alone and exits non-zero."""


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _bool(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"{name}={raw!r} is not a boolean (use 1 or 0)")


def _int(name: str, raw: str, lo: int, hi: int) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a whole number") from None
    if not lo <= value <= hi:
        raise ConfigError(f"{name}={value} is out of range ({lo}..{hi})")
    return value


@dataclass(frozen=True)
class Settings:
    database_url: str | None = None
    data_dir: Path = Path(".data")
    host: str = "127.0.0.1"
    port: int = 9000
    auto_register: bool = False
    tls_cert: Path | None = None
    tls_key: Path | None = None
    max_frame_bytes: int = 65536
    heartbeat_interval: int = 300
    spool_max_bytes: int = 1 << 30
    queue_size: int = 5000
    timescaledb: str = "auto"
    log_level: str = "INFO"
    reports_dir: Path | None = None  # None: data_dir / "reports"

    @property
    def reports_path(self) -> Path:
        return self.reports_dir or self.data_dir / "reports"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        kw: dict[str, object] = {}
        if env.get("DATABASE_URL"):
            kw["database_url"] = env["DATABASE_URL"]
        if "CHARGEOPS_DATA_DIR" in env:
            kw["data_dir"] = Path(env["CHARGEOPS_DATA_DIR"])
        if "CHARGEOPS_HOST" in env:
            kw["host"] = env["CHARGEOPS_HOST"]
        if "CHARGEOPS_PORT" in env:
            kw["port"] = _int("CHARGEOPS_PORT", env["CHARGEOPS_PORT"], 0, 65535)
        if "CHARGEOPS_AUTO_REGISTER" in env:
            kw["auto_register"] = _bool("CHARGEOPS_AUTO_REGISTER", env["CHARGEOPS_AUTO_REGISTER"])
        if env.get("CHARGEOPS_TLS_CERT"):
            kw["tls_cert"] = Path(env["CHARGEOPS_TLS_CERT"])
        if env.get("CHARGEOPS_TLS_KEY"):
            kw["tls_key"] = Path(env["CHARGEOPS_TLS_KEY"])
        if "CHARGEOPS_MAX_FRAME_BYTES" in env:
            kw["max_frame_bytes"] = _int(
                "CHARGEOPS_MAX_FRAME_BYTES", env["CHARGEOPS_MAX_FRAME_BYTES"], 1024, 16 * 2**20
            )
        if "CHARGEOPS_HEARTBEAT_INTERVAL" in env:
            kw["heartbeat_interval"] = _int(
                "CHARGEOPS_HEARTBEAT_INTERVAL", env["CHARGEOPS_HEARTBEAT_INTERVAL"], 1, 86400
            )
        if "CHARGEOPS_SPOOL_MAX_BYTES" in env:
            kw["spool_max_bytes"] = _int(
                "CHARGEOPS_SPOOL_MAX_BYTES", env["CHARGEOPS_SPOOL_MAX_BYTES"], 1 << 16, 1 << 40
            )
        if "CHARGEOPS_QUEUE_SIZE" in env:
            kw["queue_size"] = _int(
                "CHARGEOPS_QUEUE_SIZE", env["CHARGEOPS_QUEUE_SIZE"], 1, 1_000_000
            )
        if "CHARGEOPS_TIMESCALEDB" in env:
            kw["timescaledb"] = env["CHARGEOPS_TIMESCALEDB"].strip().lower()
        if env.get("CHARGEOPS_REPORTS_DIR"):
            kw["reports_dir"] = Path(env["CHARGEOPS_REPORTS_DIR"])
        if "CHARGEOPS_LOG_LEVEL" in env:
            kw["log_level"] = env["CHARGEOPS_LOG_LEVEL"].strip().upper()
        return cls(**kw).validated()

    def override(self, **changes: object) -> Settings:
        """Apply CLI flags; `None` means the flag was not given."""
        known = {f.name for f in fields(self)}
        given = {k: v for k, v in changes.items() if v is not None and k in known}
        return replace(self, **given).validated()

    def validated(self) -> Settings:
        if self.timescaledb not in {"auto", "on", "off"}:
            raise ConfigError(f"CHARGEOPS_TIMESCALEDB={self.timescaledb!r}: use auto, on or off")
        if self.log_level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ConfigError(
                f"CHARGEOPS_LOG_LEVEL={self.log_level!r}: use DEBUG, INFO, WARNING or ERROR"
            )
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ConfigError("TLS needs both CHARGEOPS_TLS_CERT and CHARGEOPS_TLS_KEY")
        for path in (self.tls_cert, self.tls_key):
            if path is not None and not path.is_file():
                raise ConfigError(f"TLS file not found: {path}")
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"port {self.port} is out of range (0..65535)")
        return self
