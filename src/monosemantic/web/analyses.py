"""The family's splitting and completeness analyses in the web UI. /splitting lists the
split trees (`analyze splitting`: a feature of the smallest member, its children in the
next, theirs in the next) with the children-count figure; /splitting/{id} shows one
tree with each node's strongest sampled tokens and links to the node's feature page
where one exists. /completeness shows the sigmoid figure (`analyze completeness`) and
every judged concept with each member's best feature.

As web/family_map.py: the app serves one run, and the family is that run's parent
when the run is a family member. Nothing in a URL is used as a path: tree ids are
integers checked against trees.json, and the figures' names are fixed."""

from __future__ import annotations

import json
import threading
from pathlib import Path

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, Response

from ..analysis.family import member_family
from ..analysis.registry import output_dir
from .api import state_of
from .pages import render, templates

router = APIRouter(include_in_schema=False)
PAGE = 100
_cache: dict[Path, tuple[tuple, bytes, object]] = {}
_lock = threading.Lock()


def analysis_dir(run_dir: Path, name: str) -> Path | None:
    """FAMILY/analysis/<name> of the served run's family, if the run is a member."""
    family = member_family(run_dir)
    return output_dir(family, name) if family is not None else None


def _exists(name: str, file: str):
    def exists(request: Request) -> bool:
        d = analysis_dir(state_of(request).run_dir, name)
        return d is not None and (d / file).is_file()
    return exists


templates.env.globals["splitting_exists"] = _exists("splitting", "trees.json")        # base.html shows the links only then
templates.env.globals["completeness_exists"] = _exists("completeness", "completeness.json")


def _read(request: Request, name: str, file: str):
    """A JSON file of an analysis, parsed once per version of the file."""
    state = state_of(request)
    d = analysis_dir(state.run_dir, name)
    path = d / file if d else None
    if path is None or not path.is_file():
        where = state.run_dir.parent if d else "FAMILY"
        raise HTTPException(404, f"no {name} analysis for {state.run_dir.name}: run `monosemantic analyze {name} {where}` first"
                            + ("" if d else " and serve one of the family's members"))
    return cached_json(path)[1]


def cached_json(path: Path) -> tuple[bytes, object]:
    """A JSON file's bytes and parsed value, read again only when the file changes
    (an analysis rerun replaces it atomically: a new inode)."""
    st = path.stat()
    stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
    with _lock:
        hit = _cache.get(path)
        if hit is None or hit[0] != stamp:
            raw = path.read_bytes()
            hit = (stamp, raw, json.loads(raw))
            _cache[path] = hit
    return hit[1], hit[2]


def _png(request: Request, name: str, file: str) -> Response:
    d = analysis_dir(state_of(request).run_dir, name)
    path = d / file if d else None
    if path is None or not path.is_file():
        raise HTTPException(404, f"no {file}: run `monosemantic analyze {name} FAMILY` first")
    return Response(path.read_bytes(), media_type="image/png", headers={"Cache-Control": "no-cache"})


def _feature_links(request: Request, members: list[str]) -> dict[str, str]:
    """Per member with a features.db, the URL prefix of its feature pages: the served
    run's own pages, or the map's pages of another member (web/family_map.py)."""
    run_dir = state_of(request).run_dir
    return {name: "/features/" if name == run_dir.name else f"/map/{name}/features/"
            for name in members if (run_dir.parent / name / "features.db").is_file()}


@router.get("/splitting", response_class=HTMLResponse)
def splitting_page(request: Request, offset: int = Query(0, ge=0), min_children: int = Query(2, ge=0)):
    summary = _read(request, "splitting", "splitting.json")
    data = _read(request, "splitting", "trees.json")
    trees = sorted((t for t in data["trees"] if len(t.get("children", [])) >= min_children),
                   key=lambda t: (-len(t.get("children", [])), -t["size"], t["id"]))
    rows = [{"id": t["id"], "children": len(t.get("children", [])), "size": t["size"], "fires": t.get("fires", 0),
             "kids": [c["id"] for c in t.get("children", [])][:8]} for t in trees[offset : offset + PAGE]]
    return render(request, "splitting.html", summary=summary, members=data["members"], rows=rows, total=len(trees),
                  offset=offset, page=PAGE, min_children=min_children)


@router.get("/splitting/children_counts.png", include_in_schema=False)
def children_counts_png(request: Request) -> Response:
    return _png(request, "splitting", "children_counts.png")


@router.get("/splitting/{tree_id}", response_class=HTMLResponse)
def tree_page(request: Request, tree_id: int):
    data = _read(request, "splitting", "trees.json")
    trees, members = data["trees"], data["members"]
    if not 0 <= tree_id < len(trees):
        raise HTTPException(404, f"no tree {tree_id}: trees are 0..{len(trees) - 1} (one per feature of {members[0]})")
    examples = _read(request, "splitting", "examples.json")
    return render(request, "split_tree.html", tree=trees[tree_id], members=members, examples=examples,
                  links=_feature_links(request, members), summary=_read(request, "splitting", "splitting.json"))


@router.get("/completeness", response_class=HTMLResponse)
def completeness_page(request: Request, category: str | None = None):
    summary = _read(request, "completeness", "completeness.json")
    data = _read(request, "completeness", "concepts.json")
    members = [m["name"] for m in summary["members"]]
    by_concept: dict[str, dict] = {}
    for p in data["points"]:
        row = by_concept.setdefault(p["concept"], {"concept": p["concept"], "category": p["category"],
                                                   "frequency": p["frequency"], "mentions": p["mentions"], "members": {}})
        row["members"][p["member"]] = p
    rows = sorted((r for r in by_concept.values() if category in (None, r["category"])), key=lambda r: -r["frequency"])
    categories = sorted({r["category"] for r in by_concept.values()})
    return render(request, "completeness.html", summary=summary, members=members, rows=rows, categories=categories,
                  category=category, links=_feature_links(request, members))


@router.get("/completeness/completeness.png", include_in_schema=False)
def completeness_png(request: Request) -> Response:
    return _png(request, "completeness", "completeness.png")
