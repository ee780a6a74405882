"""The family section of a member's report: the family table and every figure the
family's analyses wrote (FAMILY/analysis/<name>/*.png, e.g. geometry's UMAP map),
copied into RUN/report/analysis/ so the report stays a self-contained folder."""

from __future__ import annotations

import html
from pathlib import Path

from .. import atomic
from ..analysis.family import member_family
from ..analysis.family_build import TABLE_JSON


def family_section(run_dir: Path, out: Path) -> list[str]:
    """HTML blocks for RUN/report/index.html; [] when the run is no family member."""
    family = member_family(run_dir)
    if family is None:
        return []
    body = [f"<h2>Family {html.escape(family.name)}</h2>"]
    table = family / TABLE_JSON
    if table.is_file():
        rows = atomic.read_json(table).get("members", [])

        def cell(v, fmt):
            return "n/a" if v is None else format(v, fmt)

        body.append("<table><tr><th>member</th><th>latents</th><th>FVE</th><th>L0</th><th>loss recovered</th><th>dead</th></tr>" + "".join(
            f"<tr><td>{html.escape(r['name'])}{' (this run)' if r['name'] == run_dir.name else ''}</td><td class=\"num\">{r['n_latents']:,}</td>"
            f"<td class=\"num\">{cell(r['fve'], '.4f')}</td><td class=\"num\">{cell(r['l0'], '.2f')}</td>"
            f"<td class=\"num\">{cell(r['loss_recovered'], '.2%')}</td><td class=\"num\">{cell(r['dead_fraction'], '.2%')}</td></tr>"
            for r in rows) + "</table>")
    analyses = family / "analysis"
    for png in sorted(analyses.glob("*/*.png")) if analyses.is_dir() else []:
        target = out / "analysis" / png.parent.name / png.name
        atomic.write_bytes(target, png.read_bytes())
        rel = target.relative_to(out).as_posix()
        body.append(f'<h3>{html.escape(png.parent.name)}: {html.escape(png.stem)}</h3><img src="{rel}" alt="{html.escape(png.stem)}">')
    if len(body) == 1:
        body.append(f'<p class="note">no family table or analyses yet: run `monosemantic family {html.escape(str(family))}`</p>')
    return body
