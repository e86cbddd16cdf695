"""The published version's formats, checked with the libraries that read them: Hugging Face
`datasets` (card configs, default config, features), LLaMA-Factory's own dataset_info parser and
alpaca converter, and the statistics against an independent count. Real ml-100k, offline."""

import json
import os
import stat
import struct
import sys
import types
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

os.environ["HF_HUB_OFFLINE"] = "1"  # read by datasets / huggingface_hub at import: no hub, ever
os.environ["HF_DATASETS_OFFLINE"] = "1"

from itdr_pipeline import stats  # noqa: E402
from itdr_pipeline.config import Settings  # noqa: E402
from itdr_pipeline.filters import FilterConfig, apply_filters  # noqa: E402
from itdr_pipeline.hashing import sha256_file  # noqa: E402
from itdr_pipeline.ingest import ingest_dataset  # noqa: E402
from itdr_pipeline.publish import COLUMNS, publish  # noqa: E402
from itdr_pipeline.records import user_message  # noqa: E402
from itdr_pipeline.registry import get_dataset  # noqa: E402
from itdr_pipeline.render import render_dataset  # noqa: E402
from itdr_pipeline.tasks.base import RenderSettings  # noqa: E402
from itdr_pipeline.warehouse import connect  # noqa: E402
from tests.conftest import link_models, shared_dataset  # noqa: E402
from itdr_pipeline.default_model import MODEL_NAME  # noqa: E402

CONFIGS = ["preference-tallrec", "preference-temporal", "rp-temporal"]
HF_SPLITS = {"train": "train", "valid": "validation", "test": "test"}


@pytest.fixture(scope="module")
def published(tmp_path_factory, models_dir):
    """Real ml-100k rendered (preference + rp) and published; returns (settings, version dir, con)."""
    home = tmp_path_factory.mktemp("formats")
    settings = Settings(home=home, raw_dir=shared_dataset("ml-100k").parent).ensure()
    link_models(home, models_dir)
    with connect(settings.warehouse) as con:
        ingest_dataset(con, get_dataset("ml-100k"), settings)
        apply_filters(con, "ml-100k", FilterConfig())
        render_dataset(con, get_dataset("ml-100k"), ["preference", "rp"], RenderSettings())
        pub = publish(con, settings, "ml-100k")
        yield settings, pub.path, con


def _manifest(version_dir: Path) -> dict:
    return json.loads((version_dir / "manifest.json").read_text())


def _front_matter(version_dir: Path) -> dict:
    text = (version_dir / "README.md").read_text()
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


def test_card_configs_default_and_features(published):
    from datasets import Features

    _, version_dir, _ = published
    card = _front_matter(version_dir)
    assert [c["config_name"] for c in card["configs"]] == CONFIGS
    assert [c["config_name"] for c in card["configs"] if c.get("default")] == ["preference-temporal"]
    rp = next(c for c in card["configs"] if c["config_name"] == "rp-temporal")
    assert rp["data_files"] == [{"split": HF_SPLITS[s], "path": f"data/rp-temporal/{s}-00000-of-00001.parquet"}
                                for s in ("train", "valid", "test")]
    schema = pq.read_schema(version_dir / "data/rp-temporal/test-00000-of-00001.parquet")
    info = {i["config_name"]: i for i in card["dataset_info"]}
    assert info["rp-temporal"]["features"] == Features.from_arrow_schema(schema)._to_yaml_list()
    assert info["preference-tallrec"]["splits"][0] | {"num_bytes": 0} == {"name": "train", "num_examples": 8000,
                                                                            "num_bytes": 0}
    assert card["license"] == "other" and card["license_link"] == "https://grouplens.org/datasets/movielens/100k/"
    body = (version_dir / "README.md").read_text()
    assert "Research use only; do not redistribute without permission" in body  # the registry's terms
    assert "- `rp-temporal`: rating prediction" in body
    assert "| ml-100k | rp | temporal | 5,000 | 625 | 625 |" in body


def test_datasets_loads_every_config_and_the_default(published, tmp_path):
    from datasets import load_dataset

    _, version_dir, con = published
    rows = {(f"{f['task']}-{f['profile']}", HF_SPLITS[f["split"]]): f["rows"] for f in _manifest(version_dir)["files"]}
    assert rows[("preference-tallrec", "train")] == 8000 and rows[("rp-temporal", "test")] == 625
    for config in CONFIGS:
        ds = load_dataset(str(version_dir), config, cache_dir=str(tmp_path / "hf"))
        assert sorted(ds) == ["test", "train", "validation"]
        for split, part in ds.items():
            assert part.num_rows == rows[(config, split)]
            assert part.column_names == list(COLUMNS)
    default = load_dataset(str(version_dir), cache_dir=str(tmp_path / "hf"))
    assert default["test"].num_rows == 625 and set(default["test"]["profile"]) == {"temporal"}
    assert set(default["train"]["task"]) == {"preference"}
    # Columns round-trip: the first rp test record equals the warehouse's, lists and timestamps included.
    got = load_dataset(str(version_dir), "rp-temporal", split="test", cache_dir=str(tmp_path / "hf"))[0]
    want = con.sql("""SELECT * FROM instruction_records WHERE dataset = 'ml-100k' AND task = 'rp'
                      AND split = 'test' ORDER BY record_idx LIMIT 1""").to_arrow_table().to_pylist()[0]
    assert {k: got[k] for k in want} == want
    assert got["version"] == version_dir.name and len(got["history_item_ids"]) == 10


def _llamafactory_parser() -> types.ModuleType:
    """LLaMA-Factory's own parser and converter modules. `llamafactory.data/__init__` imports the
    multimodal plugin, which needs torchaudio (not installed: a CUDA-sized dependency we do not
    use), so the subpackage is registered bare and its modules load as the library ships them."""
    import llamafactory

    if "llamafactory.data" not in sys.modules:
        bare = types.ModuleType("llamafactory.data")
        bare.__path__ = [str(Path(llamafactory.__file__).parent / "data")]
        sys.modules["llamafactory.data"] = bare
    from llamafactory.data import converter, parser
    from llamafactory.extras.constants import FILEEXT2TYPE

    return types.SimpleNamespace(get_dataset_list=parser.get_dataset_list, converter=converter,
                                 FILEEXT2TYPE=FILEEXT2TYPE)


def test_llamafactory_dataset_info_loads_with_the_library(published, tmp_path):
    from datasets import load_dataset

    _, version_dir, _ = published
    lf = _llamafactory_parser()
    dataset_dir = version_dir / "llamafactory"
    info = json.loads((dataset_dir / "dataset_info.json").read_text())
    assert len(info) == 3 * len(CONFIGS)
    names = [f"itdr_ml-100k_{c.replace('-', '_')}_{s}" for c in CONFIGS for s in ("train", "valid", "test")]
    assert sorted(info) == sorted(names)
    attrs = lf.get_dataset_list(names, str(dataset_dir))
    rows = {f"{f['task']}-{f['profile']}_{f['split']}.json": f["rows"] for f in _manifest(version_dir)["files"]}
    for attr in attrs:
        assert (attr.load_from, attr.formatting, attr.split) == ("file", "alpaca", "train")
        assert (attr.prompt, attr.query, attr.response) == ("instruction", "input", "output")
        # What LLaMA-Factory's loader does with a "file" entry.
        local = os.path.join(str(dataset_dir), attr.dataset_name)
        kind = lf.FILEEXT2TYPE[os.path.splitext(local)[-1][1:]]
        ds = load_dataset(kind, data_files=[local], split=attr.split, cache_dir=str(tmp_path / "hf"))
        assert ds.num_rows == rows[attr.dataset_name] and ds.column_names == ["instruction", "input", "output"]
    # The converter's user turn is exactly the text the statistics count as "input".
    [attr] = lf.get_dataset_list(["itdr_ml-100k_rp_temporal_test"], str(dataset_dir))
    record = json.loads((dataset_dir / "rp-temporal_test.json").read_text())[0]
    convert = lf.converter.AlpacaDatasetConverter(dataset_attr=attr, data_args=types.SimpleNamespace(media_dir=None))
    aligned = convert(record)
    user_turn = user_message(record)
    assert aligned["_prompt"] == [{"role": "user", "content": user_turn}]
    assert aligned["_response"] == [{"role": "assistant", "content": record["output"]}]
    parquet = pq.read_table(version_dir / "data/rp-temporal/test-00000-of-00001.parquet")
    assert parquet.select(["instruction", "input", "output"]).to_pylist()[0] == record
    assert user_turn == record["instruction"] + "\n" + record["input"]  # both parts present here


def test_stats_match_an_independent_count(published):
    from transformers import AutoTokenizer

    settings, version_dir, con = published
    doc = json.loads((version_dir / "stats.json").read_text())
    assert doc == _manifest(version_dir)["stats"] and doc["tokenizer"]["model"] == MODEL_NAME
    cells = {c["config"]: c for c in doc["cells"]}
    assert list(cells) == CONFIGS
    assert cells["preference-tallrec"]["instances"] == {"train": 8000, "valid": 1000, "test": 1000}
    assert cells["rp-temporal"]["instances"] == dict(con.execute(
        "SELECT split, count(*) FROM instruction_records WHERE task = 'rp' GROUP BY split").fetchall())
    # Independent count: transformers over the saved folder, text joined by hand.
    tok = AutoTokenizer.from_pretrained(settings.home / "models" / MODEL_NAME)
    assert tok.tokenize("1997") == ["1", "9", "9", "7"]  # SmolLM2's digit splitting restored
    test = pq.read_table(version_dir / "data/rp-temporal/test-00000-of-00001.parquet").to_pylist()
    inputs = [len(tok(r["instruction"] + "\n" + r["input"], add_special_tokens=False).input_ids) for r in test]
    outputs = [len(tok(r["output"], add_special_tokens=False).input_ids) for r in test]
    split = cells["rp-temporal"]["by_split"]["test"]
    assert split["avg_input_tokens"] == round(sum(inputs) / len(inputs), 2) and split["max_input_tokens"] == max(inputs)
    assert split["avg_output_tokens"] == 1.0 == sum(outputs) / len(outputs)  # one rating digit
    assert cells["preference-temporal"]["avg_output_tokens"] == 2.0  # "Yes." / "No."
    assert 150 < cells["rp-temporal"]["avg_input_tokens"] < 300
    table = (version_dir / "STATS.md").read_text()
    rp = cells["rp-temporal"]
    assert (f"| ml-100k | rp | temporal | 5,000 | 625 | 625 | {rp['avg_input_tokens']:.1f} | 1.0 |") in table


def test_stats_png_is_a_deterministic_png(published, tmp_path):
    _, version_dir, _ = published
    data = (version_dir / "stats.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (1100, 270)  # 11 in x (1.5 + 0.4 per cell) in at 100 dpi
    assert b"Software" not in data and b"matplotlib" not in data.lower()
    cells = json.loads((version_dir / "stats.json").read_text())["cells"]
    stats.plot(cells, tmp_path / "again.png")
    assert (tmp_path / "again.png").read_bytes() == data


def test_republish_is_byte_identical_and_immutable(published, tmp_path):
    settings, version_dir, con = published
    manifest = _manifest(version_dir)
    tree = {p.relative_to(version_dir).as_posix(): sha256_file(p) for p in version_dir.rglob("*") if p.is_file()}
    # The manifest covers every other file of the version, with its sha256.
    listed = {e["path"]: e["sha256"] for e in manifest["files"] + manifest["artifacts"]}
    assert listed == {k: v for k, v in tree.items() if k != "manifest.json"}
    assert {"README.md", "STATS.md", "stats.json", "stats.png", "llamafactory/dataset_info.json",
            "llamafactory/rp-temporal_valid.json"} <= set(listed)
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o444 for p in version_dir.rglob("*") if p.is_file())
    again = publish(con, settings, "ml-100k")
    assert (again.version, again.created) == (version_dir.name, False)
    other = Settings(home=tmp_path / "other", raw_dir=settings.raw_dir).ensure()
    link_models(other.home, settings.home / "models")
    fresh = publish(con, other, "ml-100k")
    assert (fresh.version, fresh.created) == (version_dir.name, True)
    assert {p.relative_to(fresh.path).as_posix(): sha256_file(p) for p in fresh.path.rglob("*") if p.is_file()} == tree
