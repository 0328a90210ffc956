"""The raw tables the collector writes, and their freshness."""
