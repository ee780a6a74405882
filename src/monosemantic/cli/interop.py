"""`monosemantic import SOURCE RUN`, `monosemantic export RUN --format F`, and the
`--sae PATH` option that every command taking a RUN accepts (it imports PATH into
RUN/sae first, with the same conversion and checks)."""

from __future__ import annotations

import argparse

# Commands whose RUN is not read through its SAE, or that make the SAE (pipeline trains it).
NO_SAE_OPTION = {"harvest", "train", "pipeline", "import", "export", "corpus", "store", "sweep", "scaling", "flops"}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "import", help="convert an SAE from SAELens, sparsify, dictionary_learning or a plain file into RUN/sae",
        description="Convert an SAE trained elsewhere into RUN/sae (our format, raw units, SAELens keys), recording "
        "its source. SOURCE: a SAELens folder (cfg.json + sae_weights.safetensors; every inference architecture, "
        "including gated, rescale_acts_by_decoder_norm and expected_average_only_in), a sparsify folder "
        "(SparseCoder.save_to_disk, or its run folder with one hookpoint), a dictionary_learning ae.pt (+ config.json), "
        "or a .safetensors/.npz with W_enc [d, n], W_dec [n, d], b_enc, b_dec (+ threshold). Width, model and "
        "layer are checked against the run's store (or --activations).")
    p.add_argument("source", help="the SAE file or folder")
    p.add_argument("run", help="run directory to write RUN/sae into (holds activations/ unless --activations is given)")
    p.add_argument("--activations", default=None, metavar="PATH", help="the store to check against and evaluate on: another run or its activations/ (or an [N, d] .npy)")
    p.add_argument("--norm-scale", type=float, default=None, metavar="C",
                   help="SAELens expected_average_only_in: the factor its inputs were multiplied by (default: the store's sqrt(d)/E|x|)")
    from ..sae.registry import ALL_ARCHITECTURES

    p.add_argument("--architecture", default=None, choices=sorted(ALL_ARCHITECTURES),
                   help="plain files: how the encoder works (default jumprelu if a threshold tensor is present, else relu)")
    p.add_argument("--k", type=int, default=None, help="plain files, topk/batchtopk: active latents per token")
    p.add_argument("--subtract-b-dec", action=argparse.BooleanOptionalAction, default=None,
                   help="plain files: the encoder sees x - b_dec (default: as our architecture of that name does)")
    p.add_argument("--allow-mismatch", action="store_true", help="import even if the SAE names another model or layer than the store (recorded in cfg.json)")
    p.add_argument("--force", action="store_true", help="replace an SAE already in RUN/sae")
    p.set_defaults(func=_import)

    e = sub.add_parser("export", help="write RUN's SAE for SAELens or sparsify",
                       description="Write the run's SAE in a folder another library loads: saelens (SAE.load_from_disk(OUT)) "
                       "or sparsify (SparseCoder.load_many(OUT, local=True); TopK SAEs only). The metadata names the model "
                       "by its hub id, the hook, the context size and the BOS handling.")
    e.add_argument("run", help="run directory with sae/")
    e.add_argument("--format", required=True, choices=["saelens", "sparsify"], help="the library to write for")
    e.add_argument("--out", default=None, metavar="DIR", help="output folder (default RUN/export/FORMAT)")
    e.set_defaults(func=_export)


def add_sae_option(sub: argparse._SubParsersAction) -> None:
    """--sae PATH on every subcommand that takes a RUN and reads its SAE."""
    for name, parser in sub.choices.items():
        if name in NO_SAE_OPTION or not any(a.dest == "run" for a in parser._actions):
            continue
        parser.add_argument("--sae", default=None, metavar="PATH",
                            help="use this SAE (any format `monosemantic import` reads): imported into RUN/sae first")


def use_sae_option(args: argparse.Namespace) -> None:
    if getattr(args, "sae", None) and getattr(args, "run", None):
        from ..interop import import_sae

        result = import_sae(args.sae, args.run)
        if not getattr(args, "quiet", False):
            print(f"using {args.sae} ({result.imported.source['format']}) as {result.sae_dir}")


def _import(args: argparse.Namespace) -> int:
    from ..interop import import_sae

    result = import_sae(args.source, args.run, activations=args.activations, norm_scale=args.norm_scale,
                        architecture=args.architecture, k=args.k, subtract_b_dec=args.subtract_b_dec,
                        allow_mismatch=args.allow_mismatch, force=args.force)
    sae, src = result.imported.sae, result.imported.source
    print(f"imported {src['format']} {src['architecture']} SAE ({sae.cfg.d_in} -> {sae.cfg.n_latents} latents, "
          f"ours: {sae.cfg.architecture}) into {result.sae_dir}")
    for line in src.get("conversions", []) + result.notes:
        print(f"  {line}")
    print(f"next: monosemantic eval {args.run}")
    return 0


def _export(args: argparse.Namespace) -> int:
    from ..interop import export_run

    out = export_run(args.run, args.format, args.out)
    loader = {"saelens": f"sae_lens.SAE.load_from_disk({str(out)!r})",
              "sparsify": f"sparsify.SparseCoder.load_from_disk({str(out)!r})"}[args.format]
    print(f"wrote {out} (load with {loader})")
    return 0
