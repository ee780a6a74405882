"""`monosemantic inspect RUN --image PATH [--prompt TEXT]`: the top features on a
prompt's tokens, and with --image on a vision-language model's image tokens;
`image-examples RUN FOLDER`: an image folder as an extra source of feature examples;
`image-probe RUN`: the paper's multimodal check (docs/multimodal.md)."""

from __future__ import annotations

import argparse

from ..errors import ConfigError
from .steering import _add_run_arguments, _open


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "inspect", help="top features on a prompt, or on an image's tokens (vision-language models)",
        description="Run the run's model and SAE on a prompt (the web inspector's computation) and print the strongest "
        "features. With --image (a vision-language model: docs/multimodal.md) the image tokens are scored apart from "
        "the text, with the patch (view, row, column) where each feature peaks; --feature prints that feature's heat map.",
    )
    _add_run_arguments(p)
    p.add_argument("--image", metavar="PATH", help="an image file (PNG, JPEG, GIF, BMP, WebP; at most 16 MiB and 40 MP)")
    p.add_argument("--prompt", default="", help="text after the image (or alone without --image)")
    p.add_argument("--top", type=int, default=10, help="features listed per part (default 10)")
    p.add_argument("--feature", type=int, default=None, help="also print this feature's activation over the image patches")
    p.set_defaults(func=_inspect)

    p = sub.add_parser(
        "image-examples", help="add an image folder's top examples per feature to RUN/features.db",
        description="Run every image of FOLDER through the run's vision-language model and SAE and record, per feature, "
        "the images where it fires most on the image tokens (with the peak patch and the heat map), shown on the "
        "feature pages. Replaces earlier image examples; nothing is written until all images are done.",
    )
    _add_run_arguments(p)
    p.add_argument("folder", help="folder of image files (read by suffix, not recursively)")
    p.add_argument("--top-k", type=int, default=5, help="images kept per feature (default 5)")
    p.set_defaults(func=_image_examples)

    p = sub.add_parser(
        "image-probe", help="do text-found concept features fire on images of the concept?",
        description="The multimodal probe (docs/multimodal.md): features found from text for a concept (a shipped "
        "concept set, or --features) compared on the image tokens of CONCEPT_DIR images vs OTHER_DIR images: mean "
        "max activation on each, the fraction of images where they fire, and the AUROC of telling the sets apart.",
    )
    _add_run_arguments(p)
    p.add_argument("--concept-images", required=True, metavar="DIR", help="images showing the concept")
    p.add_argument("--other-images", required=True, metavar="DIR", help="images without it")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--concept", help="a shipped concept set (`concept --list`): its features are found from its texts")
    g.add_argument("--features", help="comma-separated feature ids (found however you like)")
    p.add_argument("--top", type=int, default=5, help="concept features probed (default 5)")
    p.set_defaults(func=_image_probe)


def _where(result, position: int) -> str:
    patch = result.patch_of(position)
    return f"{patch[0]} row {patch[1]} col {patch[2]}" if patch else f"position {position}"


def _inspect(args: argparse.Namespace) -> int:
    if args.top < 1:
        raise ConfigError(f"--top must be >= 1, got {args.top}")
    if args.image is None and not args.prompt:
        raise ConfigError("give --image PATH, --prompt TEXT or both")
    image = None
    if args.image is not None:
        from ..models.images import read_image

        image = read_image(args.image)  # a bad file fails before the model loads
    run = _open(args)
    if args.feature is not None and not 0 <= args.feature < run.n_latents:
        raise ConfigError(f"--feature {args.feature} does not exist: the SAE has {run.n_latents} features")
    if image is None:
        return _inspect_text(run, args)
    from ..features.image_prompt import image_features

    result = image_features(run.lm, run.sae, run.layer, image, args.prompt)
    views = ", ".join(f"{v.name} {v.positions.shape[0]}x{v.positions.shape[1]}" for v in result.inputs.views)
    print(f"{args.image}: {image.width} x {image.height} pixels -> {int(result.image_mask.sum())} image tokens "
          f"({views}); {int(result.text_mask.sum())} text tokens scored; layer {run.layer}")
    print(f"\ntop features on the image tokens:\n{'feature':>8} {'max act':>9}  peak patch")
    for f, v, pos in result.top("image", args.top):
        print(f"{f:>8} {v:>9.3f}  {_where(result, pos)}")
    if result.text_mask.any():
        print(f"\ntop features on the text:\n{'feature':>8} {'max act':>9}  token")
        for f, v, pos in result.top("text", args.top):
            print(f"{f:>8} {v:>9.3f}  {result.tokens[pos]!r}")
    if args.feature is not None:
        for view in result.heat_maps(args.feature):
            print(f"\nfeature {args.feature} over the {view['name']} patches ({view['rows']} x {view['cols']}):")
            for row in view["values"]:
                print(" ".join(f"{v:6.2f}" for v in row))
    return 0


def _inspect_text(run, args) -> int:
    from ..features import FeatureDB
    from ..features.prompt import top_for_prompt

    with FeatureDB(run.run_dir, readonly=True) as db:  # its vocabulary renders the tokens
        res = top_for_prompt(db, run.lm, run.sae, run.layer, args.prompt, k=args.top,
                             features=[] if args.feature is None else [args.feature])
    print(f"top features on the prompt ({len(res.tokens) - 1} tokens; layer {run.layer}):")
    print(f"{'feature':>8} {'max act':>9}  token")
    for f, v, pos in res.top:
        print(f"{f:>8} {v:>9.3f}  {res.tokens[pos]!r}")
    return 0


def _image_examples(args: argparse.Namespace) -> int:
    from ..features.image_examples import build_image_examples
    from ..models.images import image_files

    if args.top_k < 1:
        raise ConfigError(f"--top-k must be >= 1, got {args.top_k}")
    files = image_files(args.folder)
    run = _open(args)
    done = build_image_examples(run.run_dir, run.lm, run.sae, run.layer, files, top_k=args.top_k)
    print(f"{done.n_images} images ({done.n_skipped} skipped), {done.n_features} features with image examples "
          f"-> {run.run_dir / 'features.db'}")
    for name, why in done.skipped[:10]:
        print(f"  skipped {name}: {why}")
    return 0


def _image_probe(args: argparse.Namespace) -> int:
    from ..features.image_probe import concept_feature_ids, probe_images

    if args.top < 1:
        raise ConfigError(f"--top must be >= 1, got {args.top}")
    run = _open(args)
    if args.features:
        try:
            features = [int(f) for f in args.features.split(",") if f.strip()]
        except ValueError:
            raise ConfigError(f"--features takes comma-separated integers, got {args.features!r}") from None
    else:
        features = concept_feature_ids(run.lm, run.sae, run.layer, args.concept, args.top)
    result = probe_images(run.lm, run.sae, run.layer, features, args.concept_images, args.other_images)
    print(f"{len(result.rows)} features, {result.n_concept} concept images vs {result.n_other} other images "
          f"(max activation over each image's tokens; layer {run.layer})")
    print(f"{'feature':>8} {'concept':>9} {'other':>9} {'fires c':>8} {'fires o':>8} {'AUROC':>6}")
    for r in result.rows:
        print(f"{r.feature:>8} {r.concept_mean:>9.3f} {r.other_mean:>9.3f} {r.concept_fires:>8.0%} "
              f"{r.other_fires:>8.0%} {r.auroc:>6.2f}")
    print(f"\nall {len(result.rows)} together (sum of activations): AUROC {result.auroc_sum:.2f}; control: "
          f"random features firing on some image, mean AUROC {result.control_auroc:.2f}")
    return 0
