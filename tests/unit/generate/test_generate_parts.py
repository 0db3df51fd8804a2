"""Citations, abstention, context packing and language detection (no model needed)."""

from __future__ import annotations

from lecture_rag.generate.citations import is_abstention, parse_citations, references, split_valid
from lecture_rag.generate.context import pack, shorten
from lecture_rag.generate.language import detect_language
from lecture_rag.records import Hit


def _hit(cid: int, video: str, start: float, text: str = "texto") -> Hit:
    return Hit(
        cid,
        video,
        start,
        start + 120,
        text,
        video_url=f"https://youtu.be/{video:0<11}"[:28],
        title=f"Aula {video}",
        score=0.86,
        rank=cid,
        rank_score=0.86,
    )


def test_parse_citation_forms() -> None:
    text = "A dificuldade é explicar [2]. Ainda há pesquisa [1, 3] e [4-6]; ver também [2][7] e [1–2]."
    assert parse_citations(text) == [2, 1, 3, 4, 5, 6, 7]
    assert parse_citations("sem citações aqui, nem [a] nem [ ]") == []


def test_invalid_citations_are_split_out() -> None:
    valid, invalid = split_valid([2, 1, 9, 0], n_context=3)
    assert valid == [2, 1] and invalid == [9, 0]


def test_references_list_each_video_once_with_cited_seconds() -> None:
    ctx = [_hit(10, "aaa", 60), _hit(11, "bbb", 300), _hit(12, "aaa", 2570)]
    refs = references([3, 2, 1, 3], ctx)
    assert [r.video_id for r in refs] == ["aaa", "bbb"]
    assert [t.start for t in refs[0].times] == [2570, 60]
    assert refs[0].times[0].url.endswith("&t=2570s")


def test_abstention_detection() -> None:
    assert is_abstention("Não encontrei a resposta nas aulas.")
    assert is_abstention("nao encontrei a resposta nas aulas")
    assert is_abstention("I could not find the answer in the lectures.")
    assert is_abstention("Os trechos não tratam desse assunto.")
    assert not is_abstention("A principal dificuldade é a falta de explicabilidade [1].")


def test_pack_drops_lowest_ranked_whole() -> None:
    def count(text: str) -> int:
        return len(text.split())

    hits = [_hit(i, "v", i * 120, " ".join(["palavra"] * 100)) for i in range(5)]
    packed = pack(hits, budget=3 * 124 + 10, count=count)
    assert [h.corpus_id for h in packed.hits] == [0, 1, 2]
    assert packed.dropped == 2 and not packed.shortened
    assert all(h.text == hits[0].text for h in packed.hits)


def test_pack_shortens_only_a_lone_segment_at_sentence_boundary() -> None:
    def count(text: str) -> int:
        return len(text.split())

    text = "Primeira frase curta aqui. Segunda frase também curta. " + " ".join(["longa"] * 200) + "."
    packed = pack([_hit(1, "v", 0, text)], budget=40, count=count)
    assert packed.shortened
    assert packed.hits[0].text == "Primeira frase curta aqui. Segunda frase também curta."
    unpunctuated = " ".join(["fala"] * 300)
    cut = shorten(unpunctuated, 20, count)
    assert cut.endswith("[…]") and count(cut) <= 20


def test_language_detection() -> None:
    assert detect_language("Apesar do grande avanço do Deep Learning, qual é a principal dificuldade?") == "pt"
    assert detect_language("What did the lecturer say about cave paintings?") == "en"
    assert detect_language("¿Cuál es la duración del paleolítico según el profesor?") == "es"
    assert detect_language("deep learning?") == "pt"
