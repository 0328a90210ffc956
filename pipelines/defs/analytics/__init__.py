"""The daily analytics assets (UTC days, polars, PostgreSQL), their checks and automation."""
