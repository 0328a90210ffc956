"""Pure unit normalisation and timestamp parsing."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest.normalise import default_unit, meter_rows, register_wh, to_base, v16_ids
from ingest.timestamps import format_timestamp, parse_timestamp

NOW = datetime(2025, 1, 1, tzinfo=UTC)


def rows(sampled, **kw):
    return meter_rows(
        [{"timestamp": "2025-01-01T00:00:00Z", "sampled_value": sampled}],
        charge_point_id="CP", evse_id=1, connector_id=1, transaction_id=None, received_at=NOW, **kw,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("value", "unit", "mult", "expected"),
    [
        (1.5, "kWh", 0, (1500.0, "Wh")),
        (15, "Wh", 3, (15000.0, "Wh")),
        (7.4, "kW", 0, (7400.0, "W")),
        (2, "kvarh", 0, (2000.0, "varh")),
        (123, "A", -3, (0.123, "A")),
        (212, "Fahrenheit", 0, (100.0, "Celsius")),
        (300, "K", 0, (pytest.approx(26.85), "Celsius")),
        (25, "Celcius", 0, (25.0, "Celsius")),
        (80, "Percent", 0, (80.0, "Percent")),
    ],
)
def test_to_base(value, unit, mult, expected):
    assert to_base(value, unit, mult) == expected


def test_unknown_unit_raises():
    with pytest.raises(ValueError, match="unknown unit"):
        to_base(1, "furlongs")


def test_defaults_per_measurand():
    assert default_unit("Energy.Active.Import.Register") == "Wh"
    assert default_unit("Current.Import") == "A"
    assert default_unit("SoC") == "Percent"
    [r] = rows([{"value": "12"}])
    assert (r.measurand, r.unit, r.location, r.context, r.phase) == (
        "Energy.Active.Import.Register",
        "Wh",
        "Outlet",
        "Sample.Periodic",
        "",
    )


@pytest.mark.parametrize(
    ("measurand", "unit"),
    [
        ("Energy.Active.Import.Register", "Wh"),
        ("Energy.Active.Export.Interval", "Wh"),
        ("Energy.Reactive.Import.Register", "varh"),
        ("Energy.Apparent.Net", "VAh"),
        ("Power.Active.Import", "W"),
        ("Power.Offered", "W"),
        ("Power.Reactive.Export", "var"),
        ("Power.Factor", ""),
        ("Current.Offered", "A"),
        ("Voltage", "V"),
        ("Frequency", "Hz"),
        ("SoC", "Percent"),
        ("Temperature", "Celsius"),
        ("RPM", "RPM"),
    ],
)
def test_default_unit_is_the_measurands_own(measurand, unit):
    """Issue 16 row 18: Wh is the default only for energy, in both versions."""
    assert default_unit(measurand) == unit


def test_v201_unit_of_measure_without_unit_uses_the_measurands_unit():
    out = rows(
        [
            {"value": 16000, "measurand": "Current.Import", "unit_of_measure": {"multiplier": -3}},
            {"value": 7, "measurand": "Power.Active.Import", "unit_of_measure": {"multiplier": 3}},
            {"value": 4, "measurand": "Current.Import"},  # 1.6: no unit either
        ]
    )
    assert [(r.value, r.unit, r.raw_unit) for r in out] == [
        (16.0, "A", None),
        (7000.0, "W", None),
        (4.0, "A", None),
    ]


def test_register_at_a_transaction_event_whatever_its_context():
    """Row 19a: a Started/Ended event's register is its start/stop reading even when it is sent
    without context (stored as Sample.Periodic, the spec's default)."""
    out = meter_rows(
        [
            {"timestamp": "2025-01-01T00:05:00Z", "sampled_value": [{"value": 7.0}]},
            {"timestamp": "2025-01-01T00:00:00Z", "sampled_value": [{"value": 5.0}]},
        ],
        charge_point_id="CP", evse_id=1, connector_id=1, transaction_id="T", received_at=NOW,
    )  # fmt: skip
    assert {r.context for r in out} == {"Sample.Periodic"}
    assert register_wh(out, "Transaction.Begin") is None
    assert register_wh(out, "Transaction.Begin", fallback="first") == 5.0
    assert register_wh(out, "Transaction.End", fallback="last") == 7.0


def test_identity_includes_phase_and_context():
    out = rows(
        [
            {"value": "10", "measurand": "Current.Import", "phase": "L1"},
            {"value": "11", "measurand": "Current.Import", "phase": "L2"},
            {"value": "30", "measurand": "Current.Import"},
            {"value": "5", "context": "Transaction.Begin"},
            {"value": "5", "context": "Sample.Clock"},
        ]
    )
    keys = {(r.measurand, r.phase, r.context) for r in out}
    assert len(keys) == 5
    assert register_wh(out, "Transaction.Begin") == 5.0
    assert register_wh(out, "Transaction.End") is None


def test_unreadable_values_skipped_not_failed():
    out = rows(
        [
            {"value": "abc"},
            {"value": "1e3", "unit": "kWh"},
            {"value": "AB12", "format": "SignedData"},
            {"value": "3", "unit": "parsecs"},
        ]
    )
    assert [(r.value, r.unit) for r in out] == [(1_000_000.0, "Wh")]


def test_non_finite_values_kept_for_the_writer_to_quarantine():
    """NaN, Infinity and a value that overflows once in Wh are rows the writer sends to the
    quarantine table instead of meter_value (they must be visible, and never summed)."""
    from ingest import store

    out = rows(
        [
            {"value": "NaN"},
            {"value": "1e308", "unit": "kWh", "context": "Transaction.Begin"},
            {"value": "12", "measurand": "Current.Import"},
        ]
    )
    assert len(out) == 3
    assert register_wh(out, "Transaction.Begin") is None  # never a meter_start of Infinity
    ops = store.meter_ops(out)
    assert [op.kind for op in ops] == ["quarantine", "quarantine", "meter_value"]
    assert ops[1].params[8] == "1e308" and "not finite" in ops[1].params[9]


def test_default_context_for_transaction_events():
    [r] = rows([{"value": 1.0}], default_context="Transaction.Begin")
    assert r.context == "Transaction.Begin"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-03-01T10:00:00Z", datetime(2025, 3, 1, 10, tzinfo=UTC)),
        ("2025-03-01T20:00:00+10:00", datetime(2025, 3, 1, 10, tzinfo=UTC)),
        (
            "2025-03-01T10:00:00.123456789Z"[:26] + "Z",
            datetime(2025, 3, 1, 10, 0, 0, 123456, tzinfo=UTC),
        ),
        ("2025-03-01T10:00:00", datetime(2025, 3, 1, 10, tzinfo=UTC)),  # no offset: UTC
        ("2025-03-01t05:00:00-05:00", datetime(2025, 3, 1, 10, tzinfo=UTC)),
    ],
)
def test_parse_timestamp(text, expected):
    assert parse_timestamp(text) == expected


@pytest.mark.parametrize("bad", ["", "yesterday", "2025-03-01", "2025-13-01T00:00:00Z", 12])
def test_parse_timestamp_rejects(bad):
    with pytest.raises(ValueError):
        parse_timestamp(bad)


@given(
    st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2099, 1, 1), timezones=st.just(UTC)
    )
)
def test_format_parse_roundtrip_to_the_millisecond(ts):
    assert parse_timestamp(format_timestamp(ts)) == ts.replace(
        microsecond=ts.microsecond // 1000 * 1000
    )


@given(st.floats(min_value=-1e9, max_value=1e9, allow_nan=False), st.integers(-3, 3))
def test_kwh_multiplier_consistent(value, mult):
    wh, unit = to_base(value, "kWh", mult)
    assert unit == "Wh" and wh == pytest.approx(value * 1000 * 10**mult, rel=1e-9, abs=1e-9)


def test_v16_connector_mapping():
    assert v16_ids(0) == (0, 0) and v16_ids(3) == (3, 1)
