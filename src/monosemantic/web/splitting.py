"""The family's split trees in the web UI (`analyze splitting` output): /splitting lists
the trees (a feature of the smallest member, its children in the next, theirs in the
next) with the children-count figure; /splitting/{id} shows one tree with each node's
strongest sampled tokens and links to the node's feature page where one exists.

As web/family_map.py: the app serves one run, and the family is that run's parent
when the run is a family member. Nothing in a URL is used as a path: tree ids are
integers checked against trees.json, and the figure's name is fixed."""

from __future__ import annotations

import json
import threading
from pathlib import Path

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, Response

from ..analysis.family import family_root, is_member_dir
from ..analysis.registry import output_dir
from .api import state_of
from .pages import render, templates

router = APIRouter(include_in_schema=False)
PAGE = 100
_cache: dict[Path, tuple[tuple, object]] = {}
_lock = threading.Lock()


def splitting_dir(run_dir: Path) -> Path | None:
    """FAMILY/analysis/splitting of the served run's family, if the run is a member."""
    run_dir = Path(run_dir)
    return output_dir(family_root(run_dir), "splitting") if is_member_dir(run_dir) else None


def has_trees(request: Request) -> bool:
    d = splitting_dir(state_of(request).run_dir)
    return d is not None and (d / "trees.json").is_file()


templates.env.globals["splitting_exists"] = has_trees   # base.html shows the Splitting link only then


def _read(request: Request, name: str):
    """A JSON file of the analysis, parsed once per version of the file."""
    state = state_of(request)
    d = splitting_dir(state.run_dir)
    path = d / name if d else None
    if path is None or not path.is_file():
        where = state.run_dir.parent if d else "FAMILY"
        raise HTTPException(404, f"no split trees for {state.run_dir.name}: run `monosemantic analyze splitting {where}` first"
                            + ("" if d else " and serve one of the family's members"))
    st = path.stat()
    stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
    with _lock:
        hit = _cache.get(path)
        if hit is None or hit[0] != stamp:
            hit = (stamp, json.loads(path.read_bytes()))
            _cache[path] = hit
    return hit[1]


def _feature_links(request: Request, members: list[str]) -> dict[str, str]:
    """Per member, the URL prefix of its feature pages (the served run's own pages,
    or the map's pages of another member with a features.db), or none."""
    run_dir = state_of(request).run_dir
    links = {}
    for name in members:
        if name == run_dir.name:
            links[name] = "/features/"
        elif (run_dir.parent / name / "features.db").is_file():
            links[name] = f"/map/{name}/features/"
    return links


@router.get("/splitting", response_class=HTMLResponse)
def splitting_page(request: Request, offset: int = Query(0, ge=0), min_children: int = Query(2, ge=0)):
    summary = _read(request, "splitting.json")
    data = _read(request, "trees.json")
    trees = sorted((t for t in data["trees"] if len(t.get("children", [])) >= min_children),
                   key=lambda t: (-len(t.get("children", [])), -t["size"], t["id"]))
    rows = [{"id": t["id"], "children": len(t.get("children", [])), "size": t["size"], "fires": t.get("fires", 0),
             "kids": [c["id"] for c in t.get("children", [])][:8]} for t in trees[offset : offset + PAGE]]
    return render(request, "splitting.html", summary=summary, members=data["members"], rows=rows, total=len(trees),
                  offset=offset, page=PAGE, min_children=min_children)


@router.get("/splitting/children_counts.png", include_in_schema=False)
def children_counts_png(request: Request) -> Response:
    d = splitting_dir(state_of(request).run_dir)
    path = d / "children_counts.png" if d else None
    if path is None or not path.is_file():
        raise HTTPException(404, "no children-count figure: run `monosemantic analyze splitting FAMILY` first")
    return Response(path.read_bytes(), media_type="image/png", headers={"Cache-Control": "no-cache"})


@router.get("/splitting/{tree_id}", response_class=HTMLResponse)
def tree_page(request: Request, tree_id: int):
    data = _read(request, "trees.json")
    trees, members = data["trees"], data["members"]
    if not 0 <= tree_id < len(trees):
        raise HTTPException(404, f"no tree {tree_id}: trees are 0..{len(trees) - 1} (one per feature of {members[0]})")
    examples = _read(request, "examples.json")
    return render(request, "split_tree.html", tree=trees[tree_id], members=members, examples=examples,
                  links=_feature_links(request, members), summary=_read(request, "splitting.json"))
