"""Tiny vision-language models of real transformers architectures, random weights, no
download: each is built from its config with the embedded tokenizer (plus the family's
image tokens), saved with save_pretrained (model + processor) to a folder and loaded
back through load_model, the path a user's model takes.

Sizes: a 64-wide, 4-layer language model; a 2-layer, 32-wide vision tower on 32 x 32
images (8 x 8 patches -> 16 patch tokens; Idefics3 and Gemma 3 pool them to 4)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

FAMILIES = ("idefics3", "llava", "gemma3")
N_LAYERS = 4


def _text(vocab: int, gemma: bool = False):
    from transformers import Gemma3TextConfig, LlamaConfig

    common = dict(vocab_size=vocab, hidden_size=64, intermediate_size=128, num_hidden_layers=N_LAYERS,
                  num_attention_heads=4, max_position_embeddings=512, bos_token_id=1, eos_token_id=2, pad_token_id=0)
    if gemma:
        return Gemma3TextConfig(num_key_value_heads=1, head_dim=16, sliding_window=32, **common)
    return LlamaConfig(num_key_value_heads=2, **common)


VISION = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, image_size=32, patch_size=8)


def build_tiny_vlm(family: str, path: Path, tokenizer_dir: Path) -> Path:
    """Save a tiny `family` VLM and its processor into `path`; tokenizer_dir: a saved
    text tokenizer (the embedded one) each family's image tokens are added to."""
    from transformers import AutoTokenizer

    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    if family == "idefics3":
        from transformers import Idefics3Config, Idefics3ForConditionalGeneration, Idefics3Processor
        from transformers.models.idefics3.image_processing_pil_idefics3 import Idefics3ImageProcessorPil

        # Splitting on: a 64-pixel long edge becomes 2 x 2 tiles of 32 plus the global image.
        images = Idefics3ImageProcessorPil(do_image_splitting=True, size={"longest_edge": 64},
                                           max_image_size={"longest_edge": 32})
        processor = Idefics3Processor(images, tok, image_seq_len=4)
        config = Idefics3Config(vision_config=VISION, text_config=_text(len(processor.tokenizer)), scale_factor=2,
                                image_token_id=processor.image_token_id)
        model = Idefics3ForConditionalGeneration(config)
    elif family == "llava":
        from transformers import CLIPVisionConfig, LlavaConfig, LlavaForConditionalGeneration, LlavaProcessor
        from transformers.models.llava.image_processing_pil_llava import LlavaImageProcessorPil

        tok.add_special_tokens({"additional_special_tokens": ["<image>"]})
        images = LlavaImageProcessorPil(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
        processor = LlavaProcessor(images, tok, patch_size=8, vision_feature_select_strategy="default",
                                   num_additional_image_tokens=1)
        config = LlavaConfig(vision_config=CLIPVisionConfig(projection_dim=32, **VISION), text_config=_text(len(tok)),
                             image_token_id=tok.convert_tokens_to_ids("<image>"), vision_feature_layer=-1)
        model = LlavaForConditionalGeneration(config)
    elif family == "gemma3":
        from transformers import Gemma3Config, Gemma3ForConditionalGeneration, Gemma3Processor, SiglipVisionConfig
        from transformers.models.gemma3.image_processing_pil_gemma3 import Gemma3ImageProcessorPil

        # Gemma3Processor reads boi/eoi/image tokens as named tokenizer attributes.
        tok.add_special_tokens({"additional_special_tokens": ["<start_of_image>", "<end_of_image>", "<image_soft_token>"]})
        tok.save_pretrained(path)
        tok = AutoTokenizer.from_pretrained(path, extra_special_tokens={
            "boi_token": "<start_of_image>", "eoi_token": "<end_of_image>", "image_token": "<image_soft_token>"})
        processor = Gemma3Processor(Gemma3ImageProcessorPil(size={"height": 32, "width": 32}), tok, image_seq_length=4)
        config = Gemma3Config(text_config=_text(len(tok), gemma=True), vision_config=SiglipVisionConfig(**VISION),
                              mm_tokens_per_image=4, boi_token_index=tok.boi_token_id,
                              eoi_token_index=tok.convert_tokens_to_ids("<end_of_image>"), image_token_index=tok.image_token_id)
        model = Gemma3ForConditionalGeneration(config)
    else:
        raise ValueError(family)
    model.eval().save_pretrained(path)
    processor.save_pretrained(path)
    return path


def picture(width: int = 64, height: int = 64, seed: int = 0, colour=None, smooth: bool = False):
    """A small RGB test image: a random texture, a smooth random blob picture, or one flat colour."""
    from PIL import Image, ImageFilter

    if colour is not None:
        return Image.new("RGB", (width, height), colour)
    if smooth:
        coarse = np.random.default_rng(seed).integers(0, 256, (4, 4, 3), dtype=np.uint8)
        return Image.fromarray(coarse).resize((width, height), Image.BICUBIC).filter(ImageFilter.GaussianBlur(2))
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    return Image.fromarray(pixels)


def save_picture(path: Path, **kwargs) -> Path:
    picture(**kwargs).save(path)
    return path


def text_file(path: Path) -> Path:
    """Real text: two modules of Python's own standard library."""
    import sysconfig

    stdlib = Path(sysconfig.get_paths()["stdlib"])
    path.write_text("\n\n".join((stdlib / name).read_text() for name in ("argparse.py", "textwrap.py")))
    return path


def build_vlm_run(root: Path, tokenizer_dir: Path, family: str = "idefics3") -> Path:
    """The text pipeline, unchanged, on a tiny VLM: harvest its language model's layer 2
    on text, train a 64-latent ReLU SAE, build features.db. -> the run directory."""
    from monosemantic.cli.main import main

    model = build_tiny_vlm(family, root / f"model-{family}", tokenizer_dir)
    run, text = root / "run", text_file(root / "text.txt")
    steps = [["harvest", run, "--model", model, "--inputs", text, "--tokens", 2500, "--ctx-len", 32, "--layer", 2,
              "--dtype", "float32"],
             ["train", run, "--latents", 64, "--train-tokens", 40000, "--batch-size", 128],
             ["features", run, "--tokens", 1000]]
    for argv in steps:
        assert main(["--quiet", *map(str, argv)]) == 0, argv
    return run


def image_folder(path: Path, n: int = 4) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        save_picture(path / f"picture-{i}.png", width=64, height=48, seed=i)
    return path


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares width x height pixels but holds one row of data: what a
    decompression bomb looks like to a reader that checks the size before decoding."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)    # 8-bit greyscale
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * (width + 1))) + chunk(b"IEND", b"")
