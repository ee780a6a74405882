"""Harvest on N ranks into one store: the same shards a single process writes.

Shard i holds the fixed context slice [i·shard_contexts, (i+1)·shard_contexts), so
the shards are the unit of work: rank r harvests shards r, r+N, r+2N, ... and skips
those already complete (a killed rank resumes its own; a resumed job may even use
another N). Rank 0 fixes the outlier threshold before any shard is written and
merges the shard summaries into the one manifest at the end, which is therefore the
manifest a single process writes (only `harvest_seconds`, a sum of wall times,
differs, as it does between any two runs). Every rank needs the store directory
on a filesystem they all see."""

from __future__ import annotations

import sys
from dataclasses import asdict
from pathlib import Path

from ..distributed import World, check_shared_dir
from ..models import LanguageModel
from .harvest import HarvestConfig, Tokens, begin_harvest, finish_harvest, harvest_layers, harvest_shards, n_shards


def harvest_on(world: World, lm: LanguageModel, tokens: Tokens, out_dirs: dict[int, str | Path], cfg: HarvestConfig,
               extra_manifest: dict | None = None, progress: bool = True) -> dict[int, dict]:
    """`harvest_layers` ({layer: store directory}) split over the ranks of `world`;
    every rank returns the manifests."""
    if not world.distributed:
        return harvest_layers(lm, tokens, out_dirs, cfg, extra_manifest, progress)
    # Before any work: every rank must hold the same contexts, model, dtype and settings.
    world.agree("what to harvest (tokens digest, shape, model, dtype, width, settings, layers)",
                (tokens.digest(), tuple(tokens.contexts.shape), lm.name, str(lm.dtype), lm.d_model, asdict(cfg), sorted(out_dirs)))
    for out in out_dirs.values():
        check_shared_dir(world, Path(out))
    begun = begin_harvest(lm, tokens, out_dirs, cfg) if world.is_main else None
    states, manifests = world.broadcast_object(begun)
    if not states:
        return manifests
    shards = n_shards(tokens, cfg)
    if shards < world.size and world.is_main:
        print(f"monosemantic: warning: {shards} shard(s) of {cfg.shard_contexts} contexts for {world.size} ranks: "
              f"ranks {shards}-{world.size - 1} have nothing to harvest (fewer ranks, or more --tokens)", file=sys.stderr)
    mine = range(world.rank, shards, world.size)
    harvest_shards(lm, tokens, out_dirs, cfg, states, mine, progress and world.is_main)
    world.barrier()
    finished = finish_harvest(lm, tokens, out_dirs, cfg, states, extra_manifest) if world.is_main else None
    return {**manifests, **world.broadcast_object(finished)}


def main_first(world: World, fn):
    """Run `fn` on rank 0, then on the others (which then reuse what it wrote: the
    corpus cache, the packed tokens)."""
    if world.is_main:
        result = fn()
        world.barrier()
        return result
    world.barrier()
    return fn()
