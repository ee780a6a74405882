"""The tables of docs/steering.md from the JSON that benchmarks/steering.py wrote: the
concept x strength table (on concept / fluent / success, random in brackets), one
table per concept, and the summary. With RUN, each steered feature's held-out
specificity is added: the AUROC of its per-text max activation on the test half's
positives vs negatives (steering/catalogue.py), texts the choice never saw.

    python benchmarks/steering_table.py steering.json [more.json ...] [--run RUN] [--out tables.md]

Several files (one concept per process, same settings) are read as one sweep.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


def heldout_aurocs(run_dir: str, results: dict) -> dict[str, list[float]]:
    from monosemantic.steering import load_concept, open_run
    from monosemantic.steering.catalogue import auroc
    from monosemantic.steering.concepts import text_maxes

    run = open_run(run_dir)
    out = {}
    for name, entry in results["concepts"].items():
        test = load_concept(name).halves()[1]
        a = auroc(text_maxes(run.lm, run.sae, run.layer, test.positive), text_maxes(run.lm, run.sae, run.layer, test.negative))
        out[name] = [float(a[f["feature"]]) for f in entry["features"]]
    return out


def merge(parts: list[dict]) -> dict:
    """One sweep from several files of the same settings (the concept lists aside)."""
    same = lambda r: {k: v for k, v in r["args"].items() if k not in ("concepts", "json")} | {"random": r["random_features"]}  # noqa: E731
    for r in parts[1:]:
        if same(r) != same(parts[0]):
            sys.exit("these files were measured with different settings: they are not one sweep")
    out = dict(parts[0], concepts={})
    for r in parts:
        out["concepts"].update(r["concepts"])
    return out


def summarise(results: dict) -> dict:
    """Per strength, means over the concepts measured so far (a sweep cut short keeps its JSON)."""
    summary = {}
    for s in strengths_of(results):
        rows = [e["table"][s] for e in results["concepts"].values()]
        mean = lambda cond, k: sum(r[cond][k] for r in rows) / len(rows)  # noqa: E731
        summary[s] = {k: mean("output", k) for k in ("success", "fluent", "on_concept", "best_of_n", "ppl_rise")} | {
            "random_success": mean("random", "success"), "random_fluent": mean("random", "fluent"),
            "beats_random": sum(r["output"]["success"] > r["random"]["success"] for r in rows) / len(rows), "n": len(rows)}
        if all("input" in r for r in rows):
            summary[s]["input_success"] = mean("input", "success")
    return summary


def strengths_of(results: dict) -> list[str]:
    return [f"{float(s):g}" for s in results["args"]["strengths"].split(",")]


def f2(x: float) -> str:
    return f"{x:.2f}"


def render(results: dict, aurocs: dict | None = None) -> str:
    strengths = strengths_of(results)
    lines = ["| concept (features, held-out AUROC) | " + " | ".join(f"{s}x" for s in strengths) + " |",
             "|---|" + "---|" * len(strengths)]
    for name, e in results["concepts"].items():
        feats = ", ".join(f"#{f['feature']}" + (f" {aurocs[name][i]:.2f}" if aurocs else "") for i, f in enumerate(e["features"]))
        flag = "" if e["features"] and e["features"][0]["score"] > 0 else ", no output effect"
        cells = []
        for s in strengths:
            o, r = e["table"][s]["output"], e["table"][s]["random"]
            cells.append(f"{f2(o['on_concept'])} / {f2(o['fluent'])} / **{f2(o['success'])}** ({f2(r['success'])})")
        lines.append(f"| {name} ({feats}{flag}) | " + " | ".join(cells) + " |")
    summary = summarise(results)
    lines.append(f"| **mean over {len(results['concepts'])} concepts** | " + " | ".join(
        f"success **{f2(summary[s]['success'])}** ({f2(summary[s]['random_success'])}); fluent {f2(summary[s]['fluent'])} "
        f"({f2(summary[s]['random_fluent'])}); above random {f2(summary[s]['beats_random'])}" for s in strengths) + " |")
    out = ["\n".join(lines), ""]
    for name, e in results["concepts"].items():
        out.append(f"**{name}**: steering " + " + ".join(f"#{f['feature']} ({f['detail']})" for f in e["features"]))
        out.append("")
        out.append("| strength | on concept | fluent | success (random) | best of n | perplexity rise | held-out Δlog p (pos − neg) |")
        out.append("|---|---|---|---|---|---|---|")
        u = e["unsteered"]
        out.append(f"| unsteered | {f2(u['on_concept'])} | {f2(u['fluent'])} | {f2(u['success'])} | {f2(u['best_of_n'])} | 0 | 0 |")
        for s in strengths:
            o, r = e["table"][s]["output"], e["table"][s]["random"]
            out.append(f"| {s}x | {f2(o['on_concept'])} | {f2(o['fluent'])} | **{f2(o['success'])}** ({f2(r['success'])}) | "
                       f"{f2(o['best_of_n'])} | {o['ppl_rise']:+.1f} | {o['logprob_gain']:+.3f} |")
        best = max(strengths, key=lambda s: e["table"][s]["output"]["success"])
        example = e["examples"][best][0]
        out.append(f"\nat {best}x: {example['text'].strip()!r}\n")
    return "\n".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("json", nargs="+", help="the file(s) benchmarks/steering.py --json wrote")
    ap.add_argument("--run", default=None, help="the run it measured: adds each feature's held-out AUROC")
    ap.add_argument("--out", default=None, help="write the markdown here (default: print it)")
    args = ap.parse_args(argv)
    results = merge([json.loads(Path(p).read_text()) for p in args.json])
    text = render(results, heldout_aurocs(args.run, results) if args.run else None)
    if args.out:
        from monosemantic.atomic import write_bytes

        write_bytes(args.out, text.encode())
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
