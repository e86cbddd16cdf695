"""Training and evaluation (LoRA SFT, batched scoring, the papers' metrics, classic baselines,
reports): a standalone package run as `python -m training`, launched by the Dagster assets through
Pipes. It imports dagster-pipes only, never dagster, and reads nothing but published versions."""
