"""EV-ChART data-input rules (23 CFR 680.112, NEVI), encoded once, as the Joint Office publishes them.

Source: the Joint Office's open-source EV-ChART, github.com/US-JOET/ev-chart-open-source, read at
commit 466d3865ec872ade1c18a000559e349f526dfe4f:

- ``source/lambda_layers/python/module_validation/module_definitions/module{2,3,4}.json`` (field
  types, required, max_length, max_precision/max_scale, min_value, required_empty_allowed);
- ``source/lambda_layers/python/database_central_config/database_central_config.json`` (the
  current "central config" that supersedes those JSON files when its feature toggle is on: the
  same fields plus Module 4's ``excluded_outage`` (boolean), ``excluded_outage_reason`` (integer
  1..6) and ``excluded_outage_notes`` (string <= 255), and the unique-key constraints);
- ``module_validation/__init__.py`` (how each datatype is checked: the datetime regex
  ``^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}(\\.\\d+)?Z?$``, decimals as integer digits <=
  precision - scale and decimals <= scale, booleans TRUE/FALSE in any case, strings not blank);
- ``validate_m2`` (a non-empty session row needs every required field; a valid empty row has
  every field but station_id/port_id/network_provider blank), ``validate_m3`` (uptime may be blank
  only while the station has been operational for less than a year), ``validate_m4`` (outage_id
  and outage_duration are both blank or both filled), ``unique_constraint`` (keys below);
- ``evchart_helper/network_provider`` (the last published list of network provider values; the
  live list now lives in EV-ChART's database);
- ``tests/sample_data/*.csv`` (header order station_id, port_id, network_provider, then the module
  fields; LF line ends; ``2024-01-01T00:00:00Z`` datetimes; ``True``/``False`` booleans).

Template version: the field set is EV-ChART's "v3" data tables (``module{n}_data_v3``) at that
commit, i.e. Module 4 with the three excluded-outage columns added in migrations JE-6989/6990/6991.

Not in the repository (so the issue text or our own documented choice applies):
- the meaning of ``excluded_outage_reason`` 1..6 (only the range is there); we number the
  exclusions of 23 CFR 680.116(b)(3) in the order the rule lists them, see EXCLUSION_REASON_CODES;
- enumerations of ``session_error`` and ``payment_method`` (free strings <= 255 in the rules);
- a fixed datetime form: EV-ChART accepts an optional fraction and Z; we write and require exactly
  ``YYYY-MM-DDTHH:MM:SSZ`` (a subset of what it accepts; ``+00:00`` is rejected by both).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SOURCE_REPO = "US-JOET/ev-chart-open-source"
SOURCE_COMMIT = "466d3865ec872ade1c18a000559e349f526dfe4f"
TEMPLATE_VERSION = f"EV-ChART module{{2,3,4}}_data_v3 field definitions at {SOURCE_COMMIT[:12]}"

DATETIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")  # the form we write
LINE_END = "\n"  # as the repository's sample CSVs
COMMON = ("station_id", "port_id", "network_provider")
NETWORK_PROVIDER_MAX = 30  # varchar(30) network_provider_upload in the central config


@dataclass(frozen=True)
class Field:
    name: str
    datatype: str  # string | decimal | datetime | boolean | integer
    required: bool
    required_empty_allowed: bool = False  # blank allowed (then row-level rules decide)
    max_length: int | None = None
    max_precision: int | None = None
    max_scale: int | None = None
    min_value: float | None = None
    max_value: float | None = None


@dataclass(frozen=True)
class Module:
    number: int
    name: str
    frequency: str
    fields: tuple[Field, ...]  # port_id first, as in the definitions
    unique_key: tuple[str, ...]  # station_uuid is station_id here; network_provider is added too

    @property
    def header(self) -> tuple[str, ...]:
        """The CSV header: station_id, port_id, network_provider, then the module's fields."""
        return COMMON + tuple(f.name for f in self.fields if f.name not in COMMON)

    def field(self, name: str) -> Field | None:
        return next((f for f in self.fields if f.name == name), None)

    def file_name(self, quarter: str) -> str:
        return f"evchart_module{self.number}_{quarter}.csv"


_PORT = Field("port_id", "string", True, max_length=36)

MODULE2 = Module(
    2,
    "Charging Sessions",
    "quarterly",
    (
        _PORT,
        Field("charger_id", "string", False, True, max_length=36),
        Field("session_id", "string", True, True, max_length=36),
        Field("connector_id", "string", False, True, max_length=36),
        Field("session_start", "datetime", True, True),
        Field("session_end", "datetime", True, True),
        Field("session_error", "string", True, True, max_length=255),
        Field("error_other", "string", False, True, max_length=255),
        Field("energy_kwh", "decimal", True, True, max_precision=7, max_scale=2, min_value=0),
        Field("power_kw", "decimal", True, True, max_precision=7, max_scale=2, min_value=0),
        Field("payment_method", "string", True, True, max_length=255),
        Field("payment_other", "string", False, True, max_length=255),
    ),
    ("station_id", "port_id", "session_id"),
)

MODULE3 = Module(
    3,
    "Uptime",
    "quarterly",
    (
        Field("port_id", "string", True, max_length=36),
        Field("uptime_reporting_start", "datetime", True),
        Field("uptime_reporting_end", "datetime", True),
        Field("uptime", "decimal", True, True, max_precision=5, max_scale=2, min_value=0),
        Field("total_outage", "decimal", True, max_precision=8, max_scale=2, min_value=0),
        Field("total_outage_excl", "decimal", True, max_precision=8, max_scale=2, min_value=0),
    ),
    ("station_id", "port_id", "uptime_reporting_start", "uptime_reporting_end"),
)

MODULE4 = Module(
    4,
    "Outages",
    "quarterly",
    (
        _PORT,
        Field("outage_id", "datetime", True, True),
        Field(
            "outage_duration", "decimal", True, True, max_precision=8, max_scale=2, min_value=0.01
        ),
        Field("excluded_outage", "boolean", False),
        Field("excluded_outage_reason", "integer", False, min_value=1, max_value=6),
        Field("excluded_outage_notes", "string", False, max_length=255),
    ),
    ("station_id", "outage_id", "port_id"),
)

MODULES = {2: MODULE2, 3: MODULE3, 4: MODULE4}

# validate_m2: the fields a non-empty session row must all fill (central config's
# required_empty_allowed_fields(2))
M2_ROW_REQUIRED = (
    "session_id", "session_start", "session_end", "session_error", "energy_kwh", "power_kw",
    "payment_method",
)  # fmt: skip
# validate_m4: filled together or blank together
M4_PAIR = ("outage_id", "outage_duration")

# 23 CFR 680.116(b)(3) exclusions in the order the rule lists them -> excluded_outage_reason.
# The repository only fixes the range 1..6 (migration JE-6990); this numbering is ours.
EXCLUSION_REASON_CODES = {
    "utility_interruption": 1,  # electric utility service interruptions
    "vehicle_fault": 2,  # failure to charge due to the fault of the vehicle
    "scheduled_maintenance": 3,
    "vandalism": 4,
    "natural_disaster": 5,
    "outside_operating_hours": 6,  # hours outside the station's identified hours of operation
}

# evchart_helper/network_provider (deprecated there, "moved to DB"): the last published values.
_PROVIDERS = """7charge abm addenergie ampedup ampup applegreen_electric autel bc_hydro beta_technologies
    blink bp_pulse chargelab chargenet chargepoint chargesmart_ev chargeup chargie circlek
    circlek_couche_tard_recharge circuit_electrique echarge electrify_america electrify_canada
    enel_x_way envirospark evbolt ev_connect evcs evgateway evgo evmatch evpower ev_range flash flo
    foresta fpl_evolution francis_energy graviti_energy gravity_charging_center
    honeybadger_charging hwisel incharge ivy jule kwik_trip livingston_energy_group loop
    matcha_electric non_networked noodoe on_the_run_ev opconnect petro_canada powerflex powernode
    powerport_evc powerpump red_e_charging revel revitalize_charging_solutions rivian_adventure
    rivian_waypoints shell_recharge stay_n_charge sun_country_highway swtch_energy
    tesla_destination tesla_supercharger turnongreen universal_ev_chargers volta wattev wave
    zef"""
KNOWN_NETWORK_PROVIDERS = frozenset(_PROVIDERS.split())
