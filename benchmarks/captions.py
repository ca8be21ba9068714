"""Captions/s of the caption writer (synthgen.models.captioner) by batch size.

`python -m benchmarks.captions [--model DIR] [--captions 64] [--batches 1,8,32] [--max-new-tokens 40]`
times `Captioner.generate` (synthgen's sampling loop: KV cache, one generator per caption) on
`--captions` captions at each batch size, model loading excluded, and prints captions/s and the
ratio to batch 1. Without --model it builds the tests' tiny random GPT-2 (tests/helpers), which
measures the loop's overhead rather than a real model's speed.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> list[tuple[int, float]]:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="A transformers causal LM folder (default: the tests' tiny one).")
    parser.add_argument("--captions", type=int, default=64)
    parser.add_argument("--batches", default="1,8,32")
    parser.add_argument("--max-new-tokens", type=int, default=40)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)

    from synthgen.models.captioner import Captioner  # torch and transformers: after --help
    from synthgen.spec.manifest_spec import CaptionsSpec

    with tempfile.TemporaryDirectory() as tmp:
        model = Path(args.model) if args.model else _tiny(Path(tmp) / "lm")
        spec = CaptionsSpec(model=str(model), per_class=args.captions, max_new_tokens=args.max_new_tokens)
        captioner = Captioner(model, spec, args.device)
        instruction = spec.instruction.format(name="crane")
        captioner.generate([instruction], [0])  # warm-up
        results = []
        for batch in (int(b) for b in args.batches.split(",")):
            start = time.perf_counter()
            for first in range(0, args.captions, batch):
                seeds = list(range(first, min(first + batch, args.captions)))
                captioner.generate([instruction] * len(seeds), seeds)
            results.append((batch, args.captions / (time.perf_counter() - start)))
    base = results[0][1]
    print(f"{model if args.model else 'tiny random GPT-2 (tests/helpers)'}, {args.captions} captions, "
          f"at most {args.max_new_tokens} new tokens, device {captioner.device}\n")
    print("| batch | captions/s | ratio to the first row |\n|---|---|---|")
    for batch, rate in results:
        print(f"| {batch} | {rate:.1f} | {rate / base:.2f} |")
    return results


def _tiny(out: Path) -> Path:
    from tests.helpers.tiny_models import causal_lm  # the tests' model: torch, only here

    return causal_lm(out)


if __name__ == "__main__":
    main()
