"""Issue 17 row 5: a new site's grid region comes from where it is (eGRID subregion from the
state, New York by ZIP code; the country elsewhere), and the import says where it guessed."""

import json

import pytest

from chargeops.cli import main
from ingest.importers.regions import grid_region
from tests.test_import_load import FIXTURES


@pytest.mark.parametrize(
    ("country", "state", "postal", "region", "source"),
    [
        ("US", "California", "94301", "CAMX", "the state (CA)"),  # Palo Alto
        ("US", "CA", None, "CAMX", "the state (CA)"),
        ("US", "New York", "10001", "NYCW", "the ZIP code (10001)"),  # Manhattan
        ("US", "NY", "11743", "NYLI", "the ZIP code (11743)"),  # Huntington, Long Island
        ("US", "NY", "12207", "NYUP", "the state (NY)"),  # Albany
        ("US", "Texas", "", "ERCT", "the state (TX)"),
        ("US", None, None, "US", "the country (US; state unknown)"),
        ("DE", None, "10115", "DE", "the country (DE)"),  # Berlin: the DE-LU bidding zone
        ("GB", None, "SW1A 1AA", "GB", "the country (GB)"),
        (None, None, None, None, None),
    ],
)
def test_grid_region_from_the_location(country, state, postal, region, source):
    assert grid_region(country, state, postal) == {"grid_region": region, "region_from": source}


@pytest.fixture
def run_import(db, database_url, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", database_url)
    return lambda *argv: main(["import", *argv])


def test_imported_sites_get_their_region_and_the_guess_is_said(run_import, db, tmp_path, capsys):
    assert run_import("chargepoint", str(FIXTURES / "chargepoint_sessions.csv")) == 0
    out = capsys.readouterr().out
    assert "grid region CAMX, guessed from the state (CA)" in " ".join(out.split())
    # a German and a New York site, as OCPI CDRs
    cdr = json.loads((FIXTURES / "ocpi_cdrs.jsonl").read_text().splitlines()[0])
    berlin = cdr | {"id": "CDR-DE", "cdr_location": cdr["cdr_location"] | {
        "id": "LOC-BER-1", "country": "DEU", "postal_code": "10115", "evse_uid": "DE-ABC-E1",
        "time_zone": "Europe/Berlin"}}  # fmt: skip
    nyc = cdr | {"id": "CDR-NY", "cdr_location": cdr["cdr_location"] | {
        "id": "LOC-NYC-1", "country": "USA", "state": "NY", "postal_code": "10001",
        "evse_uid": "US-ABC-E1", "time_zone": "America/New_York"}}  # fmt: skip
    path = tmp_path / "cdrs.jsonl"
    path.write_text("\n".join(json.dumps(c) for c in (berlin, nyc)) + "\n")
    assert run_import("ocpi", str(path)) == 0
    assert db.execute(
        "SELECT site_id, country, grid_region FROM site ORDER BY site_id"
    ).fetchall() == [
        ("LOC-BER-1", "DE", "DE"),
        ("LOC-NYC-1", "US", "NYCW"),
        ("palo-alto-400-hamilton-ave", "US", "CAMX"),
        ("palo-alto-520-webster-st", "US", "CAMX"),
    ]
