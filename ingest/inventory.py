"""Which EVSEs and connectors a charge point has: what it declared, not whatever a message names.

A charger that reports connector 99 once (a firmware bug, a bit flip) must not get a port 99 in
the energy tables and the reports. A connector is known when it is in the registry (the
`connector` table: the operator's entry, the charger's own inventory, or an earlier accepted first
use). A connector not known yet is accepted on first use when it is within what was declared:

- EVSE id <= the highest EVSE the charger declared (2.0.1 NotifyReport: a component located at
  that EVSE) or the registry lists as declared; when nothing is declared, <= MAX_EVSES (8);
- connector id <= the highest connector declared on that EVSE (else on any EVSE); when nothing
  is declared, <= MAX_CONNECTORS_PER_EVSE (4).

EVSE 0 / connector 0 (the charging station itself) is always known. Anything else is flagged: its
rows go to `quarantine` with the reason and are counted (`undeclared_connector`); the connector
is not added. 1.6 has no passive inventory (NumberOfConnectors needs a GetConfiguration), so a
1.6 charger is held to the registry and the undeclared limits.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

log = logging.getLogger(__name__)

MAX_EVSES = 8
MAX_CONNECTORS_PER_EVSE = 4

EVSE_DECLARED_SQL = """
INSERT INTO evse (charge_point_id, evse_id, declared_by) VALUES (%s, %s, %s)
ON CONFLICT (charge_point_id, evse_id) DO UPDATE
SET declared_by = coalesce(evse.declared_by, excluded.declared_by)
"""
CONNECTOR_DECLARED_SQL = """
INSERT INTO connector (charge_point_id, evse_id, connector_id, connector_type, declared_by)
VALUES (%s, %s, %s, %s, %s)
ON CONFLICT (charge_point_id, evse_id, connector_id) DO UPDATE
SET connector_type = coalesce(excluded.connector_type, connector.connector_type),
    declared_by = coalesce(connector.declared_by, excluded.declared_by)
"""
VARIABLE_COLUMNS = (
    "charge_point_id", "component", "component_instance", "evse_id", "connector_id", "variable",
    "variable_instance", "attribute_type", "value", "mutability", "reported_at", "received_at",
)  # fmt: skip
VARIABLE_SQL = f"""
INSERT INTO charger_variable ({", ".join(VARIABLE_COLUMNS)})
VALUES ({", ".join(["%s"] * len(VARIABLE_COLUMNS))})
ON CONFLICT (charge_point_id, component, component_instance, coalesce(evse_id, -1),
             coalesce(connector_id, -1), variable, variable_instance, attribute_type)
DO UPDATE SET value = excluded.value, mutability = excluded.mutability,
              reported_at = excluded.reported_at, received_at = excluded.received_at
WHERE excluded.reported_at >= charger_variable.reported_at
"""
LOAD_SQL = """
SELECT evse_id, connector_id, declared_by IS NOT NULL FROM connector WHERE charge_point_id = %s
UNION ALL
SELECT e.evse_id, NULL, true FROM evse e WHERE e.charge_point_id = %s AND e.declared_by IS NOT NULL
"""


@dataclass
class Inventory:
    """One charge point's known connectors and declared EVSEs/connectors."""

    known: set[tuple[int, int]] = field(default_factory=set)
    declared: set[tuple[int, int]] = field(default_factory=set)
    declared_evses: set[int] = field(default_factory=set)
    flagged: set[tuple[int, int]] = field(default_factory=set)  # already logged

    @classmethod
    def from_rows(cls, rows: list[tuple[int, int | None, bool]]) -> Inventory:
        inv = cls()
        for evse_id, connector_id, declared in rows:
            if declared:
                inv.declared_evses.add(evse_id)
            if connector_id is not None:
                inv.known.add((evse_id, connector_id))
                if declared:
                    inv.declared.add((evse_id, connector_id))
        return inv

    def why_not(self, evse_id: int, connector_id: int) -> str | None:
        """None when (evse_id, connector_id) is known or plausible; else why it is flagged."""
        where = f"EVSE {evse_id} connector {connector_id}"
        if (evse_id, connector_id) in self.known or (evse_id, connector_id) == (0, 0):
            return None
        if evse_id < 0 or connector_id < 0:
            return f"{where}: a negative id"
        if evse_id == 0:
            return f"{where}: EVSE 0 is the charging station itself and has no connectors"
        evses = self.declared_evses | {e for e, _ in self.declared}
        if evses and evse_id > max(evses):
            return f"{where} not declared: the charger declared EVSEs up to {max(evses)}"
        if not evses and evse_id > MAX_EVSES:
            return f"{where} not declared: nothing is declared and {MAX_EVSES} EVSEs is the most accepted on first use"
        on_evse = [c for e, c in self.declared if e == evse_id]
        on_any = on_evse or [c for _, c in self.declared]
        limit = max(on_any) if on_any else MAX_CONNECTORS_PER_EVSE
        if connector_id > limit:
            return f"{where} not declared: at most {limit} connectors per EVSE are declared or accepted on first use"
        return None

    def connector_of(self, evse_id: int) -> int:
        """The connector of an EVSE-level value (2.0.1 MeterValues names only the EVSE): its
        lowest known connector; 1 (connectors are numbered from 1) when none is known yet."""
        if evse_id == 0:
            return 0
        known = [c for e, c in self.known | self.declared if e == evse_id and c > 0]
        return min(known) if known else 1

    def declare(self, evses: set[int], connectors: dict[tuple[int, int], str | None]) -> None:
        self.declared_evses |= evses
        self.declared |= set(connectors)
        self.known |= set(connectors)


@dataclass
class Report:
    """What one NotifyReport says: its variables, and the EVSEs and connectors they are at."""

    variables: list[tuple] = field(default_factory=list)
    evses: set[int] = field(default_factory=set)
    connectors: dict[tuple[int, int], str | None] = field(default_factory=dict)


def read_report(
    charge_point_id: str, report_data: list[dict], reported_at: datetime, received_at: datetime
) -> Report:
    """Rows of `charger_variable` (VARIABLE_COLUMNS) and the inventory of a NotifyReport's
    reportData (snake_case keys). A component located at an EVSE declares that EVSE; at a
    connector (evse.connector_id), that connector; `Connector.ConnectorType` gives its type."""
    out = Report()
    for item in report_data:
        component: dict[str, Any] = item.get("component") or {}
        variable: dict[str, Any] = item.get("variable") or {}
        evse = component.get("evse") or {}
        evse_id, connector_id = evse.get("id"), evse.get("connector_id")
        if evse_id is not None:
            out.evses.add(evse_id)
            if connector_id is not None:
                out.connectors.setdefault((evse_id, connector_id), None)
        for attr in item.get("variable_attribute") or ():
            kind = attr.get("type") or "Actual"
            value = attr.get("value")
            if (
                connector_id is not None
                and component.get("name") == "Connector"
                and variable.get("name") == "ConnectorType"
                and kind == "Actual"
            ):
                out.connectors[(evse_id, connector_id)] = value
            out.variables.append(
                (charge_point_id, component.get("name", ""), component.get("instance") or "",
                 evse_id, connector_id, variable.get("name", ""), variable.get("instance") or "",
                 kind, value, attr.get("mutability"), reported_at, received_at)
            )  # fmt: skip
    return out
