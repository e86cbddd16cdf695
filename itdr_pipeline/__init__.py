"""itdr-pipeline: public recommendation data -> versioned instruction-tuning data.

The library is pure: no Dagster import lives here (the Dagster layer is `assets/`).
"""

__version__ = "0.1.0"
