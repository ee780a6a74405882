"""A harvested row traces back to its document's text (tiny Llama, real tokenizer)."""

import numpy as np

from monosemantic.activations import open_store
from monosemantic.activations.run import harvest_run
from monosemantic.activations.trace import trace_row
from monosemantic.data import load_tokens


def test_trace_row_back_to_text(tmp_path, tiny_llama, tiny_model_dirs):
    (tmp_path / "in").mkdir()
    for i, animal in enumerate(["giraffe", "pelican", "octopus"]):
        (tmp_path / "in" / f"{animal}.txt").write_text(f"The {animal} number {i} lives in a zoo and eats lunch at noon. " * 12)
    run = tmp_path / "run"
    harvest_run(run, model=str(tiny_model_dirs["llama"]), lm=tiny_llama, layer=1, n_tokens=300, ctx_len=32,
                inputs=[str(tmp_path / "in")], progress=False)
    store, tokens = open_store(run), load_tokens(run / "tokens")
    rows = np.concatenate([np.asarray(r) for r in store.rows])
    row = int(np.nonzero(rows[:, 2] >= 0)[0][40])
    info = store.row_info(row)
    doc_text = tokens.document(info["doc_id"])
    out = trace_row(run, row, window=4)  # tokenizer loaded from the model directory the manifest names
    assert f"row {row}: context {info['context_id']}, position {info['position']}, document {info['doc_id']}" in out
    assert "[[" in out and "]]" in out
    before, rest = out.splitlines()[1].strip("…").split("[[", 1)
    token, after = rest.split("]]", 1)
    assert (before + token + after) in doc_text
    assert tiny_llama.tokenizer.decode([int(tokens.contexts[info["context_id"], info["position"]])]).strip() == token.strip()
    # a separator row falls back to decoding the context
    seps = np.nonzero(rows[:, 2] == -1)[0]
    if len(seps):
        assert "separator" in trace_row(run, int(seps[0]), tokenizer=tiny_llama.tokenizer)
