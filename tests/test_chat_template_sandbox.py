"""A GGUF whose chat template tries to run code must stay inert.

GGUF files carry a Jinja chat template (`tokenizer.chat_template`) that llama-cpp-python renders on every
`create_chat_completion`. Before llama-cpp-python 0.2.72 it was rendered with a plain `jinja2.Environment`, so a
downloaded model could run shell commands (CVE-2024-34359, "Llama Drama"). These tests build such poisoned
files from the shipped SmolLM2 GGUF and check that, with the installed llama-cpp-python, every payload is refused
(jinja2 SecurityError) or at least does nothing: no marker file, no attribute escape, no mutated input.

Each payload is also rendered in an unsandboxed environment as a control, so the tests prove the payloads
really do escape when nothing stops them (the tests can fail: swap the sandbox out and they do).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from pathlib import Path

import gguf
import jinja2
import jinja2.sandbox
import llama_cpp
import pytest
from jinja2.exceptions import SecurityError, UndefinedError
from llama_cpp import llama_chat_format

from slmlab.models import resolve_model

# Version that first renders GGUF chat templates in jinja2's ImmutableSandboxedEnvironment. Verified against
# llama-cpp-python's CHANGELOG.md, section "## [0.2.72]": "fix(security): Remote Code Execution by Server-Side
# Template Injection in Model Metadata by @retr0reg in b454f40a9a1787b2b5659cd2cb00819d983185df" and
# "fix(security): Update remaining jinja chat templates to use immutable sandbox by @CISC in #1441"
# (https://github.com/abetlen/llama-cpp-python/blob/main/CHANGELOG.md; the CVE is CVE-2024-34359).
FIRST_SANDBOXED = (0, 2, 72)

CHAT_TEMPLATE = gguf.Keys.Tokenizer.CHAT_TEMPLATE  # "tokenizer.chat_template"


def _mro_subclasses(marker: Path) -> str:
    # Walks str -> object -> every loaded class (subprocess.Popen among them): the classic escape's first step.
    return "{{ ''.__class__.__mro__[1].__subclasses__() }}{% for m in messages %}{{ m['content'] }}{% endfor %}"


def _cycler_popen(marker: Path) -> str:
    # jinja2.utils imports os; cycler.__init__.__globals__ reaches it, popen runs a shell command.
    return "{{ cycler.__init__.__globals__.os.popen('touch " + str(marker) + "').read() }}{{ messages[0]['content'] }}"


def _lipsum_popen(marker: Path) -> str:
    # The same through another default global, with item syntax instead of attribute syntax.
    return "{{ lipsum.__globals__['os'].popen('touch " + str(marker) + "').read() }}{{ messages[0]['content'] }}"


def _attr_filter(marker: Path) -> str:
    # The |attr filter is the usual way around a filter on dotted access.
    return "{{ ((''|attr('__class__')|attr('__mro__'))[1]|attr('__subclasses__'))() }}{{ messages[0]['content'] }}"


def _mutate_messages(marker: Path) -> str:
    # Not an escape but a side effect on the caller's data: only the *Immutable* sandbox refuses it.
    return "{{ messages.append({'role': 'system', 'content': 'injected'}) }}{{ messages[0]['content'] }}"


# How the sandbox refuses each payload. The |attr filter turns the unsafe '__class__' into an undefined value that
# carries the SecurityError; the next |attr('__mro__') on that undefined finds no such attribute and returns a plain
# undefined (jinja2.filters.do_attr), so indexing it ends in UndefinedError: refused all the same, earlier.
REFUSED_WITH: dict[str, tuple[type[Exception], ...]] = {"attr_filter": (SecurityError, UndefinedError)}

PAYLOADS: dict[str, Callable[[Path], str]] = {
    "mro_subclasses": _mro_subclasses,
    "cycler_popen": _cycler_popen,
    "lipsum_popen": _lipsum_popen,
    "attr_filter": _attr_filter,
    "mutate_messages": _mutate_messages,
}


def write_with_chat_template(reader: gguf.GGUFReader, target: Path, template: str) -> None:
    """Copy a parsed GGUF file with every KV field and tensor unchanged except `tokenizer.chat_template`.

    Same approach as gguf's own scripts/gguf_new_metadata.py (copy_with_new_metadata), without its progress bar.
    """
    arch = reader.get_field(gguf.Keys.General.ARCHITECTURE).contents()
    writer = gguf.GGUFWriter(target, arch=arch, endianess=reader.endianess)
    alignment = reader.get_field(gguf.Keys.General.ALIGNMENT)
    if alignment is not None:
        writer.data_alignment = alignment.contents()
    for field in reader.fields.values():
        # GGUF.* are virtual (header) fields and general.architecture is written by GGUFWriter itself
        if field.name == gguf.Keys.General.ARCHITECTURE or field.name.startswith("GGUF."):
            continue
        if field.name.startswith(CHAT_TEMPLATE):  # drop every original template (named ones too)
            continue
        val_type = field.types[0]
        sub_type = field.types[-1] if val_type == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(field.name, field.contents(), val_type, sub_type=sub_type)
    writer.add_key_value(CHAT_TEMPLATE, template, gguf.GGUFValueType.STRING)
    for tensor in reader.tensors:
        writer.add_tensor_info(
            tensor.name, tensor.data.shape, tensor.data.dtype, tensor.data.nbytes, tensor.tensor_type
        )
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    for tensor in reader.tensors:
        writer.write_tensor_data(tensor.data, tensor_endianess=reader.endianess)
    writer.close()


@pytest.fixture(scope="module")
def original() -> gguf.GGUFReader:
    """The shipped SmolLM2 GGUF, parsed once (parsing its 49k-token vocabulary takes seconds)."""
    return gguf.GGUFReader(resolve_model("smollm2-135m"))


@pytest.fixture(scope="module")
def poisoned(
    tmp_path_factory: pytest.TempPathFactory, original: gguf.GGUFReader
) -> Iterator[dict[str, tuple[Path, Path, str]]]:
    """Payload name -> (poisoned .gguf, marker file the payload tries to create, template text)."""
    files = {}
    for name, payload in PAYLOADS.items():
        folder = tmp_path_factory.mktemp(f"poisoned-{name}")
        marker = folder / "PWNED"
        template = payload(marker)
        write_with_chat_template(original, folder / f"smollm2-{name}.gguf", template)
        files[name] = (folder / f"smollm2-{name}.gguf", marker, template)
    yield files
    for path, _, _ in files.values():
        path.unlink(missing_ok=True)  # ~100 MB each; keep the temp folder small


def chain(error: BaseException) -> list[BaseException]:
    """The exception and everything it was raised from or during."""
    seen: list[BaseException] = []
    while error is not None and error not in seen:
        seen.append(error)
        error = error.__cause__ or error.__context__
    return seen


@pytest.mark.parametrize("name", sorted(PAYLOADS))
def test_payloads_escape_without_the_sandbox(name: str, tmp_path: Path) -> None:
    """Control: each payload really is dangerous when nothing stops it, so the checks below can fail."""
    marker = tmp_path / "PWNED"
    messages = [{"role": "user", "content": "hi"}]
    template = PAYLOADS[name](marker)
    if name == "mutate_messages":
        # the plain (mutable) sandbox still lets a template change the caller's list; the immutable one must not
        jinja2.sandbox.SandboxedEnvironment().from_string(template).render(messages=messages)
        assert len(messages) == 2
        return
    rendered = jinja2.Environment().from_string(template).render(messages=messages)
    if "popen" in name:
        assert marker.exists()
    else:
        assert "<class 'type'>" in rendered


def test_poisoned_file_is_the_original_with_a_new_template(
    poisoned: dict[str, tuple[Path, Path, str]], original: gguf.GGUFReader
) -> None:
    """The rewritten file is a valid GGUF: same fields and tensors, only the chat template differs."""
    path, _, template = poisoned["cycler_popen"]
    reader = gguf.GGUFReader(path)
    assert reader.get_field(CHAT_TEMPLATE).contents() == template
    assert original.get_field(CHAT_TEMPLATE).contents() != template
    assert set(reader.fields) == set(original.fields)
    for name in set(original.fields) - {CHAT_TEMPLATE, "GGUF.kv_count", "GGUF.tensor_count", "GGUF.version"}:
        assert reader.get_field(name).contents() == original.get_field(name).contents(), name
    assert [(t.name, t.tensor_type, t.n_bytes) for t in reader.tensors] == [
        (t.name, t.tensor_type, t.n_bytes) for t in original.tensors
    ]
    assert all(bytes(a.data.data) == bytes(b.data.data) for a, b in zip(reader.tensors, original.tensors))


@pytest.mark.model
@pytest.mark.parametrize("name", sorted(PAYLOADS))
def test_poisoned_chat_template_stays_inert(name: str, poisoned: dict[str, tuple[Path, Path, str]]) -> None:
    path, marker, template = poisoned[name]
    llm = llama_cpp.Llama(model_path=str(path), n_ctx=256, verbose=False)
    try:
        # the payload reached llama-cpp-python and is the template it will render (not a built-in format)
        assert llm.metadata[CHAT_TEMPLATE] == template
        assert llm.chat_format == "chat_template.default"
        messages = [{"role": "user", "content": "hi"}]
        try:
            response = llm.create_chat_completion(messages=messages, max_tokens=2)
        except Exception as error:
            refused_with = REFUSED_WITH.get(name, (SecurityError,))
            assert any(isinstance(e, refused_with) for e in chain(error)), (
                f"{name}: failed with {type(error).__name__}: {error}, not "
                f"{' or '.join(t.__name__ for t in refused_with)}"
            )
        else:
            assert response["choices"], f"{name}: rendered and returned nothing"
        assert not marker.exists(), f"{name}: the chat template ran a shell command"
        assert messages == [{"role": "user", "content": "hi"}], f"{name}: the chat template changed its input"

        # and the formatter llama-cpp-python builds for this template, called directly, shows no escape
        formatter = llama_chat_format.Jinja2ChatFormatter(
            template=llm.metadata[CHAT_TEMPLATE], eos_token="<|im_end|>", bos_token="<|im_start|>"
        )
        try:
            prompt = formatter(messages=messages).prompt
        except REFUSED_WITH.get(name, (SecurityError,)):
            pass
        else:
            assert "<class" not in prompt and "injected" not in prompt, f"{name}: escaped: {prompt[:200]}"
        assert not marker.exists()
        assert messages == [{"role": "user", "content": "hi"}]
    finally:
        llm.close()


def test_chat_formatter_uses_the_immutable_sandbox() -> None:
    """A downgrade (or a refactor back to jinja2.Environment) fails here before any payload is tried."""
    formatter = llama_chat_format.Jinja2ChatFormatter(
        template="{{ messages[0]['content'] }}", eos_token="", bos_token=""
    )
    compiled = getattr(formatter, "_environment", None)
    environment = getattr(compiled, "environment", compiled)  # a jinja2.Template keeps its Environment
    if isinstance(environment, jinja2.Environment):
        assert isinstance(environment, jinja2.sandbox.ImmutableSandboxedEnvironment), type(environment)
    else:  # the private attribute moved: fall back to the source
        source = inspect.getsource(llama_chat_format.Jinja2ChatFormatter)
        assert "ImmutableSandboxedEnvironment(" in source
        assert "jinja2.Environment(" not in source
    assert formatter(messages=[{"role": "user", "content": "hi"}]).prompt == "hi"


def test_llama_cpp_python_has_the_sandboxed_renderer() -> None:
    version = tuple(int(part) for part in llama_cpp.__version__.split(".")[:3] if part.isdigit())
    assert version >= FIRST_SANDBOXED, (
        f"llama-cpp-python {llama_cpp.__version__} predates 0.2.72, which renders GGUF chat templates unsandboxed "
        "(CVE-2024-34359)"
    )
