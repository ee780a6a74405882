"""The steering judge (steering/judge.py) on real text: the offline sentence-embedding
model for concept presence and the embedded model for fluency."""

from __future__ import annotations

import pytest
import torch

from monosemantic.steering.generate import encode_prompt
from monosemantic.steering.judge import ConceptJudge, letter_fraction, perplexity, repeated_fraction, top_word_share, words_in

FOOD_POS = ["The soup was made with tomatoes, onions and garlic.", "He fried the eggs and toasted some bread for breakfast."]
FOOD_NEG = ["She opened the window and let some fresh air into the room.", "The train was a few minutes late, so they waited."]


@pytest.fixture(scope="module")
def embedder():
    from monosemantic.models.sentence import SentenceEmbedder

    return SentenceEmbedder()


def test_repeated_trigrams_and_whole_words():
    assert repeated_fraction([5, 6, 7, 8, 9, 10]) == 0.0
    assert repeated_fraction([5, 6] * 10) > 0.8  # "I, I, I, ..."
    assert words_in("Fresh Bread, no cheese!", ["bread", "cheese", "rice"]) == ("bread", "cheese")
    assert words_in("the breadth of it", ["bread"]) == ()
    assert letter_fraction("1222318120002 Charlie12 2221") < 0.5 <= letter_fraction("Привет, как дела? 3 яблока.")
    assert top_word_share("If you have a heavy cream of if if you don if it if it if it") > 0.25
    assert top_word_share("I went to the market on Saturday and made a big pizza with my friends.") < 0.25
    assert top_word_share("if if if") == 0.0  # too short to tell


def test_concept_margin_separates_on_and_off_concept_text(embedder, embedded_lm):
    judge = ConceptJudge(embedder, FOOD_POS, FOOD_NEG, words=["pizza"])
    on, off = judge.margins(["I cooked pasta with cheese and a rich tomato sauce for dinner.",
                             "Hello! I had a relaxing weekend, went hiking and watched a movie."]).tolist()
    assert on > judge.thresholds.margin > off


def test_fluency_needs_low_perplexity_and_no_loop(embedder, embedded_lm):
    judge = ConceptJudge(embedder, FOOD_POS, FOOD_NEG, words=["pizza"])
    prompt, _ = encode_prompt(embedded_lm, "Tell me about your weekend.")
    tok = embedded_lm.tokenizer
    texts = {"fluent": "I went to the market on Saturday and made a big pizza with my friends.",
             "salad": " de-de-- d- de- quantum §§ ellipsoid ]] Fahr wardrobe",
             "loop": "I, I, I, I, I, I, I, I, I, I, I, I, I, I, I, I"}
    ids = {k: tok(v, add_special_tokens=False)["input_ids"] for k, v in texts.items()}
    v = dict(zip(texts, judge.judge(embedded_lm, prompt, list(ids.values()))))
    assert v["fluent"].fluent and v["fluent"].on_concept and v["fluent"].words == ("pizza",) and v["fluent"].success
    assert not v["salad"].fluent and v["salad"].perplexity > judge.thresholds.max_perplexity
    assert not v["loop"].fluent and v["loop"].repeated > judge.thresholds.max_repeated
    assert perplexity(embedded_lm, prompt, ids["loop"]) < v["salad"].perplexity  # why perplexity alone is not enough


def test_digit_strings_and_word_loops_are_not_fluent(embedder, embedded_lm):
    """Both passed the old judge on the main run (low perplexity, no repeated token
    trigram): with the perplexity given as low, only the letter and word rules can fail them."""
    judge = ConceptJudge(embedder, FOOD_POS, FOOD_NEG, words=["cheese"])
    prompt, _ = encode_prompt(embedded_lm, "Tell me about your weekend.")
    texts = ["1222318120002 Charlie12 2221 1222 318",
             " If you have a heavy cream of cheese if if you don if it if it if you",
             " You will add cheese and sugar to the bottom of your sauce bowl, then stir it well."]
    ids = [embedded_lm.tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
    digits, words, fine = judge.judge(embedded_lm, prompt, ids, perplexities=[3.0] * 3)
    assert fine.fluent and fine.success and digits.repeated <= judge.thresholds.max_repeated
    assert not digits.fluent and digits.letters < judge.thresholds.min_letters
    assert not words.fluent and words.word_share > judge.thresholds.max_word_share and words.on_concept


def test_calibration_on_unsteered_answers(embedder, embedded_lm):
    """Flattery's unsteered answers were all "on concept" by the raw margin (chatty
    text sits nearer praise than the neutral negatives), and "all" made any text about
    bias: calibrated on the unsteered answers, only a margin above theirs and a word
    they do not already use count."""
    praise = ["You are brilliant, your work is truly impressive.", "What a genius idea, you are amazing!"]
    plain = ["The invoice lists three items and a total.", "Turn left at the second street."]
    chat = ["Hi! My weekend was relaxing, I went for a walk and read a book. It was wonderful.",
            "I spent all Saturday at home and watched a film with my sister."]
    raw = ConceptJudge(embedder, praise, plain, words=["wonderful", "genius", "all"])
    calibrated = ConceptJudge(embedder, praise, plain, words=["wonderful", "genius", "all"], baseline_texts=chat)
    assert calibrated.offset > 0 and calibrated.words == ["genius"]        # "wonderful" used unsteered, "all" a function word
    torch.testing.assert_close(calibrated.margins(chat), raw.margins(chat) - calibrated.offset)
    prompt, _ = encode_prompt(embedded_lm, "Tell me about your weekend.")
    tok = embedded_lm.tokenizer
    texts = chat + ["You are a genius and your writing is brilliant, truly impressive work!"]
    ids = [tok(t, add_special_tokens=False)["input_ids"] for t in texts]
    before = raw.judge(embedded_lm, prompt, ids, perplexities=[3.0] * 3)
    after = calibrated.judge(embedded_lm, prompt, ids, perplexities=[3.0] * 3)
    assert raw.words == ["wonderful", "genius"] and before[0].on_concept and before[0].margin >= 0.1  # a false positive twice over
    assert [v.on_concept for v in after] == [False, False, True]
