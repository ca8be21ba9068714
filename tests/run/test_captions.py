"""LLM-written captions: a tiny causal LM with a tokenizer written here, loaded through the
user's path; captions committed once, read by every later run, never regenerated."""

from __future__ import annotations

import gc
import json
import weakref
from pathlib import Path
from typing import Any

import pytest
import torch

from synthgen.models.captioner import Captioner
from synthgen.output.catalog import Catalog
from synthgen.spec.captions import ClassCaptions
from synthgen.spec.manifest_spec import CaptionsSpec
from tests.conftest import synthgen, write_spec
from tests.helpers import tiny_models
from tests.helpers.dataset_outputs import committed_rows
from tests.helpers.faults import fault_plan

INSTRUCTION = "write a one-line description of a photo of a {name}"


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("models")
    return tiny_models.sd_pipeline(root / "tiny-sd"), tiny_models.causal_lm(root / "tiny-lm")


def captions_spec(models: tuple[Path, Path], out: Path, **captions: Any) -> dict[str, Any]:
    sd, lm = models
    return {
        "name": "captions", "seed": 1, "model": {"source": str(sd)},
        "sampler": {"scheduler": "ddim", "steps": 2, "guidance_scale": 2.0},
        "classes": {"names": ["cat", "dog", "bird"], "count": 4,
                    "captions": {"model": str(lm), "per_class": 3, "instruction": INSTRUCTION,
                                 "max_new_tokens": 6, **captions}},
        "output": {"uri": str(out), "shard_size": 3},
        "compute": {"batch_size": 4, "workers": 1, "cpus_per_worker": 1, "max_retries": 1},
    }


def test_one_row_draws_what_transformers_generate_draws(models: tuple[Path, Path]) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    lm = models[1]
    spec = CaptionsSpec(model=str(lm), per_class=3, max_new_tokens=8, temperature=0.9, top_p=0.95)
    captioner = Captioner(lm, spec)
    tokenizer, model = AutoTokenizer.from_pretrained(lm), AutoModelForCausalLM.from_pretrained(lm)
    prompt = INSTRUCTION.format(name="cat")
    for seed in (1, 2, 3):
        ids = tokenizer([prompt], return_tensors="pt")
        torch.manual_seed(seed)
        theirs = model.generate(**ids, do_sample=True, temperature=0.9, top_p=0.95, top_k=0, max_new_tokens=8)
        expected = tokenizer.decode(theirs[0, ids.input_ids.shape[1]:], skip_special_tokens=True).strip()
        assert captioner.generate([prompt], [seed]) == [expected]
    batch = captioner.generate([prompt, "a dog", prompt], [1, 2, 3])  # batch mates change nothing
    assert [batch[0], batch[2]] == captioner.generate([prompt, prompt], [1, 3])
    held = weakref.ref(captioner.model)
    captioner.release()
    gc.collect()
    assert held() is None  # the language model's memory is given back before the image model loads


def test_dropped_captions_are_redrawn_with_the_next_seed_up_to_the_cap() -> None:
    chosen = ClassCaptions(CaptionsSpec(model="x", per_class=2, max_chars=5, max_draws=2))
    for seed, text in enumerate([" ok ", "", "ok", "far too long"]):
        assert chosen.needed
        chosen.offer(seed, text)
    assert chosen.kept == [(0, 0, "ok")] and chosen.needed == 0 and not chosen.complete()
    assert "only 1 of 2 usable captions after 4 draws (dropped: 1 empty, 1 too long, 1 duplicate)" in \
        chosen.shortfall("cat")


@pytest.mark.slow
def test_captions_job_resumes_with_the_same_prompts(tmp_path: Path, models: tuple[Path, Path],
                                                    ray_address: str) -> None:
    out = tmp_path / "out"
    result = synthgen("run", str(write_spec(tmp_path / "a.yaml", captions_spec(models, out))),
                      address=ray_address)
    assert result.returncode == 0, result.stderr
    rows = committed_rows(out)
    captions = {(r["label"], r["caption_id"]): r["caption"]
                for r in _parquet_rows(out / "captions" / "captions.parquet")}
    order = Catalog.open(str(out)).plan.order  # sample k of a class takes caption k mod 3
    for row in rows:
        assert row["prompt"] and row["caption_id"] == order.locate(row["sample_id"])[2] % 3
        assert row["prompt"] == captions[(row["label"], row["caption_id"])]  # the caption is the prompt
    for label in range(3):
        assert len({r["prompt"] for r in rows if r["label"] == label}) <= 3
    marker = (out / "_commits" / "captions.json").read_text()

    again = tmp_path / "again"  # another output: captions written anew, the same ones
    assert synthgen("run", str(write_spec(tmp_path / "b.yaml", captions_spec(models, again))),
                    address=ray_address).returncode == 0
    assert [r["prompt"] for r in committed_rows(again)] == [r["prompt"] for r in rows]

    broken = tmp_path / "broken"  # stopped after two shards, then resumed
    spec = write_spec(tmp_path / "c.yaml", captions_spec(models, broken))
    with fault_plan("raise:2:*,raise:3:*"):
        assert synthgen("run", str(spec), address=ray_address).returncode == 1
    assert len(list((broken / "_commits").glob("shard-*.json"))) == 2
    resumed = synthgen("resume", str(broken), address=ray_address)
    assert resumed.returncode == 0, resumed.stderr
    assert [r["prompt"] for r in committed_rows(broken)] == [r["prompt"] for r in rows]
    assert (out / "_commits" / "captions.json").read_text() == marker

    shown = synthgen("captions", str(spec), address=ray_address)  # committed ones: shown, not redone
    assert shown.returncode == 0, shown.stderr
    assert len(shown.stdout.strip().splitlines()) == 9


@pytest.mark.slow
def test_captions_command_writes_them_and_run_uses_them(tmp_path: Path, models: tuple[Path, Path],
                                                         ray_address: str) -> None:
    out = tmp_path / "out"
    spec = write_spec(tmp_path / "job.yaml", captions_spec(models, out))
    shown = synthgen("captions", str(spec), address=ray_address)
    assert shown.returncode == 0, shown.stderr
    assert not (out / "data").exists() and (out / "captions" / "captions.parquet").exists()
    marker = json.loads((out / "_commits" / "captions.json").read_text())
    assert synthgen("run", str(spec), address=ray_address).returncode == 0
    assert json.loads((out / "_commits" / "captions.json").read_text()) == marker


@pytest.mark.parametrize("case", ["not a causal LM", "caption without captions"])
def test_bad_captions_input_is_one_line_exit_2(tmp_path: Path, models: tuple[Path, Path], case: str) -> None:
    spec = captions_spec(models, tmp_path / "out")
    if case == "not a causal LM":
        spec["classes"]["captions"]["model"] = str(models[0] / "text_encoder")
        field = "classes.captions.model"
    else:
        del spec["classes"]["captions"]
        spec["classes"]["templates"] = ["a {name}, {caption}"]
        field = "classes.templates"
    result = synthgen("plan", str(write_spec(tmp_path / "job.yaml", spec)))
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2 and len(lines) == 1 and field in lines[0], result.stderr
    assert not (tmp_path / "out").exists()


def _parquet_rows(path: Path) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq

    return pq.read_table(path).to_pylist()
