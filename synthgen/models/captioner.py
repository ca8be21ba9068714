"""A transformers causal language model that writes captions, one generator per caption.

synthgen samples the tokens itself (transformers' own logits warpers, a KV cache, left padding)
so that every caption row draws from a generator seeded with its own seed alone: a caption does
not depend on its batch mates' random draws. With one row, the loop draws what
`torch.manual_seed(seed); model.generate(do_sample=True, ...)` draws (tests/models/test_captioner.py).
"""

from __future__ import annotations

import gc
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, LogitsProcessorList
from transformers.generation.logits_process import TemperatureLogitsWarper, TopPLogitsWarper
from transformers.utils import logging as transformers_logging

from synthgen.models.runtime import pick_device, pick_precision
from synthgen.spec.manifest_spec import CaptionsSpec


class Captioner:
    """One loaded language model; `release()` frees it before the image model loads."""

    def __init__(self, path: Path, spec: CaptionsSpec, device: str = "auto", dtype: str = "float32") -> None:
        transformers_logging.disable_progress_bar()
        self.spec = spec
        self.device = pick_device(device)
        # transformers' objects: its Auto* classes type them too loosely to check calls against
        self.tokenizer: Any = AutoTokenizer.from_pretrained(path)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        weights = pick_precision(dtype, self.device).weights  # float32 on CPUs (autocast is for images)
        model: Any = AutoModelForCausalLM.from_pretrained(path, dtype=weights)
        self.model = model.to(self.device).eval()
        self.warpers: Any = LogitsProcessorList([TemperatureLogitsWarper(spec.temperature),
                                            TopPLogitsWarper(spec.top_p)])

    def prompt_text(self, instruction: str) -> str:
        """The instruction as the model expects it: through its chat template when it has one."""
        if getattr(self.tokenizer, "chat_template", None):
            return self.tokenizer.apply_chat_template([{"role": "user", "content": instruction}],
                                                      tokenize=False, add_generation_prompt=True)
        return instruction

    @torch.inference_mode()
    def generate(self, instructions: Sequence[str], seeds: Sequence[int]) -> list[str]:
        """One caption per (instruction, seed): its first line, stripped (may be empty)."""
        tokens = self.tokenizer([self.prompt_text(t) for t in instructions], return_tensors="pt",
                                padding=True, add_special_tokens=True).to(self.device)
        new = self.sample_tokens(tokens.input_ids, tokens.attention_mask, seeds)
        texts = self.tokenizer.batch_decode(new, skip_special_tokens=True)
        return [text.strip().split("\n")[0].strip() for text in texts]

    def sample_tokens(self, ids: torch.Tensor, mask: torch.Tensor, seeds: Sequence[int]) -> list[list[int]]:
        """Up to max_new_tokens tokens per row, each row sampled with its own CPU generator."""
        generators = [torch.Generator("cpu").manual_seed(int(s)) for s in seeds]
        eos = self.model.generation_config.eos_token_id
        stops = set(eos if isinstance(eos, list) else [eos]) - {None}
        out: list[list[int]] = [[] for _ in seeds]
        done = [False] * len(seeds)
        past, step_ids, seen = None, ids, ids
        for _ in range(self.spec.max_new_tokens):
            # 1. Next-token logits for every row (positions count only real tokens: left padding).
            positions = (mask.cumsum(-1) - 1).clamp(min=0)[:, -step_ids.shape[1]:]
            result = self.model(input_ids=step_ids, attention_mask=mask, position_ids=positions,
                                cache=past, use_cache=True)
            past = getattr(result, "cache", None) or result.past_key_values
            # 2. Temperature and top-p, as generate applies them; then one draw per row.
            scores = self.warpers(seen, result.logits[:, -1, :].float())
            probs = torch.softmax(scores, dim=-1).cpu()
            picked = [int(torch.multinomial(p, 1, generator=g))
                      for p, g in zip(probs, generators, strict=True)]
            for row, token in enumerate(picked):
                if not done[row]:
                    done[row] = token in stops
                    if not done[row]:
                        out[row].append(token)
            if all(done):
                break
            # 3. Feed the drawn tokens back (finished rows too: their tokens are ignored).
            step_ids = torch.tensor(picked, device=self.device).unsqueeze(1)
            seen = torch.cat([seen, step_ids], dim=1)
            mask = torch.cat([mask, torch.ones_like(step_ids)], dim=1)
        return out

    def release(self) -> None:
        """Drop the model and give its memory back (the accelerator's too)."""
        self.model = None
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
