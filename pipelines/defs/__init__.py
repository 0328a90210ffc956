"""One folder per feature (Dagster's `defs/<feature>/` layout): each holds its assets, checks,
jobs, schedules and sensors and returns its own `Definitions` from `definitions.py`;
`pipelines/definitions.py` merges them with the shared resources."""
