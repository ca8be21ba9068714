"""Tiny diffusers models with random weights, saved the way users save theirs."""

from __future__ import annotations

import json
from pathlib import Path

import torch


def class_unet(out: Path, classes: tuple[str, ...] = ("a", "b", "c"), size: int = 8, seed: int = 0) -> Path:
    """A class-conditional UNet2DModel in a DDPMPipeline folder, with a null class for CFG."""
    from diffusers import DDPMPipeline, DDPMScheduler, UNet2DModel

    torch.manual_seed(seed)
    unet = UNet2DModel(
        sample_size=size, in_channels=1, out_channels=1, layers_per_block=1,
        block_out_channels=(8, 16), down_block_types=("DownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "UpBlock2D"), norm_num_groups=4,
        num_class_embeds=len(classes) + 1,
    )
    DDPMPipeline(unet=unet, scheduler=DDPMScheduler(num_train_timesteps=100)).save_pretrained(out)
    extra = {"null_class": len(classes), "id2label": {str(i): n for i, n in enumerate(classes)}}
    (out / "synthgen.json").write_text(json.dumps(extra))
    return out


def untrained_digits(out: Path) -> Path:
    """The built-in digits model's folder with random weights: the same classes, architecture and
    scheduler, a much worse generator (what a sweep over generators must rank last)."""
    import shutil

    from diffusers import UNet2DModel

    from synthgen.models.sources import BUILTIN_DIR

    shutil.copytree(BUILTIN_DIR / "digits", out)
    torch.manual_seed(0)
    UNet2DModel.from_config(UNet2DModel.load_config(out / "unet")).save_pretrained(out / "unet")
    return out


def plain_unet(out: Path, size: int = 8) -> Path:
    """An unconditional RGB UNet2DModel saved alone (config.json + weights, no pipeline)."""
    from diffusers import UNet2DModel

    torch.manual_seed(1)
    unet = UNet2DModel(
        sample_size=size, in_channels=3, out_channels=3, layers_per_block=1,
        block_out_channels=(8, 16), down_block_types=("DownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "UpBlock2D"), norm_num_groups=4,
    )
    unet.save_pretrained(out)
    return out


# --- latent and text-to-image pipelines (random weights, diffusers layouts) ---

WORDS = ("a", "photo", "of", "cat", "dog", "car", "ship", "bird", "drawing", "blurry", "red", "blue")


def tiny_vae(latent_channels: int = 4, shift_factor: float | None = None) -> torch.nn.Module:
    """An AutoencoderKL with a 2x VAE factor (two blocks); SD3 and FLUX VAEs have a shift."""
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=latent_channels, block_out_channels=(8, 16),
        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
        layers_per_block=1, norm_num_groups=4, sample_size=16, shift_factor=shift_factor,
    )


def clip_tokenizer(max_length: int = 16) -> object:
    """A CLIPTokenizer over single letters and a few whole words, from vocab files written here."""
    import tempfile

    from transformers import CLIPTokenizer

    with tempfile.TemporaryDirectory() as tmp:
        return _clip_tokenizer(Path(tmp), max_length, CLIPTokenizer)


def _clip_tokenizer(out: Path, max_length: int, tokenizer_class: type) -> object:
    letters = list("abcdefghijklmnopqrstuvwxyz0123456789")
    merges = _merges([w for w in WORDS if len(w) > 1])
    tokens = letters + [c + "</w>" for c in letters] + ["".join(m.split()) for m in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    vocab = {token: i for i, token in enumerate(dict.fromkeys(tokens))}
    (out / "vocab.json").write_text(json.dumps(vocab))
    (out / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    return tokenizer_class(str(out / "vocab.json"), str(out / "merges.txt"), model_max_length=max_length)


def _merges(words: list[str]) -> list[str]:
    """BPE merges that build each word letter by letter, left to right."""
    merges: list[str] = []
    for word in words:
        left = word[0]
        for i, char in enumerate(word[1:], start=1):
            right = char + ("</w>" if i == len(word) - 1 else "")
            if f"{left} {right}" not in merges:
                merges.append(f"{left} {right}")
            left += right
    return merges


def clip_text_encoder(vocab_size: int, hidden: int = 16, positions: int = 16, projection: bool = False):
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    config = CLIPTextConfig(
        vocab_size=vocab_size, hidden_size=hidden, intermediate_size=2 * hidden, num_attention_heads=2,
        num_hidden_layers=1, max_position_embeddings=positions, projection_dim=hidden,
        bos_token_id=vocab_size - 2, eos_token_id=vocab_size - 1, pad_token_id=vocab_size - 1,
    )
    return (CLIPTextModelWithProjection if projection else CLIPTextModel)(config)


def sd_pipeline(out: Path, sample_size: int = 8) -> Path:
    """A Stable-Diffusion-style pipeline: 16px images from 8x8x4 latents, 16-token prompts."""
    from diffusers import DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel

    torch.manual_seed(2)
    tokenizer = clip_tokenizer()
    unet = UNet2DConditionModel(
        sample_size=sample_size, in_channels=4, out_channels=4, layers_per_block=1,
        block_out_channels=(8, 16), down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=16,
        attention_head_dim=4, norm_num_groups=4,
    )
    scheduler = DDIMScheduler(num_train_timesteps=100, beta_schedule="scaled_linear",
                              beta_start=0.00085, beta_end=0.012, clip_sample=False,
                              steps_offset=1)
    pipe = StableDiffusionPipeline(
        unet=unet, vae=tiny_vae(), text_encoder=clip_text_encoder(len(tokenizer)), tokenizer=tokenizer,
        scheduler=scheduler, safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )
    pipe.save_pretrained(out)
    return out


def dit_pipeline(out: Path, classes: tuple[str, ...] = ("tench, Tinca tinca", "goldfish", "white shark")
                 ) -> Path:
    """A DiT pipeline: a class-conditional DiTTransformer2DModel (learned sigma), id2label saved."""
    from diffusers import DDIMScheduler, DiTPipeline, DiTTransformer2DModel

    torch.manual_seed(3)
    transformer = DiTTransformer2DModel(
        num_attention_heads=2, attention_head_dim=8, in_channels=4, out_channels=8, num_layers=1,
        sample_size=8, patch_size=2, num_embeds_ada_norm=len(classes), norm_num_groups=4,
    )
    id2label = {str(i): name for i, name in enumerate(classes)}
    scheduler = DDIMScheduler(num_train_timesteps=100)
    pipe = DiTPipeline(transformer=transformer, vae=tiny_vae(), scheduler=scheduler, id2label=id2label)
    pipe.save_pretrained(out)
    index = json.loads((out / "model_index.json").read_text())
    index["id2label"] = id2label  # as facebook/DiT-XL-2-256 ships it
    (out / "model_index.json").write_text(json.dumps(index, indent=2))
    return out


def sdxl_pipeline(out: Path) -> Path:
    """An SDXL-style pipeline (two text encoders, text_time conditioning) for the generic adapter."""
    from diffusers import EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel

    torch.manual_seed(4)
    tokenizer = clip_tokenizer()
    unet = UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(8, 16),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), attention_head_dim=(2, 4),
        use_linear_projection=True, addition_embed_type="text_time", addition_time_embed_dim=4,
        projection_class_embeddings_input_dim=6 * 4 + 16, cross_attention_dim=32, norm_num_groups=4,
    )
    scheduler = EulerDiscreteScheduler(num_train_timesteps=100, beta_schedule="scaled_linear",
                                       beta_start=0.00085, beta_end=0.012)
    pipe = StableDiffusionXLPipeline(
        unet=unet, vae=tiny_vae(), scheduler=scheduler, tokenizer=tokenizer, tokenizer_2=tokenizer,
        text_encoder=clip_text_encoder(len(tokenizer)),
        text_encoder_2=clip_text_encoder(len(tokenizer), projection=True),
    )
    pipe.save_pretrained(out)
    return out


def t5_tokenizer() -> object:
    """A T5 (unigram) tokenizer over the test words, built in memory."""
    from transformers import T5Tokenizer

    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)] + [("\u2581" + w, -1.0) for w in WORDS]
    pieces += [(c, -5.0) for c in "abcdefghijklmnopqrstuvwxyz"]
    return T5Tokenizer(vocab=pieces, extra_ids=0)


def sd3_pipeline(out: Path) -> Path:
    """An SD3-style flow-matching pipeline (two CLIPs and a T5) for flow-euler."""
    from diffusers import FlowMatchEulerDiscreteScheduler, SD3Transformer2DModel, StableDiffusion3Pipeline
    from transformers import T5Config, T5EncoderModel

    torch.manual_seed(5)
    clip, t5 = clip_tokenizer(), t5_tokenizer()
    transformer = SD3Transformer2DModel(
        sample_size=8, patch_size=2, in_channels=4, out_channels=4, num_layers=1, attention_head_dim=8,
        num_attention_heads=2, joint_attention_dim=32, caption_projection_dim=16, pooled_projection_dim=32,
    )
    t5_encoder = T5EncoderModel(T5Config(vocab_size=len(t5), d_model=32, d_kv=8, d_ff=32, num_layers=1,
                                         num_heads=2))
    pipe = StableDiffusion3Pipeline(
        transformer=transformer, scheduler=FlowMatchEulerDiscreteScheduler(), vae=tiny_vae(shift_factor=0.1),
        text_encoder=clip_text_encoder(len(clip), projection=True), tokenizer=clip,
        text_encoder_2=clip_text_encoder(len(clip), projection=True), tokenizer_2=clip,
        text_encoder_3=t5_encoder, tokenizer_3=t5,
    )
    pipe.save_pretrained(out)
    return out


# --- image classifiers for the label-fidelity filter ---

class PixelLinear(torch.nn.Module):
    """A real (if arbitrary) classifier: fixed random linear logits over the pixels in [0, 1]."""

    def __init__(self, classes: int = 3, pixels: int = 64, seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.weight = torch.nn.Parameter(torch.randn(classes, pixels, generator=g))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 4.0 * x.flatten(1) @ self.weight.T


def linear_classifier(out: Path, classes: tuple[str, ...] = ("a", "b", "c")) -> Path:
    """A TorchScript PixelLinear in `out/model.pt`, its outputs named by `out/classes.json`."""
    out.mkdir(parents=True, exist_ok=True)
    torch.jit.save(torch.jit.script(PixelLinear(len(classes))), out / "model.pt")
    (out / "classes.json").write_text(json.dumps(list(classes)))
    return out


# --- a causal language model for classes.captions ---

def word_tokenizer(out: Path) -> Path:
    """A word-level fast tokenizer over the test words (and class names), written and saved here."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = [*WORDS, "bird", "write", "one-line", "description", "photo.", "with", "in", "the", "snow"]
    vocab = {t: i for i, t in enumerate(dict.fromkeys(["<unk>", "<|endoftext|>", *words]))}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    core.decoder = decoders.WordPiece(prefix="##")  # joins words with spaces
    fast = PreTrainedTokenizerFast(tokenizer_object=core, unk_token="<unk>", eos_token="<|endoftext|>",
                                   bos_token="<|endoftext|>", pad_token="<|endoftext|>")
    fast.save_pretrained(out)
    return out


def causal_lm(out: Path) -> Path:
    """A tiny GPT-2 with random weights and a word tokenizer, saved as a transformers folder."""
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(6)
    word_tokenizer(out)
    from transformers import AutoTokenizer

    vocab = len(AutoTokenizer.from_pretrained(out))
    config = GPT2Config(vocab_size=vocab, n_positions=64, n_embd=16, n_layer=1, n_head=2,
                        bos_token_id=1, eos_token_id=1, pad_token_id=1)
    GPT2LMHeadModel(config).save_pretrained(out)
    return out
