"""Pure analytics logic over polars frames: no Dagster, no database. The assets in
`pipelines/assets/` read raw rows into the frames described in `frames.py`, call these functions
and write what they return."""
