"""The family's decoder map in the web UI (`analyze geometry` output): /map draws
every member's features from FAMILY/analysis/geometry/map.json on a canvas
(static/family_map.js: hover, click, zoom, pan, member filter); /api/map serves the
points; /map/{member}/features/{id} shows a feature of a member other than the served
run (its label, statistics, top examples and nearest directions in every member).

The app serves one run; the family is that run's parent directory when the run is a
family member (`serve FAMILY` serves the largest member: cli/serve.py). Members in
URLs are checked against the map's own member list, never used as paths as given."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, Response

from ..analysis.family import member_family
from ..analysis.registry import output_dir
from ..features import FeatureDB
from .analyses import cached_json
from .api import state_of
from .pages import render, templates

router = APIRouter(include_in_schema=False)


def geometry_dir(run_dir: Path) -> Path | None:
    """FAMILY/analysis/geometry of the served run's family, if the run is a member."""
    family = member_family(run_dir)
    return output_dir(family, "geometry") if family is not None else None


def has_map(request: Request) -> bool:
    d = geometry_dir(state_of(request).run_dir)
    return d is not None and (d / "map.json").is_file()


templates.env.globals["family_map_exists"] = has_map   # base.html shows the Map link only then


def load_map(request: Request) -> tuple[bytes, dict]:
    """map.json as bytes and parsed, re-read when the analysis is rerun."""
    state = state_of(request)
    d = geometry_dir(state.run_dir)
    path = d / "map.json" if d else None
    if path is None or not path.is_file():
        where = f"{state.run_dir.parent}" if d else "FAMILY"
        raise HTTPException(404, f"no family map for {state.run_dir.name}: run `monosemantic analyze geometry {where}` first"
                            + ("" if d else " and serve one of the family's members"))
    return cached_json(path)


def _member(request: Request, data: dict, member: str) -> tuple[int, Path]:
    names = [m["name"] for m in data["members"]]
    if member not in names:
        raise HTTPException(404, f"no member {member!r} in this family: members are {', '.join(names)}")
    return names.index(member), state_of(request).run_dir.parent / names[names.index(member)]


@router.get("/map", response_class=HTMLResponse)
def map_page(request: Request):
    _, data = load_map(request)
    state = state_of(request)
    return render(request, "family_map.html", members=data["members"], served=state.run_dir.name,
                  n_points=len(data["points"]["id"]), n_clusters=len(data["clusters"]))


@router.get("/api/map")
def map_json(request: Request) -> Response:
    raw, _ = load_map(request)
    return Response(raw, media_type="application/json", headers={"Cache-Control": "no-cache"})


def _neighbours(geometry: Path, member: str, fid: int) -> dict[str, list[tuple[int, float]]]:
    path = geometry / "neighbours" / f"{member}.npz"
    if not path.is_file():
        return {}
    with np.load(path, allow_pickle=False) as z:
        out = {}
        for key in z.files:
            if key.endswith("_ids"):
                other = key[: -len("_ids")]
                out[member if other == "self" else other] = list(zip(z[key][fid].tolist(), z[other + "_cos"][fid].tolist()))
    return out


@router.get("/map/{member}/features/{feature_id}", response_class=HTMLResponse)
def member_feature(request: Request, member: str, feature_id: int):
    _, data = load_map(request)
    index, member_dir = _member(request, data, member)
    n = int(data["members"][index]["n_latents"])
    if not 0 <= feature_id < n:
        raise HTTPException(404, f"feature {feature_id} does not exist: {member} has features 0..{n - 1}")
    with FeatureDB(member_dir, readonly=True) as db:
        f = db.get(feature_id)
    nbs = _neighbours(geometry_dir(state_of(request).run_dir), member, feature_id)
    served = state_of(request).run_dir.name
    return render(request, "family_feature.html", f=f, member=member, served=served, neighbours=nbs,
                  members=[m["name"] for m in data["members"]])
