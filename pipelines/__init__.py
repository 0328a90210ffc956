"""Everything Dagster: definitions, assets, resources, partitions, schedules, sensors, checks."""

import warnings

# partitioned asset checks (so the day that fails is the day shown failed) are a Dagster preview
warnings.filterwarnings("ignore", message=r".*partitions_def on an AssetCheckSpec.*")
