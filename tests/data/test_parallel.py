"""Parallel text aligned by document structure (data/parallel.py) on a small known
document set: the handbook's HTML layout (html/<lang>/<page>.html, publican's named
anchors and div.para paragraphs), written here with a known answer."""

from __future__ import annotations

import json

import pytest

from monosemantic.data.parallel import align_directory, ensure_parallel, page_paragraphs, read_parallel, write_parallel
from monosemantic.errors import CorpusError

EN = [
    "The package manager downloads the package list from every source configured on the machine before it installs anything.",
    "A second paragraph of this section explains how the priorities of several repositories decide which version wins.",
    "The backup tool copies the home directories every night to a disk that is kept in another building for safety.",
]
FR = [
    "Le gestionnaire de paquets télécharge la liste des paquets depuis chaque source configurée sur la machine avant toute installation.",
    "Un deuxième paragraphe de cette section explique comment les priorités de plusieurs dépôts décident quelle version gagne.",
    "L'outil de sauvegarde copie les répertoires personnels chaque nuit sur un disque conservé dans un autre bâtiment par sécurité.",
]
DE = [
    "Der Paketmanager lädt die Paketliste von jeder auf dem Rechner eingerichteten Quelle herunter, bevor er etwas installiert.",
    # de merges the two paragraphs of sect.priorities into one: that section cannot be aligned
    "Ein zweiter Absatz erklärt, wie die Prioritäten mehrerer Depots entscheiden, welche Version gewinnt. Beide in einem.",
    "Das Sicherungsprogramm kopiert die Benutzerverzeichnisse jede Nacht auf eine Platte, die in einem anderen Gebäude liegt.",
]


def page(paragraphs_by_section: list[tuple[str, list[str]]], extra_anchor: bool = True) -> str:
    body = []
    for anchor, paras in paragraphs_by_section:
        body.append(f'<div class="section"><div class="titlepage"><h2 class="title"><a id="{anchor}"></a>Title</h2></div>')
        if extra_anchor:  # generated index-term ids sit between paragraphs: they are not sections
            body.append('<a id="id-1.9.17.2" class="indexterm"></a>')
        for p in paras:
            body.append(f'<div class="para">\n\t\t{p.replace("package", "<code>package</code>", 1)}\n\t</div>')
        body.append("</div>")
    return f'<html><head><title>t</title></head><body><p id="title">x</p>{"".join(body)}</body></html>'


def write_book(root, docs: dict[str, list[tuple[str, list[str]]]], name="sect.apt.html"):
    for lang, sections in docs.items():
        (root / lang).mkdir(parents=True, exist_ok=True)
        (root / lang / name).write_text(page(sections), encoding="utf-8")


@pytest.fixture
def book(tmp_path):
    root = tmp_path / "html"
    write_book(root, {
        "en-US": [("sect.sources", [EN[0]]), ("sect.priorities", [EN[1], EN[0][:40]]), ("sect.backup", [EN[2]])],
        "fr-FR": [("sect.sources", [FR[0]]), ("sect.priorities", [FR[1], EN[0][:40]]), ("sect.backup", [FR[2]])],
        "de-DE": [("sect.sources", [DE[0]]), ("sect.priorities", [DE[1]]), ("sect.backup", [DE[2]])],
        # it-IT left this page in English: it must not align
        "it-IT": [("sect.sources", [EN[0]]), ("sect.priorities", [EN[1], EN[0][:40]]), ("sect.backup", [EN[2]])],
    })
    # a second page where fr-FR left one paragraph in English
    write_book(root, {"en-US": [("sect.mail", [EN[2], EN[1]])], "fr-FR": [("sect.mail", [FR[2], EN[1]])]}, "sect.mail.html")
    return root


def test_paragraphs_are_keyed_by_named_anchor_and_index():
    html = page([("sect.a", ["one", "two"]), ("sect.b", ["three"])])
    html = html.replace('<div class="para">\n\t\ttwo', '<a id="id-1.2.3"></a><div class="para">\n\t\ttwo')  # a generated id: no section
    assert page_paragraphs(html) == [("sect.a", 0, "one"), ("sect.a", 1, "two"), ("sect.b", 0, "three")]


def test_a_page_mostly_left_in_english_is_dropped(tmp_path):
    long = [f"{t} And a few more words so that every paragraph has about the same length as the others." for t in EN + EN[:1]]
    sections = [(f"sect.{i}", [t]) for i, t in enumerate(long)]
    fr = [(s, [FR[i % 3] + " Et quelques mots de plus pour que chaque paragraphe ait la même longueur."]) for i, (s, _) in enumerate(sections)]
    write_book(tmp_path, {"en-US": sections,
                          "it-IT": [fr[0]] + sections[1:],           # one of four translated: the page is English
                          "fr-FR": fr[:2] + sections[2:]})           # two of four: kept, with those two
    langs = [p.languages for p in align_directory(tmp_path)]
    assert langs == [["en-US", "fr-FR"], ["en-US", "fr-FR"]]


def test_known_document_pair_aligns_by_structure(book):
    passages = {p.key: p for p in align_directory(book)}
    assert set(passages) == {"debian-handbook/sect.apt.html#sect.sources/0", "debian-handbook/sect.apt.html#sect.priorities/0",
                             "debian-handbook/sect.apt.html#sect.backup/0", "debian-handbook/sect.mail.html#sect.mail/0"}
    sources = passages["debian-handbook/sect.apt.html#sect.sources/0"]
    assert sources.texts == {"en-US": EN[0], "fr-FR": FR[0], "de-DE": DE[0]}   # it-IT's English page is dropped
    # de merged sect.priorities' paragraphs: that section aligns in fr only
    assert passages["debian-handbook/sect.apt.html#sect.priorities/0"].languages == ["en-US", "fr-FR"]
    assert passages["debian-handbook/sect.apt.html#sect.backup/0"].texts["de-DE"] == DE[2]
    # the untranslated paragraph of sect.mail is not a French passage; the short one is no passage at all
    assert passages["debian-handbook/sect.mail.html#sect.mail/0"].texts == {"en-US": EN[2], "fr-FR": FR[2]}


def test_alignment_is_recorded_in_the_manifest(book, tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "manifest.json").write_text(json.dumps({"format": "monosemantic-corpus/1", "digest": "abc", "shards": []}))
    passages = ensure_parallel(corpus, root=book)
    manifest = json.loads((corpus / "manifest.json").read_text())
    assert manifest["digest"] == "abc" and manifest["format"] == "monosemantic-corpus/1"   # the rest kept
    entry = manifest["parallel"]
    assert entry["file"] == "parallel.jsonl"
    assert entry["sources"]["debian-handbook"]["languages"] == {"en-US": 4, "fr-FR": 4, "de-DE": 2}
    line = json.loads((corpus / "parallel.jsonl").read_text().splitlines()[0])
    assert set(line) >= {"source", "page", "section", "index", "languages", "texts"}
    assert [p.texts for p in read_parallel(corpus)] == [p.texts for p in passages]
    write_parallel(corpus, passages[:1])   # a second write replaces, never appends
    assert len(read_parallel(corpus)) == 1


def test_missing_handbook_is_a_user_error(tmp_path):
    with pytest.raises(CorpusError, match="debian-handbook"):
        align_directory(tmp_path / "nothing")
