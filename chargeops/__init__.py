"""chargeops core: settings, database connection and migrations, embedded PostgreSQL, CLI."""

__version__ = "0.1.0"
