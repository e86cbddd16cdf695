"""Shared fixtures. Real-data tests read ../shared/data/raw and FAIL (never skip) when it is missing."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from itdr_pipeline.config import Settings
from itdr_pipeline.filters import FilterConfig, apply_filters
from itdr_pipeline.ingest import ingest_dataset
from itdr_pipeline.registry import get_dataset
from itdr_pipeline.warehouse import connect

REPO = Path(__file__).resolve().parents[1]
# Resolved: the code resolves ITDR_RAW_DIR, and ../shared may be a symlink.
SHARED_RAW = (REPO.parent / "shared" / "data" / "raw").resolve()
ITDR = Path(sys.executable).with_name("itdr")

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")


def shared_dataset(name: str) -> Path:
    folder = SHARED_RAW / name
    if not folder.is_dir():
        pytest.fail(f"real data missing: {folder} (tests need ../shared/data/raw beside the checkout)")
    return folder


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default model's converted tokenizer (publishing counts tokens with it), once per session (~8 s)."""
    from itdr_pipeline.default_model import ensure_tokenizer

    folder = tmp_path_factory.getbasetemp() / "itdr-models"
    ensure_tokenizer(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_model(models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer Llama (hidden 64) with random weights and SmolLM2's real tokenizer and chat template."""
    import torch
    from itdr_pipeline.default_model import model_dir
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(model_dir(models_dir))
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
                         tie_word_embeddings=True, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    folder = tmp_path_factory.mktemp("tiny-llama")
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def link_models(home: Path, models: Path) -> None:
    """Give an ITDR_HOME the session's converted models folder (a symlink), unless it has one."""
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "models").exists():
        (home / "models").symlink_to(models, target_is_directory=True)


# The demo cells the session's published demo holds (the tasks the training tests evaluate).
DEMO_TASKS = ("preference", "rp", "tkr", "nir", "uap", "tui")


@pytest.fixture(scope="session")
def demo_home(models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """An ITDR_HOME with the demo published (cells capped at 400 records: 320 / 40 / 40)."""
    from assets.runner import materialize

    settings = Settings(home=tmp_path_factory.mktemp("demo-home"), raw_dir=None).ensure()
    link_models(settings.home, models_dir)
    (outcome,) = materialize(settings, ["demo"], list(DEMO_TASKS), render={"cap": 400})
    assert outcome.success, outcome.reason
    return settings


@pytest.fixture(scope="session")
def version_dir(demo_home: Settings) -> Path:
    (folder,) = [p for p in demo_home.published.iterdir() if p.name.startswith("demo-")]
    return folder


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, models_dir: Path) -> Settings:
    """A fresh ITDR_HOME with the real raw folder configured (and the session's converted tokenizer)."""
    shared_dataset("ml-100k")
    monkeypatch.setenv("ITDR_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ITDR_RAW_DIR", str(SHARED_RAW))
    settings = Settings.from_env().ensure()
    link_models(settings.home, models_dir)
    return settings


@pytest.fixture
def raw_copy(tmp_path: Path) -> Path:
    """A writable copy of the ml-100k files to corrupt: returns the folder holding `ml-100k/`."""
    dest = tmp_path / "raw" / "ml-100k"
    dest.mkdir(parents=True)
    for name in ("u.data", "u.item", "u.user", "u.genre"):
        shutil.copy(shared_dataset("ml-100k") / name, dest / name)
    return dest.parent


@pytest.fixture(scope="session")
def ml100k(tmp_path_factory: pytest.TempPathFactory):
    """One warehouse with real ml-100k ingested, shared by read-only tests."""
    settings = Settings(home=tmp_path_factory.mktemp("ml100k"), raw_dir=shared_dataset("ml-100k").parent).ensure()
    with connect(settings.warehouse) as con:
        report = ingest_dataset(con, get_dataset("ml-100k"), settings)
        apply_filters(con, "ml-100k", FilterConfig())  # the default keeps every interaction
        yield con, report


def run_cli(*args: str, env: dict[str, str] | None = None, check: bool = False) -> subprocess.CompletedProcess:
    """Run the installed `itdr` console script as a user would."""
    result = subprocess.run([str(ITDR), *args], capture_output=True, text=True, env={**os.environ, **(env or {})},
                            timeout=600)
    if check and result.returncode != 0:
        raise AssertionError(f"itdr {' '.join(args)} failed: {result.stderr}")
    return result
