"""The Dagster layer: thin assets and checks over the itdr_pipeline library, and the `itdr` command
line (assets.cli) that drives them; the library itself imports neither."""
