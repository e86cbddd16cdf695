"""Training and evaluation (LoRA SFT, metrics, reports): a standalone package launched through
Dagster Pipes. Stub for now; the training issue fills it in."""
