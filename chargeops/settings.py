"""Settings from environment variables; the CLI's flags override them.

| variable | default | meaning |
| --- | --- | --- |
| DATABASE_URL | unset: embedded PostgreSQL in `$CHARGEOPS_DATA_DIR/pg` | PostgreSQL to use |
| CHARGEOPS_DATA_DIR | `.data` | local state: embedded database, spool, reports |
| CHARGEOPS_HOST | `127.0.0.1` | collector listen address |
| CHARGEOPS_PORT | `9000` | collector listen port |
| CHARGEOPS_AUTO_REGISTER | `0` | `1`: accept unknown charge points and register them (demo); `0`: refuse them at the handshake |
| CHARGEOPS_TLS_CERT / CHARGEOPS_TLS_KEY | unset | PEM files; both set turns on TLS (OCPP Security Profile 2) |
| CHARGEOPS_TLS_ECDSA_CERT / CHARGEOPS_TLS_ECDSA_KEY | unset | a second (ECDSA) certificate beside an RSA one, for the TLS_ECDHE_ECDSA suites |
| CHARGEOPS_TLS_CLIENT_CA | unset | PEM CA file: client certificates required and checked (Security Profile 3); the certificate's CN is the charge point id, no password |
| CHARGEOPS_AUTH_MAX_FAILURES | `5` | wrong passwords per charge point id before backoff (per address: 10 times as many) |
| CHARGEOPS_AUTH_BACKOFF_S / CHARGEOPS_AUTH_BACKOFF_MAX_S | `1` / `300` | first wait, doubling per failure up to the cap; failures are forgotten with a half-life of ten caps; refused meanwhile with HTTP 429 and Retry-After |
| CHARGEOPS_MAX_FRAME_BYTES | `65536` | larger frames get a CALLERROR, except transaction messages |
| CHARGEOPS_MAX_TRANSACTION_FRAME_BYTES | `1048576` | limit of StopTransaction, TransactionEvent and MeterValues with a transactionId; also the websocket's message size limit |
| CHARGEOPS_CALLS_PER_SECOND / CHARGEOPS_CALL_BURST | `50` / `500` | per charge point; frames over the rate wait before they are read |
| CHARGEOPS_OVERSIZE_CLOSE_AFTER | `10` | oversize frames in a minute before the connection is closed (1009); `0`: never |
| CHARGEOPS_HEARTBEAT_INTERVAL | `300` | seconds, sent in BootNotification answers |
| CHARGEOPS_SPOOL_MAX_BYTES | `1073741824` | local spool bound while the database is unreachable |
| CHARGEOPS_QUEUE_SIZE | `5000` | writer requests queued before chargers feel back-pressure |
| CHARGEOPS_DB_TIMEOUT | `5` | seconds without an answer from the database before the collector takes it as unreachable and spools |
| CHARGEOPS_TIMESTAMP_PAST_DAYS / _FUTURE_HOURS | `1098` / `24` | rows stamped further from their arrival go to `quarantine` |
| CHARGEOPS_TIMESCALEDB | `auto` | `auto` uses TimescaleDB where the server has it usable (installed, preloaded, 2.13 or later, permitted), else native partitioning with a one-line log of why; `on` requires it and fails with that line; `off` never |
| CHARGEOPS_AUDIT_RETENTION_DAYS | `0` | days of the audit log (`ocpp_message`, every frame) kept, applied by `chargeops db upgrade`; `0`: all (see "Storage" for what is lost) |
| CHARGEOPS_CHUNK_HOURS | `24` | TimescaleDB chunk length of `meter_value` and `ocpp_message`, applied by `chargeops db upgrade` to chunks made from then on (100,000 connectors: `1`) |
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
    tls_ecdsa_cert: Path | None = None
    tls_ecdsa_key: Path | None = None
    tls_client_ca: Path | None = None
    auth_max_failures: int = 5
    auth_backoff_s: float = 1.0
    auth_backoff_max_s: float = 300.0
    max_frame_bytes: int = 65536
    max_transaction_frame_bytes: int = 1 << 20
    calls_per_second: int = 50
    call_burst: int = 500
    oversize_close_after: int = 10
    heartbeat_interval: int = 300
    spool_max_bytes: int = 1 << 30
    queue_size: int = 5000
    db_timeout: float = 5.0
    timestamp_past_days: int = 3 * 366
    timestamp_future_hours: int = 24
    timescaledb: str = "auto"
    audit_retention_days: int = 0  # 0: keep every frame
    chunk_hours: int = 24  # TimescaleDB chunks of meter_value and ocpp_message
    log_level: str = "INFO"
    reports_dir: Path | None = None  # None: data_dir / "reports"

    @property
    def reports_path(self) -> Path:
        return self.reports_dir or self.data_dir / "reports"

    @property
    def socket_max_bytes(self) -> int:
        """The websocket's message size limit: the larger of the two frame limits."""
        return max(self.max_frame_bytes, self.max_transaction_frame_bytes)

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
        for name in ("tls_ecdsa_cert", "tls_ecdsa_key", "tls_client_ca"):
            if env.get(f"CHARGEOPS_{name.upper()}"):
                kw[name] = Path(env[f"CHARGEOPS_{name.upper()}"])
        if "CHARGEOPS_AUTH_MAX_FAILURES" in env:
            kw["auth_max_failures"] = _int(
                "CHARGEOPS_AUTH_MAX_FAILURES", env["CHARGEOPS_AUTH_MAX_FAILURES"], 1, 1000
            )
        for name in ("auth_backoff_s", "auth_backoff_max_s"):
            if f"CHARGEOPS_{name.upper()}" in env:
                var = f"CHARGEOPS_{name.upper()}"
                kw[name] = float(_int(var, env[var], 1, 86400))
        if "CHARGEOPS_MAX_FRAME_BYTES" in env:
            kw["max_frame_bytes"] = _int(
                "CHARGEOPS_MAX_FRAME_BYTES", env["CHARGEOPS_MAX_FRAME_BYTES"], 1024, 16 * 2**20
            )
        if "CHARGEOPS_MAX_TRANSACTION_FRAME_BYTES" in env:
            kw["max_transaction_frame_bytes"] = _int(
                "CHARGEOPS_MAX_TRANSACTION_FRAME_BYTES",
                env["CHARGEOPS_MAX_TRANSACTION_FRAME_BYTES"],
                1024,
                64 * 2**20,
            )
        if "CHARGEOPS_CALLS_PER_SECOND" in env:
            kw["calls_per_second"] = _int(
                "CHARGEOPS_CALLS_PER_SECOND", env["CHARGEOPS_CALLS_PER_SECOND"], 1, 1_000_000
            )
        if "CHARGEOPS_CALL_BURST" in env:
            kw["call_burst"] = _int(
                "CHARGEOPS_CALL_BURST", env["CHARGEOPS_CALL_BURST"], 1, 1_000_000
            )
        if "CHARGEOPS_OVERSIZE_CLOSE_AFTER" in env:
            kw["oversize_close_after"] = _int(
                "CHARGEOPS_OVERSIZE_CLOSE_AFTER",
                env["CHARGEOPS_OVERSIZE_CLOSE_AFTER"],
                0,
                1_000_000,
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
        if "CHARGEOPS_DB_TIMEOUT" in env:
            kw["db_timeout"] = float(
                _int("CHARGEOPS_DB_TIMEOUT", env["CHARGEOPS_DB_TIMEOUT"], 1, 600)
            )
        if "CHARGEOPS_TIMESTAMP_PAST_DAYS" in env:
            kw["timestamp_past_days"] = _int(
                "CHARGEOPS_TIMESTAMP_PAST_DAYS", env["CHARGEOPS_TIMESTAMP_PAST_DAYS"], 1, 36600
            )
        if "CHARGEOPS_TIMESTAMP_FUTURE_HOURS" in env:
            kw["timestamp_future_hours"] = _int(
                "CHARGEOPS_TIMESTAMP_FUTURE_HOURS",
                env["CHARGEOPS_TIMESTAMP_FUTURE_HOURS"],
                1,
                24 * 366,
            )
        if "CHARGEOPS_TIMESCALEDB" in env:
            kw["timescaledb"] = env["CHARGEOPS_TIMESCALEDB"].strip().lower()
        if "CHARGEOPS_AUDIT_RETENTION_DAYS" in env:
            kw["audit_retention_days"] = _int(
                "CHARGEOPS_AUDIT_RETENTION_DAYS", env["CHARGEOPS_AUDIT_RETENTION_DAYS"], 0, 36600
            )
        if "CHARGEOPS_CHUNK_HOURS" in env:
            kw["chunk_hours"] = _int(
                "CHARGEOPS_CHUNK_HOURS", env["CHARGEOPS_CHUNK_HOURS"], 1, 24 * 31
            )
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
        if (self.tls_ecdsa_cert is None) != (self.tls_ecdsa_key is None):
            raise ConfigError("CHARGEOPS_TLS_ECDSA_CERT and CHARGEOPS_TLS_ECDSA_KEY go together")
        if self.tls_cert is None and (self.tls_ecdsa_cert or self.tls_client_ca):
            raise ConfigError("CHARGEOPS_TLS_ECDSA_* and _CLIENT_CA need CHARGEOPS_TLS_CERT/KEY")
        if not 0 < self.auth_backoff_s <= self.auth_backoff_max_s:
            raise ConfigError("auth backoff: 0 < CHARGEOPS_AUTH_BACKOFF_S <= _MAX_S")
        for path in (
            self.tls_cert, self.tls_key, self.tls_ecdsa_cert, self.tls_ecdsa_key, self.tls_client_ca
        ):  # fmt: skip
            if path is not None and not path.is_file():
                raise ConfigError(f"TLS file not found: {path}")
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"port {self.port} is out of range (0..65535)")
        return self
