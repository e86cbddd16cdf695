"""The Dagster layer: thin assets and checks over the itdr_pipeline library."""
