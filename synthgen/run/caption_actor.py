"""The caption phase's Ray actor: one language model, the captions of one class per call.

It runs before the image actors start, reserving what an image actor reserves (its GPU where
there is one), and releases its model before the driver starts the image pool: an accelerator
holds one model at a time.
"""

from __future__ import annotations

from typing import Any

from synthgen.run.job import JobContext
from synthgen.spec.captions import ClassCaptions, caption_seed, instruction
from synthgen.storage import s3


class CaptionActor:
    """Loads the job's captions model once; `write(label)` returns that class's captions."""

    def __init__(self, job: JobContext, threads: int, credentials: s3.Credentials) -> None:
        import torch  # torch and transformers: in the actor, never in the driver

        from synthgen.models.caption_source import caption_model_folder  # the actor's own path
        from synthgen.models.captioner import Captioner  # transformers: in the actor only

        credentials.install()
        torch.set_num_threads(threads)
        self.plan = job.plan
        spec = job.spec
        self.captioner = Captioner(caption_model_folder(spec, "all"), spec.classes.captions,
                                   spec.model.device, spec.model.dtype)
        self.batch_size = spec.compute.batch_size

    def write(self, label: int) -> list[dict[str, Any]]:
        """The class's kept captions as rows; raises when it cannot find enough (spec/captions.py)."""
        entry = self.plan.manifest.entries[label]
        spec = self.plan.spec.classes.captions
        chosen = ClassCaptions(spec)
        while chosen.needed:
            count = chosen.needed
            seeds = [caption_seed(self.plan.spec.seed, entry.label_name, chosen.tried + i)
                     for i in range(count)]
            texts: list[str] = []
            for start in range(0, count, self.batch_size):
                part = seeds[start : start + self.batch_size]
                texts += self.captioner.generate([instruction(spec, entry, s) for s in part], part)
            for seed, text in zip(seeds, texts, strict=True):
                chosen.offer(seed, text)
        if not chosen.complete():
            raise CaptionsFailed(chosen.shortfall(entry.label_name))
        return [{"label": entry.label, "label_name": entry.label_name, "caption_id": j, "caption": text,
                 "draw": index, "seed": seed} for j, (index, seed, text) in enumerate(chosen.kept)]

    def release(self) -> bool:
        """Free the language model before the image model loads."""
        self.captioner.release()
        return True


class CaptionsFailed(RuntimeError):
    """A class found too few usable captions within its draws."""
