"""Everything Dagster: definitions, assets, resources, partitions, schedules, sensors, checks."""
