"""Batched, length-sorted, deterministic inference: Yes/No scoring, greedy generation and candidate
likelihoods. Prompts are sorted by length (ties by position) so a batch pads little, run left-padded,
and results come back in input order; greedy decoding and a fixed order make runs repeatable.
"""

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch

from training.model import autocast

Progress = Callable[[int, int], None]  # (done, total)


def answer_token_ids(tokenizer: Any, words: Sequence[str] = ("Yes", "No")) -> list[int]:
    """Ids of the answers' first tokens, from the tokenizer (never hard-coded); each must be one token."""
    ids = []
    for word in words:
        pieces = tokenizer.encode(word, add_special_tokens=False)
        if len(pieces) != 1:
            raise ValueError(f"{word!r} is {len(pieces)} tokens under this tokenizer; Yes/No scoring needs one")
        ids.append(pieces[0])
    return ids


def _batches(lengths: Sequence[int], batch_size: int) -> Iterator[list[int]]:
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    for start in range(0, len(order), batch_size):
        yield order[start:start + batch_size]


def _pad_left(seqs: list[list[int]], pad_id: int, dev: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for row, s in enumerate(seqs):
        ids[row, width - len(s):] = torch.tensor(s)
        mask[row, width - len(s):] = 1
    return ids.to(dev), mask.to(dev)


def _positions(mask: torch.Tensor) -> torch.Tensor:
    """Position ids that start at 0 on each row's first real token: left padding must not shift
    positions, or a batched score differs from the same prompt scored alone."""
    return (mask.cumsum(-1) - 1).clamp(min=0)


@torch.inference_mode()
def score_yes_no(model: Any, tokenizer: Any, prompts: list[list[int]], batch_size: int, bf16: bool,
                 progress: Progress | None = None) -> list[float]:
    """P(Yes) / (P(Yes) + P(No)) at the first answer position: one forward pass per batch, logits
    kept for the last position only (TALLRec's AUC score without generating)."""
    yes, no = answer_token_ids(tokenizer)
    out = [0.0] * len(prompts)
    done = 0
    for batch in _batches([len(p) for p in prompts], batch_size):
        ids, mask = _pad_left([prompts[i] for i in batch], tokenizer.pad_token_id, model.device)
        with autocast(bf16):
            logits = model(input_ids=ids, attention_mask=mask, position_ids=_positions(mask), logits_to_keep=1).logits[:, -1, :]
        pair = torch.log_softmax(logits.float()[:, [yes, no]], dim=-1)[:, 0].exp()
        for i, p in zip(batch, pair.tolist()):
            out[i] = p
        done += len(batch)
        if progress:
            progress(done, len(prompts))
    return out


@torch.inference_mode()
def generate(model: Any, tokenizer: Any, prompts: list[list[int]], max_new_tokens: int, batch_size: int,
             bf16: bool, progress: Progress | None = None) -> list[str]:
    """Greedy continuations up to the end-of-turn token, decoded without special tokens."""
    out = [""] * len(prompts)
    done = 0
    for batch in _batches([len(p) for p in prompts], batch_size):
        ids, mask = _pad_left([prompts[i] for i in batch], tokenizer.pad_token_id, model.device)
        with autocast(bf16):
            gen = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=max_new_tokens, do_sample=False,
                                 eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
        for i, row in zip(batch, gen[:, ids.shape[1]:].tolist()):
            out[i] = tokenizer.decode(row, skip_special_tokens=True).strip()
        done += len(batch)
        if progress:
            progress(done, len(prompts))
    return out


@torch.inference_mode()
def candidate_logprobs(model: Any, tokenizer: Any, prompts: list[list[int]], candidates: list[list[str]],
                       batch_size: int, bf16: bool, progress: Progress | None = None) -> list[list[float]]:
    """Sum of log-probabilities of each candidate answer (its text and the end-of-turn token) after
    its prompt: likelihood scoring of a fixed candidate list, no parsing needed."""
    pairs = [(r, c) for r, cands in enumerate(candidates) for c in range(len(cands))]
    answers = [tokenizer.encode(candidates[r][c], add_special_tokens=False) + [tokenizer.eos_token_id]
               for r, c in pairs]
    seqs = [prompts[r] + a for (r, _), a in zip(pairs, answers)]
    scores = [[0.0] * len(c) for c in candidates]
    done = 0
    for batch in _batches([len(s) for s in seqs], batch_size):
        ids, mask = _pad_left([seqs[i] for i in batch], tokenizer.pad_token_id, model.device)
        # Left padding puts every answer at the end: only the logits that predict the longest
        # answer's tokens are projected onto the vocabulary (the prompt's positions are not).
        keep = max(len(answers[i]) for i in batch) + 1
        with autocast(bf16):
            logits = model(input_ids=ids, attention_mask=mask, position_ids=_positions(mask),
                           logits_to_keep=keep).logits.float()
        logp = torch.log_softmax(logits[:, :-1], dim=-1).gather(-1, ids[:, -keep + 1:].unsqueeze(-1)).squeeze(-1)
        for row, i in enumerate(batch):
            n = len(answers[i])
            r, c = pairs[i]
            scores[r][c] = logp[row, -n:].sum().item()
        done += len(batch)
        if progress:
            progress(done, len(seqs))
    return scores
