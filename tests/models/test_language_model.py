import pytest
import torch

from monosemantic.errors import ModelError
from monosemantic.models import load_model

FAMILIES = ["llama", "gpt2", "gemma"]


@pytest.fixture(scope="module", params=FAMILIES)
def family_lm(request, tiny_model_dirs):
    return load_model(str(tiny_model_dirs[request.param]), dtype="float32")


def _ids(lm, n=2, t=12):
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(3, 1000, (n, t), generator=g)
    ids[:, 0] = lm.bos_id
    return ids


def test_truncated_residual_equals_full_forward_hidden_state(family_lm):
    ids = _ids(family_lm)
    with torch.inference_mode():
        hidden = family_lm.model(ids, output_hidden_states=True).hidden_states
    for layer in range(family_lm.n_layers - 1):  # the last entry is after the final norm in some families
        torch.testing.assert_close(family_lm.residual(ids, layer), hidden[layer + 1])


def test_identity_patch_keeps_logits_and_zero_patch_changes_them(family_lm):
    ids = _ids(family_lm)
    clean = family_lm.logits(ids)
    with family_lm.patch_residual(1, lambda h: h.clone()):
        torch.testing.assert_close(family_lm.logits(ids), clean)
    with family_lm.patch_residual(1, torch.zeros_like):
        assert (family_lm.logits(ids) - clean).abs().max() > 1e-3
    torch.testing.assert_close(family_lm.logits(ids), clean)  # hook removed


def test_capture_residual_during_full_forward(family_lm):
    ids = _ids(family_lm)
    with family_lm.capture_residual(2) as captured:
        family_lm.logits(ids)
    torch.testing.assert_close(captured[0], family_lm.residual(ids, 2))


def test_patch_applies_inside_generate(family_lm):
    ids = _ids(family_lm, n=1, t=5)
    calls = []

    def spy(h):
        calls.append(h.shape)
        return h

    with family_lm.patch_residual(0, spy):
        family_lm.model.generate(ids, max_new_tokens=3, do_sample=False, pad_token_id=0)
    assert len(calls) >= 3


def test_layer_out_of_range_is_a_clear_error(family_lm):
    with pytest.raises(ModelError, match="out of range"):
        family_lm.residual(_ids(family_lm), family_lm.n_layers)
    with pytest.raises(ModelError, match="out of range"):
        family_lm.residual(_ids(family_lm), -1)


def test_unknown_model_is_a_clear_error(tmp_path):
    with pytest.raises(ModelError, match="unknown model"):
        load_model("no-such-org/no-such-model-xyz")
    (tmp_path / "weights.bin").write_bytes(b"\0" * 10)
    with pytest.raises(ModelError):
        load_model(str(tmp_path / "weights.bin"))
    with pytest.raises(ModelError, match="config.json"):
        load_model(str(tmp_path))
    with pytest.raises(ModelError, match="does not exist"):
        load_model(str(tmp_path / "missing.gguf"))


def test_embedded_model_facts_and_attention_sink(embedded_lm):
    assert (embedded_lm.n_layers, embedded_lm.d_model, embedded_lm.vocab_size) == (30, 576, 49152)
    assert embedded_lm.default_layer == 15
    text = "The quick brown fox jumps over the lazy dog. def add(a, b): return a + b"
    ids = torch.tensor([[embedded_lm.bos_id] + embedded_lm.tokenizer(text).input_ids])
    norms = embedded_lm.residual(ids, 15).norm(dim=-1)[0]
    # DESIGN.md: the sink on position 0 has ~100x the norm of typical tokens.
    assert norms[0] > 20 * norms[1:].median()


def test_embedded_model_second_load_is_fast():
    import time

    load_model("embedded")  # ensures the cached copy exists
    start = time.perf_counter()
    load_model("embedded")
    assert time.perf_counter() - start < 5.0


@pytest.mark.slow
def test_gemma_gguf_loads_offline():
    lm = load_model("gemma3-270m")
    assert (lm.n_layers, lm.d_model) == (18, 640)
    ids = torch.tensor([[lm.bos_id] + lm.tokenizer("The capital of France is", add_special_tokens=False).input_ids])
    norms = lm.residual(ids, lm.default_layer).float().norm(dim=-1)[0]
    assert norms[0] > 5 * norms[1:].median()
