"""The `chargeops` command. Subsystems are imported lazily so `chargeops --help` stays fast and
the core does not depend on them."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import secrets
import signal
import sys
from pathlib import Path

from chargeops.settings import ConfigError, Settings


def _settings(args: argparse.Namespace) -> Settings:
    return Settings.from_env().override(
        host=getattr(args, "host", None),
        port=getattr(args, "port", None),
        auto_register=getattr(args, "auto_register", None),
        data_dir=getattr(args, "data_dir", None),
    )


def _setup_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("websockets").setLevel(logging.WARNING)
    logging.getLogger("ocpp").setLevel(logging.WARNING)
    # Dagster's managed loggers (deploy/dagster.yaml) lower the project's loggers to INFO for a
    # run's log: the console still shows only what was asked for
    for handler in logging.root.handlers:
        handler.setLevel(settings.log_level)


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from chargeops.db import describe, resolve_database_url, upgrade

    settings = _settings(args)
    url = resolve_database_url(settings)
    applied = upgrade(
        url,
        timescaledb=settings.timescaledb,
        audit_retention_days=settings.audit_retention_days,
        chunk_hours=settings.chunk_hours,
    )
    print(f"{describe(url)}: " + (f"applied {', '.join(applied)}" if applied else "up to date"))
    return 0


def cmd_db_status(args: argparse.Namespace) -> int:
    from chargeops.db import connect, describe, resolve_database_url, storage_mode

    url = resolve_database_url(_settings(args))
    with connect(url) as conn:
        rows = conn.execute(
            "SELECT version, name, applied_at FROM schema_migrations ORDER BY 1"
        ).fetchall()
        print(f"database: {describe(url)}  storage: {storage_mode(conn)}")
        # what is on: the columnstore and chunk length (TimescaleDB), the audit retention
        for key, value in conn.execute(
            """SELECT key, value FROM chargeops_meta
               WHERE key LIKE 'columnstore:%' OR key LIKE 'retention:%' OR key LIKE 'chunk:%'
               ORDER BY key"""
        ):
            print(f"  {key} {value}")
        for version, name, applied_at in rows:
            print(f"  {version} {name} {applied_at:%Y-%m-%d %H:%M:%S}")
    return 0


def cmd_collector(args: argparse.Namespace) -> int:
    if args.action == "status":
        return cmd_collector_status(args)
    import psycopg

    from chargeops.db import resolve_database_url, upgrade
    from ingest.server import Collector

    settings = _settings(args)
    _setup_logging(settings)
    url = resolve_database_url(settings)
    pending_upgrade = False
    try:
        upgrade(url, timescaledb=settings.timescaledb)
    except (ConfigError, psycopg.OperationalError) as e:
        unreachable = isinstance(e, psycopg.OperationalError) or isinstance(
            e.__cause__, psycopg.OperationalError
        )
        if not unreachable:
            raise
        # chargers must still be answered: start, spool, and migrate once the database is back
        logging.getLogger("chargeops").error(
            "%s; the collector starts and spools until the database returns", e
        )
        pending_upgrade = True

    async def run() -> None:
        collector = Collector(settings, url)
        if pending_upgrade:

            def migrate() -> None:
                try:
                    upgrade(url, timescaledb=settings.timescaledb)
                except ConfigError as e:  # unreachable again: the writer keeps spooling
                    raise (e.__cause__ or e) from None

            collector.writer.prepare = migrate
        try:
            await collector.start()
        except OSError as e:
            await collector.stop()
            raise ConfigError(
                f"cannot listen on {settings.host}:{settings.port}: {e.strerror or e}"
            ) from e
        print(f"collector listening on {collector.url()}/{{chargePointId}}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        try:
            await stop.wait()  # then close connections and commit (or spool) what is queued
        finally:
            await collector.stop()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())
    return 0


def cmd_collector_status(args: argparse.Namespace) -> int:
    import json
    import urllib.request

    settings = _settings(args)
    url = args.url or f"http://{settings.host}:{settings.port}/health"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            health = json.loads(response.read())
    except OSError as e:
        raise ConfigError(f"no collector answering at {url}: {getattr(e, 'reason', e)}") from None
    for key, value in health.items():
        print(f"{key:24} {json.dumps(value) if isinstance(value, dict) else value}")
    return 0 if health.get("database_online") else 1


def cmd_chargers_add(args: argparse.Namespace) -> int:
    import psycopg

    from chargeops.db import connect, resolve_database_url
    from ingest.registry import add_charge_point

    settings = _settings(args)
    password = None if args.no_password else (args.password or secrets.token_urlsafe(18))
    if password is not None and len(password) < 8:
        raise ConfigError("--password must be at least 8 characters")
    url = resolve_database_url(settings)
    with connect(url) as conn:
        try:
            add_charge_point(conn, args.id, password, args.site or None)
        except ValueError as e:
            raise ConfigError(str(e)) from None
        except psycopg.errors.ForeignKeyViolation:
            raise ConfigError(f"unknown site {args.site!r}") from None
    print(f"registered {args.id}" + ("" if password is None else f"; password: {password}"))
    return 0


def cmd_chargers_list(args: argparse.Namespace) -> int:
    from chargeops.db import connect, resolve_database_url

    url = resolve_database_url(_settings(args))
    with connect(url) as conn:
        rows = conn.execute(
            """SELECT charge_point_id, coalesce(site_id, ''), coalesce(ocpp_version, ''),
                      password_hash IS NOT NULL, auto_registered, last_boot_at
               FROM charge_point ORDER BY 1"""
        ).fetchall()
    print(f"{'charge point':24} {'site':12} {'ocpp':6} {'password':8} {'auto':5} last boot")
    for cp, site, ver, has_pw, auto, boot in rows:
        print(
            f"{cp:24} {site:12} {ver:6} {'yes' if has_pw else 'no':8} {'yes' if auto else 'no':5} {boot or ''}"
        )
    return 0


def cmd_tariffs_list(args: argparse.Namespace) -> int:
    from chargeops.db import connect, resolve_database_url

    with connect(resolve_database_url(_settings(args))) as conn:
        rows = conn.execute(
            """SELECT tariff_id, coalesce(site_id, ''), coalesce(charge_point_id, ''), currency,
                      energy_price_per_kwh, time_price_per_min, idle_fee_per_min, idle_grace_min,
                      session_fee, tax_rate, prices_include_tax, valid_from, valid_to
               FROM tariff WHERE %(site)s::text IS NULL OR site_id = %(site)s
               ORDER BY site_id, charge_point_id, valid_from""",
            {"site": args.site},
        ).fetchall()
    print(
        f"{'tariff':22} {'site':14} {'charge point':14} {'cur':3} {'kWh':>7} {'min':>6} "
        f"{'idle/min':>8} {'grace':>5} {'fee':>6} {'tax':>5} {'incl':4} valid"
    )
    for t, site, cp, cur, kwh, tmin, idle, grace, fee, tax, incl, vfrom, vto in rows:
        valid = f"{vfrom:%Y-%m-%d} .. {vto:%Y-%m-%d}" if vto else f"{vfrom:%Y-%m-%d} .."
        print(
            f"{t:22} {site:14} {cp:14} {cur:3} {kwh:7.3f} {tmin:6.3f} {idle:8.3f} {grace:5d} "
            f"{fee:6.2f} {tax:5.3f} {'yes' if incl else 'no':4} {valid}"
        )
    return 0


def cmd_tariffs_set(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    import psycopg

    from chargeops.db import connect, resolve_database_url
    from ingest.registry import set_tariff

    try:
        valid_from = (
            datetime.fromisoformat(args.valid_from) if args.valid_from else datetime.now(UTC)
        )
    except ValueError:
        raise ConfigError(f"--valid-from {args.valid_from!r} is not an ISO date or time") from None
    if valid_from.tzinfo is None:
        valid_from = valid_from.replace(tzinfo=UTC)
    tariff = {
        "tariff_id": args.tariff_id, "site_id": args.site, "charge_point_id": args.charge_point,
        "currency": args.currency, "energy_price_per_kwh": args.energy_price,
        "time_price_per_min": args.time_price, "idle_fee_per_min": args.idle_fee,
        "idle_grace_min": args.idle_grace, "session_fee": args.session_fee,
        "tax_rate": args.tax_rate, "prices_include_tax": args.prices_include_tax,
        "valid_from": valid_from,
    }  # fmt: skip
    with connect(resolve_database_url(_settings(args))) as conn:
        try:
            superseded = set_tariff(conn, tariff)
        except ValueError as e:
            raise ConfigError(str(e)) from None
        except psycopg.errors.ForeignKeyViolation:
            raise ConfigError(f"unknown site {args.site!r}") from None
    print(
        f"tariff {args.tariff_id} in force from {valid_from:%Y-%m-%d %H:%M %Z}"
        + (f"; {superseded} ends then" if superseded else "")
    )
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from chargeops.demo import DemoOptions, run_demo

    settings = _settings(args)
    _setup_logging(settings.override(log_level="WARNING"))
    result = run_demo(
        settings,
        DemoOptions(
            charge_points=args.charge_points,
            days=args.days,
            seed=args.seed,
            reset=args.reset,
            fleet_file=args.config,
            end=_day_arg(args.end, "--end") if args.end else None,
        ),
    )
    failed = result["summary"].errors or result["figures"]["failed checks or runs"]
    return 1 if failed and args.strict else 0


def cmd_simulate(args: argparse.Namespace) -> int:
    from ingest.simulator import default_fleet, load_fleet, run_fleet

    settings = _settings(args)
    _setup_logging(settings.override(log_level="WARNING"))
    try:
        if args.config:
            fleet = load_fleet(args.config)
        else:
            fleet = default_fleet(args.charge_points, days=args.days, seed=args.seed)
    except (OSError, ValueError) as e:
        raise ConfigError(str(e)) from None
    if args.register:
        from chargeops.db import connect, resolve_database_url
        from ingest.registry import register_fleet

        with connect(resolve_database_url(settings)) as conn:
            register_fleet(conn, fleet)
    try:
        summary = asyncio.run(run_fleet(fleet, args.url.rstrip("/"), speed=args.speed))
    except ConnectionError as e:
        raise ConfigError(str(e)) from None
    print(
        f"{summary.charge_points} charge points, {summary.total_messages:,} messages, "
        f"{len(summary.sessions):,} sessions, {summary.total_energy_wh / 1000:,.1f} kWh, "
        f"{len(summary.faults)} faults, {summary.errors} errors, {summary.elapsed_s:.0f} s"
    )
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from ingest.importers import cli

    return cli(args, _settings(args))


def cmd_report_evchart(args: argparse.Namespace) -> int:
    from reports.evchart import cli

    return cli(args, _settings(args))


def cmd_report_uk_reliability(args: argparse.Namespace) -> int:
    from reports.uk_reliability import cli

    return cli(args, _settings(args))


def cmd_report_compliance(args: argparse.Namespace) -> int:
    from reports.compliance import cli

    return cli(args, _settings(args))


def _day_arg(text: str, flag: str):
    from datetime import date

    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"{flag} {text!r} is not an ISO date such as 2026-11-30") from None


def _date_range(args: argparse.Namespace):
    """`--from`/`--to` (inclusive; `--to` defaults to `--from`) as dates, or a one-line error."""
    from datetime import date

    try:
        start, end = date.fromisoformat(args.start), date.fromisoformat(args.end or args.start)
    except ValueError:
        raise ConfigError("--from and --to take ISO dates such as 2026-07-01") from None
    if end < start:
        raise ConfigError(f"--to {end} is before --from {start}")
    return start, end


def cmd_payments_exceptions(args: argparse.Namespace) -> int:
    from chargeops.db import resolve_database_url
    from pipelines.defs.payments.reconciliation_asset import export_exceptions

    start, end = _date_range(args)
    rows = export_exceptions(resolve_database_url(_settings(args)), start, end, args.out)
    print(f"{rows} reconciliation exceptions {start}..{end} written to {args.out}")
    note = Path(args.out).with_name(Path(args.out).stem + ".INCOMPLETE.txt")
    if note.exists():
        print(f"incomplete: some days were not reconciled, see {note}", file=sys.stderr)
    return 0


def cmd_backfill(args: argparse.Namespace) -> int:
    """Materialise days from the command line into the instance the UI shows (imported history,
    or days the scheduler missed)."""
    import os
    from datetime import timedelta

    from chargeops.db import resolve_database_url
    from chargeops.periods import (
        PARTITIONS_START_ENV,
        PARTITIONS_START_FILE,
        partitions_start,
        record_data_start,
    )

    start, end = _date_range(args)
    settings = _settings(args)
    # before the pipelines are imported: the first day defines the partitions
    if start < partitions_start() and os.environ.get(PARTITIONS_START_ENV, "").strip():
        os.environ[PARTITIONS_START_ENV] = start.isoformat()  # the variable wins: this run only
        print(
            f"note: {start} is before the first partition; using {PARTITIONS_START_ENV}="
            f"{os.environ[PARTITIONS_START_ENV]} (set it for `make ui` too)"
        )
    elif start < partitions_start():
        record_data_start(settings.data_dir, start)
        print(
            f"note: the partitions now start at {start}, recorded in "
            f"{settings.data_dir / PARTITIONS_START_FILE} (reload the code location in the UI)"
        )
    _setup_logging(settings.override(log_level="WARNING"))
    from pipelines.runner import DagsterRunner

    runner = DagsterRunner(resolve_database_url(settings), settings, workers=args.workers)
    days = [start + timedelta(days=i) for i in range((end - start).days + 1)]
    runner.analytics(days)
    if args.reports:
        runner.reports(days)
    print(
        f"{len(days)} days materialised in {runner.home}: {runner.failures} failed runs or "
        f"checks, {len(runner.warnings)} warnings"
    )
    return 1 if runner.failures else 0


def cmd_dashboard_send(args: argparse.Namespace) -> int:
    from reports.dashboard import cli

    return cli(args, _settings(args))


def cmd_maintenance_top(args: argparse.Namespace) -> int:
    from pipelines.defs.maintenance.assets import cli_top

    return cli_top(args, _settings(args))


def cmd_ui(args: argparse.Namespace) -> int:
    """The Dagster UI (`dg dev`) on the instance the CLI's runs are recorded in; the database
    (DATABASE_URL, or the embedded one started here once) is handed to every run."""
    from chargeops.ui import run_ui

    return run_ui(_settings(args), port=args.ui_port, host=args.ui_host)


def _positive_int(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is less than 1")
    return value


def _date_range_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--from", dest="start", required=True, help="first day (ISO date)")
    p.add_argument("--to", dest="end", help="last day, inclusive (default: --from)")


def _fleet_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--charge-points", type=int, default=20, help="fleet size (default 20)")
    p.add_argument("--days", type=float, default=14, help="simulated days (default 14)")
    p.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    p.add_argument("--config", help="a fleet file (TOML or YAML) instead of the default fleet")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chargeops", description=__doc__)
    parser.add_argument("--data-dir", type=Path, help="local state folder (CHARGEOPS_DATA_DIR)")
    sub = parser.add_subparsers(dest="command", required=True)

    db = sub.add_parser("db", help="database schema").add_subparsers(
        dest="db_command", required=True
    )
    db.add_parser("upgrade", help="apply pending migrations").set_defaults(func=cmd_db_upgrade)
    db.add_parser("status", help="applied migrations and storage mode").set_defaults(
        func=cmd_db_status
    )

    col = sub.add_parser("collector", help="run the OCPP collector (or: collector status)")
    col.add_argument("action", nargs="?", choices=["run", "status"], default="run")
    col.add_argument("--url", help="with status: the health URL (default from host and port)")
    col.add_argument("--host", help="listen address (CHARGEOPS_HOST)")
    col.add_argument("--port", type=int, help="listen port (CHARGEOPS_PORT)")
    col.add_argument(
        "--auto-register",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="accept and register unknown charge points (CHARGEOPS_AUTO_REGISTER)",
    )
    col.set_defaults(func=cmd_collector)

    chargers = sub.add_parser("chargers", help="registered charge points").add_subparsers(
        dest="chargers_command", required=True
    )
    add = chargers.add_parser("add", help="register a charge point")
    add.add_argument("id", help="charge point id, as in /ocpp/{id}")
    add.add_argument("--password", help="HTTP Basic password (default: a generated one, printed)")
    add.add_argument("--no-password", action="store_true", help="allow it to connect without one")
    add.add_argument("--site", help="site id")
    add.set_defaults(func=cmd_chargers_add)
    chargers.add_parser("list", help="list charge points").set_defaults(func=cmd_chargers_list)

    tariffs = sub.add_parser("tariffs", help="effective-dated tariffs").add_subparsers(
        dest="tariffs_command", required=True
    )
    tlist = tariffs.add_parser("list", help="list tariffs")
    tlist.add_argument("--site", help="only this site's")
    tlist.set_defaults(func=cmd_tariffs_list)
    tset = tariffs.add_parser("set", help="add a tariff; the one it supersedes ends when it starts")
    tset.add_argument("tariff_id")
    scope = tset.add_mutually_exclusive_group(required=True)
    scope.add_argument("--site", help="for every charge point of a site")
    scope.add_argument("--charge-point", help="for one charge point (wins over its site's)")
    tset.add_argument("--currency", required=True, help="ISO 4217, e.g. USD, GBP, EUR, JPY")
    tset.add_argument("--energy-price", type=float, default=0.0, help="per kWh")
    tset.add_argument("--time-price", type=float, default=0.0, help="per minute plugged in")
    tset.add_argument("--idle-fee", type=float, default=0.0, help="per idle minute after the grace")
    tset.add_argument("--idle-grace", type=int, default=0, help="free idle minutes")
    tset.add_argument("--session-fee", type=float, default=0.0, help="flat, per session")
    tset.add_argument("--tax-rate", type=float, default=0.0, help="a fraction: 0.2 for 20 %%")
    tset.add_argument(
        "--prices-include-tax",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="prices are gross (default) or net of tax",
    )
    tset.add_argument(
        "--valid-from", help="ISO date or time, UTC unless an offset is given (default now)"
    )
    tset.set_defaults(func=cmd_tariffs_set)

    demo = sub.add_parser(
        "demo", help="the main job: database, collector, simulated fleet, summary"
    )
    _fleet_args(demo)
    demo.add_argument(
        "--reset",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="clear the raw tables first (default: only on the embedded database)",
    )
    demo.add_argument(
        "--end",
        help="the last simulated day, ISO date (default: yesterday, UTC); one seed and end date "
        "always give the same figures",
    )
    demo.add_argument(
        "--strict",
        action="store_true",
        help="exit 1 if any OCPP call, run or blocking data-quality check failed",
    )
    demo.set_defaults(func=cmd_demo)

    sim = sub.add_parser("simulate", help="run a simulated fleet against a collector")
    sim.add_argument("--url", required=True, help="collector URL, e.g. ws://127.0.0.1:9000/ocpp")
    _fleet_args(sim)
    sim.add_argument(
        "--speed",
        type=float,
        help="simulated seconds per wall second (default: as fast as answered)",
    )
    sim.add_argument(
        "--register",
        action="store_true",
        help="also write the sites and charge points to the database",
    )
    sim.set_defaults(func=cmd_simulate)

    imp = sub.add_parser("import", help="import charging history exported by another system")
    imp.add_argument(
        "format", choices=["chargepoint", "acn", "ocpi", "csv"], help="the file's layout"
    )
    imp.add_argument("file", help="the export file")
    imp.add_argument(
        "--mapping", metavar="MAP.yaml", help="csv: what the file's columns are (see README)"
    )
    imp.add_argument("--site", help="site id for the imported charge points (default: from file)")
    imp.add_argument("--dry-run", action="store_true", help="parse and report, write nothing")
    imp.add_argument("--strict", action="store_true", help="import nothing if any row is malformed")
    imp.add_argument(
        "--replace",
        action="store_true",
        help="a session already imported with other content is replaced (default: refused)",
    )
    imp.set_defaults(func=cmd_import)

    report = sub.add_parser("report", help="regulatory report files").add_subparsers(
        dest="report_command", required=True
    )
    evchart = report.add_parser("evchart", help="EV-ChART (NEVI) module CSVs for a quarter")
    evchart.add_argument("--quarter", required=True, help="calendar quarter, e.g. 2026Q3")
    evchart.add_argument("--out", help="reports directory (default CHARGEOPS_REPORTS_DIR)")
    evchart.set_defaults(func=cmd_report_evchart)
    ukr = report.add_parser(
        "uk-reliability", help="UK Public Charge Point Regulations 2023 reliability for a year"
    )
    ukr.add_argument("--year", required=True, type=int, help="calendar year, e.g. 2026")
    ukr.add_argument("--out", help="reports directory (default CHARGEOPS_REPORTS_DIR)")
    ukr.set_defaults(func=cmd_report_uk_reliability)
    comp = report.add_parser("compliance", help="the compliance report (HTML and PDF)")
    comp.add_argument(
        "--period", required=True, help="2026Q3, 2026, 2026-07 or START..END (ISO dates)"
    )
    comp.add_argument("--out", help="reports directory (default CHARGEOPS_REPORTS_DIR)")
    comp.set_defaults(func=cmd_report_compliance)

    back = sub.add_parser(
        "backfill", help="materialise the daily analytics (and reports) for a range of days"
    )
    _date_range_args(back)
    back.add_argument(
        "--reports", action="store_true", help="also the quarterly and yearly report files"
    )
    back.add_argument(
        "--workers",
        type=_positive_int,
        default=min(2, os.cpu_count() or 1),
        help="processes that run month-long ranges of days at once (default: 2, or 1 on one core)",
    )
    back.set_defaults(func=cmd_backfill)

    pay = sub.add_parser("payments", help="revenue reconciliation against Stripe").add_subparsers(
        dest="payments_command", required=True
    )
    exc = pay.add_parser(
        "exceptions", help="export reconciliation exceptions (reconciled days) as one CSV"
    )
    _date_range_args(exc)
    exc.add_argument("--out", default="reconciliation_exceptions.csv", help="CSV file to write")
    exc.set_defaults(func=cmd_payments_exceptions)

    maint = sub.add_parser("maintenance", help="predictive maintenance").add_subparsers(
        dest="maintenance_command", required=True
    )
    top = maint.add_parser("top", help="the connectors most at risk of an outage")
    top.add_argument("--n", type=int, default=20, help="how many (default 20)")
    top.add_argument("--day", help="score day (default: the latest scored)")
    top.set_defaults(func=cmd_maintenance_top)

    dash = sub.add_parser(
        "dashboard", help="the operator dashboard, emailed as HTML"
    ).add_subparsers(dest="dashboard_command", required=True)
    send = dash.add_parser("send", help="build each audience's dashboard and mail it")
    send.add_argument(
        "--period", help="2026-11-24, 2026-W47, 2026-11, ... (default: yesterday, UTC)"
    )
    send.add_argument(
        "--weekly", action="store_true", help="without --period: the last whole ISO week"
    )
    send.add_argument(
        "--audience", action="append", help="only this audience (repeatable), e.g. operator-acme"
    )
    send.add_argument(
        "--recipients", help="recipients YAML file (default CHARGEOPS_DASHBOARD_RECIPIENTS)"
    )
    send.add_argument(
        "--dry-run", action="store_true", help="write the .eml and HTML files, send nothing"
    )
    send.add_argument(
        "--resend", action="store_true", help="mail audiences that already got this period"
    )
    send.add_argument("--out", help="reports directory (default CHARGEOPS_REPORTS_DIR)")
    send.set_defaults(func=cmd_dashboard_send)

    ui = sub.add_parser(
        "ui", help="the Dagster UI (dg dev) on the CLI's instance, one database for all its runs"
    )
    ui.add_argument("--port", dest="ui_port", type=int, metavar="P", help="default 3000")
    ui.add_argument("--host", dest="ui_host", metavar="H", help="default 127.0.0.1")
    ui.set_defaults(func=cmd_ui)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "data_dir", None):
        # the flag is the variable for the whole process: the pipelines, imported later, read
        # the partitions' first day from the data folder CHARGEOPS_DATA_DIR names
        os.environ["CHARGEOPS_DATA_DIR"] = str(args.data_dir)
    try:
        return args.func(args)
    except ConfigError as e:
        print(f"chargeops: error: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # a database error mid-command: one line, not a traceback
        import psycopg

        if not isinstance(e, psycopg.Error):
            raise
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        print(f"chargeops: error: database: {first}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
