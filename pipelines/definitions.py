"""The Dagster code location (`[tool.dagster] module_name`). Assets arrive with the analytics
issues; until then the location holds the shared resources only."""

from __future__ import annotations

import dagster as dg

from pipelines.resources import DatabaseResource

defs = dg.Definitions(
    assets=[],
    resources={"database": DatabaseResource()},
)
