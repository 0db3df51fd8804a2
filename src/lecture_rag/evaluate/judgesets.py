"""Answers labelled by people, read as data sets for measuring a judge (``lecture-rag eval judges``).

Three sources, one shape (:class:`LabelledAnswer`):

* **Kamalloo et al. 2023, NQ** (``NQ301_human.tsv``: id, Question, Model
  answer, Acceptable?, annotator1..3): ``Acceptable?`` is the annotators'
  majority. The file has no reference answers, so the judge sees only the
  question and the answer.
* **EVOUNA NQ** (Wang et al. 2023, ``NQ.json``): one item per (question,
  answering system) whose ``judge_<system>`` is true or false; ``null``
  means nobody judged that answer, and questions flagged ``improper`` were
  set aside by the authors, so both are left out (and counted), not
  treated as errors. ``golden_answer`` (split on ``/``) gives the reference
  answers the judge is shown.
* **A run of this project exported with** ``lecture-rag report RUN --format
  json``: every record with a manual label (majority of its annotators) is an
  item, with the run's answer, its lecture excerpts and the question file's
  expected answer as reference.

Label mapping (binary sets onto the label scheme): *acceptable / true → the
scheme's best ordinal label* (C by default), *not acceptable / false → its
worst ordinal label* (I). A judge can still answer P or N: on binary data
that is a disagreement, and it shows in the confusion matrix.

Malformed rows are collected with their line (or item number, in a JSON
array); :func:`load_dataset` refuses the whole file when there are any,
unless the caller chose to skip them.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lecture_rag.errors import LectureRagError
from lecture_rag.evaluate.judges import LabelExample
from lecture_rag.evaluate.labels import LabelScheme, fold_text
from lecture_rag.evaluate.summary import manual_label
from lecture_rag.records import Answer, Judgment, RunItem
from lecture_rag.wire import from_data

KAMALLOO_COLUMNS = ("id", "Question", "Model answer", "Acceptable?")
EVOUNA_SYSTEMS = ("fid", "gpt35", "chatgpt", "gpt4", "newbing")
# Spellings of a binary verdict (single letters are left out: "N" is a label code).
_YES = frozenset({"yes", "true", "acceptable", "sim"})
_NO = frozenset({"no", "false", "not acceptable", "unacceptable", "nao"})
_SHOWN_PROBLEMS = 10


class DatasetError(LectureRagError, ValueError):
    """A data set, a verdict file or an examples file that cannot be used as it is."""


@dataclass(frozen=True, slots=True)
class LabelledAnswer:
    """One answer with the label people gave it, ready to be judged.

    ``id`` is stable across reads of the same file (it names the row), so a
    stored evaluation resumes and a verdict file can be matched to it.
    """

    id: str
    position: int
    question: str
    answer: Answer
    label: str
    references: tuple[str, ...] = ()
    source: str = ""
    line: int = 0


@dataclass(slots=True)
class Dataset:
    """A data set's items, where they came from, and what was left out and why."""

    name: str
    path: Path
    kind: str
    items: list[LabelledAnswer]
    problems: list[str] = field(default_factory=list)
    left_out: dict[str, int] = field(default_factory=dict)


def binary_codes(scheme: LabelScheme) -> tuple[str, str]:
    """(acceptable, not acceptable) in the scheme: its best and worst ordinal labels."""
    ordinal = scheme.ordinal_codes
    if len(ordinal) < 2:
        raise DatasetError(
            "Para comparar com rótulos sim/não, o esquema de rótulos precisa de pelo menos dois rótulos ordinais "
            "(o melhor vale 'aceitável', o pior 'não aceitável'). Ajuste [[labels]] na configuração."
        )
    return ordinal[0], ordinal[-1]


def yes_no(value: Any) -> bool | None:
    """True/False for the spellings of acceptable / not acceptable, None for anything else."""
    if isinstance(value, bool):
        return value
    folded = fold_text(str(value))
    return True if folded in _YES else False if folded in _NO else None


def scheme_label(value: str, scheme: LabelScheme) -> str | None:
    """A label as the scheme's code: a yes/no spelling through the binary mapping, else a code, name or alias."""
    binary = yes_no(value)
    if binary is not None:
        yes, no = binary_codes(scheme)
        return yes if binary else no
    return scheme.resolve(value)


def _answer(question: str, text: str, language: str = "en", model: str = "") -> Answer:
    """An answer given elsewhere: no retrieval behind it, nothing cited."""
    return Answer(question=question, language=language, hits=[], context=[], text=text, model=model)


# --------------------------------------------------------------------------- files


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise DatasetError(f"{path} não é texto UTF-8. Salve o arquivo como UTF-8 e tente de novo.") from None
    except OSError as exc:
        raise DatasetError(f"Não foi possível ler {path} ({exc.strerror}). Confira o caminho.") from None


def _tsv_rows(path: Path) -> tuple[list[str], Iterator[tuple[int, list[str]]]]:
    """Header and (line number, cells) of a tab-separated file (CSV quoting, as the Kamalloo files were written)."""
    text = _read_text(path)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter="\t")
    try:
        header = next(reader)
    except StopIteration:
        raise DatasetError(f"{path} está vazio.") from None
    return header, ((reader.line_num, row) for row in reader if any(cell.strip() for cell in row))


def resolve_dataset_file(path: Path) -> Path:
    """A data set file, or the one data set file of a folder in the shared layout."""
    if not path.exists():
        raise DatasetError(f"{path} não existe. Passe um arquivo ou uma pasta de ../shared/data/answer-judgments/.")
    if path.is_file():
        return path
    found = sorted(p for p in path.iterdir() if p.is_file() and (p.name.endswith("_human.tsv") or p.suffix == ".json"))
    if len(found) != 1:
        names = ", ".join(p.name for p in found) or "nenhum *_human.tsv ou .json"
        raise DatasetError(
            f"A pasta {path} deve ter exatamente um arquivo de rótulos humanos (*_human.tsv ou .json); tem: {names}. "
            "Passe o arquivo em vez da pasta."
        )
    return found[0]


def load_dataset(path: Path, scheme: LabelScheme) -> Dataset:
    """Read a data set (file or folder); malformed rows are in ``problems``, for the caller to refuse or skip."""
    file = resolve_dataset_file(path)
    if file.suffix.lower() == ".tsv":
        return _kamalloo(file, scheme)
    if file.suffix.lower() == ".json":
        text = _read_text(file)
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise DatasetError(f"{file} não é JSON válido ({exc}). Corrija o arquivo.") from None
        if isinstance(data, dict) and isinstance(data.get("records"), list):
            return _run_export(file, data, scheme)
        if isinstance(data, list):
            return _evouna(file, data, scheme)
    raise DatasetError(
        f"Formato de {file.name} não reconhecido. Use o TSV de Kamalloo et al. (*_human.tsv), o NQ.json do EVOUNA "
        "ou uma rodada exportada com 'lecture-rag report RODADA --format json'."
    )


def _kamalloo(path: Path, scheme: LabelScheme) -> Dataset:
    yes, no = binary_codes(scheme)
    header, rows = _tsv_rows(path)
    missing = [c for c in KAMALLOO_COLUMNS if c not in header]
    if missing:
        raise DatasetError(
            f"{path.name}: faltam as colunas {', '.join(missing)} (esperadas: {', '.join(KAMALLOO_COLUMNS)}, separadas "
            "por tabulação, como no NQ301_human.tsv de Kamalloo et al.)."
        )
    col = {name: header.index(name) for name in KAMALLOO_COLUMNS}
    out = Dataset(path.parent.name or path.stem, path, "kamalloo", [])
    for line, cells in rows:
        if len(cells) != len(header):
            out.problems.append(f"linha {line}: {len(cells)} colunas, o cabeçalho tem {len(header)}")
            continue
        row_id, question, answer, verdict = (cells[col[c]].strip() for c in KAMALLOO_COLUMNS)
        label = yes_no(verdict)
        if not question or not answer:
            out.problems.append(f"linha {line}: pergunta ou resposta vazia")
        elif label is None:
            out.problems.append(f"linha {line}: 'Acceptable?' deve ser Yes ou No (veio {verdict[:30]!r})")
        else:
            item_id = f"{row_id}@{line}"
            out.items.append(
                LabelledAnswer(
                    item_id, len(out.items), question, _answer(question, answer), yes if label else no, line=line
                )
            )
    return out


def _evouna(path: Path, data: list[Any], scheme: LabelScheme) -> Dataset:
    yes, no = binary_codes(scheme)
    out = Dataset(path.parent.name or path.stem, path, "evouna", [])
    left_out: Counter[str] = Counter()
    for number, entry in enumerate(data, start=1):
        where = f"item {number}"
        if not isinstance(entry, dict) or not isinstance(entry.get("question"), str) or not entry["question"].strip():
            out.problems.append(f"{where}: não é um objeto com 'question' (texto)")
            continue
        if entry.get("improper") is True:
            left_out["pergunta marcada 'improper' pelos autores"] += 1
            continue
        gold = entry.get("golden_answer")
        references = tuple(g.strip() for g in gold.split("/") if g.strip()) if isinstance(gold, str) else ()
        for system in EVOUNA_SYSTEMS:
            verdict, answer = entry.get(f"judge_{system}"), entry.get(f"answer_{system}")
            if verdict is None:
                left_out["resposta sem julgamento humano (null)"] += 1
            elif not isinstance(verdict, bool):
                out.problems.append(f"{where}: judge_{system} deve ser true, false ou null (veio {verdict!r:.30})")
            elif not isinstance(answer, str) or not answer.strip():
                out.problems.append(f"{where}: judge_{system} sem answer_{system}")
            else:
                q = entry["question"].strip()
                out.items.append(
                    LabelledAnswer(
                        f"{number}:{system}",
                        len(out.items),
                        q,
                        _answer(q, answer.strip(), model=system),
                        yes if verdict else no,
                        references,
                        system,
                        number,
                    )
                )
    out.left_out = dict(left_out)
    return out


def _run_export(path: Path, data: dict[str, Any], scheme: LabelScheme) -> Dataset:
    out = Dataset(str(data.get("run") or path.stem), path, "run", [])
    unlabelled = 0
    for number, record in enumerate(data["records"], start=1):
        where = f"registro {number}"
        try:
            item = from_data(RunItem, {k: v for k, v in record.items() if k != "n"})
        except (ValueError, TypeError, AttributeError) as exc:
            out.problems.append(f"{where}: não é um registro de rodada ({str(exc).splitlines()[0][:80]})")
            continue
        label = manual_label(item)
        if label is None:
            unlabelled += 1
            continue
        code = scheme.resolve(label)
        if code is None:
            out.problems.append(f"{where}: rótulo '{label}' fora do esquema ({', '.join(scheme.codes)})")
            continue
        refs = (item.meta.answer,) if item.meta.answer else ()
        out.items.append(
            LabelledAnswer(item.qid, len(out.items), item.question, item.answer, code, refs, out.name, number)
        )
    if unlabelled:
        out.left_out = {"registro sem anotação manual": unlabelled}
    return out


def refuse_problems(dataset: Dataset) -> None:
    """Stop with every malformed row named (the first ten shown) unless there are none."""
    if not dataset.problems:
        return
    what = "linhas malformadas" if dataset.kind == "kamalloo" else "itens malformados"
    shown = "; ".join(dataset.problems[:_SHOWN_PROBLEMS])
    more = f" e mais {len(dataset.problems) - _SHOWN_PROBLEMS}" if len(dataset.problems) > _SHOWN_PROBLEMS else ""
    raise DatasetError(
        f"{dataset.path.name}: {len(dataset.problems)} {what}: {shown}{more}. Nada foi avaliado. Corrija o arquivo "
        "ou passe --skip-bad para avaliar só as linhas boas."
    )


# --------------------------------------------------------------------------- sampling


def sample(items: Sequence[LabelledAnswer], limit: int | None, seed: int) -> list[LabelledAnswer]:
    """``limit`` items drawn with ``seed`` (all without a limit), in the data set's order.

    The draw is a prefix of one fixed permutation, so a larger limit with the
    same seed keeps every item of the smaller one (and its stored verdicts).
    """
    if limit is None or limit >= len(items):
        return list(items)
    import numpy as np

    order = np.random.default_rng(seed).permutation(len(items))[:limit]
    return [items[i] for i in sorted(int(i) for i in order)]


def draw_order(items: Sequence[LabelledAnswer], seed: int) -> list[LabelledAnswer]:
    """The items in the order of the seed's permutation restricted to them (which to judge twice first)."""
    import numpy as np

    rank = {
        int(i): r for r, i in enumerate(np.random.default_rng(seed).permutation(max(i.position for i in items) + 1))
    }
    return sorted(items, key=lambda item: rank[item.position])


# --------------------------------------------------------------------------- file judge


def load_file_verdicts(path: Path, dataset: Dataset, scheme: LabelScheme) -> dict[str, Judgment]:
    """Verdicts computed elsewhere, by item id, as judgments of a judge named ``file:NAME``.

    Two layouts: a TSV laid out like the data set's (Kamalloo's
    ``NQ301_gpt-4.tsv``: same rows, ``Acceptable?`` holding the judge's
    verdict and the last column its text), matched row by row and checked to
    judge the same question and answer; or JSON Lines ``{"id", "label",
    "raw"}`` with the data set's item ids. A verdict that cannot be read is
    kept raw and counted as unparsed; a row that judges another answer is
    not used.
    """
    model = f"file:{path.name}"
    if not path.is_file():
        raise DatasetError(f"Arquivo de vereditos {path} não existe. Use --judge-llm file:CAMINHO com um arquivo.")
    rows = _tsv_verdicts(path, dataset) if path.suffix.lower() == ".tsv" else _jsonl_verdicts(path)
    out: dict[str, Judgment] = {}
    for item_id, value, raw in rows:
        label = scheme_label(value, scheme) if value else None
        error = "" if label else f"veredito ilegível no arquivo ({value[:30]!r}); guardado como veio"
        out[item_id] = Judgment("auto_label", label=label, reasoning=raw, raw=raw or value, parsed=bool(label),
                                error=error, model=model)  # fmt: skip
    return out


def _tsv_verdicts(path: Path, dataset: Dataset) -> Iterator[tuple[str, str, str]]:
    header, rows = _tsv_rows(path)
    missing = [c for c in KAMALLOO_COLUMNS if c not in header]
    if missing:
        raise DatasetError(f"{path.name}: faltam as colunas {', '.join(missing)} de um arquivo de vereditos TSV.")
    col = {name: header.index(name) for name in KAMALLOO_COLUMNS}
    by_line = {item.line: item for item in dataset.items}
    for line, cells in rows:
        item = by_line.get(line)
        if item is None or len(cells) != len(header):
            continue
        if (cells[col["Question"]].strip(), cells[col["Model answer"]].strip()) != (item.question, item.answer.text):
            continue  # this row judges another answer than the data set's row: its verdict is not for this item
        text = " ".join(c.strip() for c in cells[col["Acceptable?"] + 1 :] if c.strip())
        yield item.id, cells[col["Acceptable?"]].strip(), text


def _jsonl_verdicts(path: Path) -> Iterator[tuple[str, str, str]]:
    for number, line in enumerate(_read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            raise DatasetError(
                f"{path.name}, linha {number}: não é JSON. Cada linha: {{'id', 'label', 'raw'}}."
            ) from None
        if not isinstance(row, dict) or "id" not in row:
            raise DatasetError(f"{path.name}, linha {number}: falta 'id' (o id do item no conjunto de dados).")
        yield str(row["id"]), str(row.get("label") or "").strip(), str(row.get("raw") or "")


# --------------------------------------------------------------------------- calibration examples


def load_examples(path: Path, scheme: LabelScheme, scored: Sequence[LabelledAnswer]) -> tuple[LabelExample, ...]:
    """Labelled examples for the judge's prompt (JSON Lines ``{"question", "answer", "label", "references"?}``).

    An example must not be one of the items being scored, nor share a
    question with one: the judge would be shown the people's label for what
    it is asked to judge, and the agreement measured would be a leak.
    """
    if not path.is_file():
        raise DatasetError(f"Arquivo de exemplos {path} não existe.")
    scored_questions = {fold_text(item.question): item.id for item in scored}
    examples = []
    for number, line in enumerate(_read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path.name}, linha {number}"
        try:
            row = json.loads(line)
        except ValueError:
            raise DatasetError(f"{where}: não é JSON. Cada linha: {{'question', 'answer', 'label'}}.") from None
        if not isinstance(row, dict) or not all(isinstance(row.get(k), str) and row[k].strip()
                                                for k in ("question", "answer", "label")):  # fmt: skip
            raise DatasetError(f"{where}: precisa de 'question', 'answer' e 'label' (textos não vazios).")
        label = scheme_label(row["label"], scheme)
        if label is None:
            raise DatasetError(f"{where}: rótulo '{row['label']}' fora do esquema ({', '.join(scheme.codes)}).")
        clash = scored_questions.get(fold_text(row["question"]))
        if clash is not None:
            raise DatasetError(
                f"{where}: a pergunta do exemplo é a do item {clash}, que está sendo avaliado. Exemplos devem vir "
                "de fora dos itens avaliados (um conjunto de desenvolvimento); troque o exemplo ou mude --limit ou "
                "--sample-seed."
            )
        refs = row.get("references") or []
        examples.append(LabelExample(row["question"].strip(), row["answer"].strip(), label,
                                     tuple(str(r) for r in refs if str(r).strip())))  # fmt: skip
    if not examples:
        raise DatasetError(f"{path.name} não tem exemplos.")
    return tuple(examples)
