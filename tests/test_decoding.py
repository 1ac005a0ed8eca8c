"""Answering with confidence on the real SmolLM2: the label distribution is a distribution, the prefix cache
changes speed and never answers, and JSON-constrained output always parses."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from llama_cpp import LlamaGrammar

from bench.decoding import LabelTrie, ModelSession, PromptTooLong, field_spans
from bench.tasks import get_task
from bench.tasks.invoices import SCHEMA, valid_against_schema

LABELS = ("card arrival", "card linking", "exchange rate", "cash withdrawal charge", "card")  # "card" is a prefix


@pytest.fixture(scope="module")
def session(smollm2_llama) -> ModelSession:
    return ModelSession(smollm2_llama)


def _label_probabilities(session: ModelSession, tokens: list[int], trie: LabelTrie) -> dict[str, float]:
    """Every label's probability under the trie-normalised distribution, by walking each path (slow, exact)."""
    out = {}
    for label, sequence in ((lab, session.llm.tokenize(lab.encode(), add_bos=False, special=False)) for lab in LABELS):
        session.feed(tokens, reserve=16)
        node, logprob = trie.root, 0.0
        for token in [*sequence, trie.end]:
            allowed = trie.choices(node)
            if len(allowed) > 1:
                chosen = session.logits()[allowed].astype(np.float64)
                logprob += (
                    chosen[list(allowed).index(token)] - chosen.max() - math.log(np.exp(chosen - chosen.max()).sum())
                )
            node = node[token]
            if token != trie.end and len(trie.choices(node)) > 0 and set(node) != {trie.end}:
                session.llm.eval([token])
            if set(node) == {trie.end} or token == trie.end:
                break
        out[label] = math.exp(logprob)
    return out


def test_label_confidence_is_a_probability_over_the_label_set(session: ModelSession) -> None:
    trie = session.label_trie(LABELS)
    tokens = session.tokens(
        "Which topic is this message about? Options: "
        + ", ".join(LABELS)
        + "\n\nMessage: when will my new card get here?"
    )
    answer = session.classify(tokens, trie)
    probabilities = _label_probabilities(session, tokens, trie)
    assert answer.text in LABELS
    assert sum(probabilities.values()) == pytest.approx(1.0, abs=1e-6)
    assert answer.confidence == pytest.approx(probabilities[answer.text], rel=1e-4)
    assert answer.logprob < 0 and answer.prompt_tokens == len(tokens)


@pytest.mark.slow
def test_prefix_cache_changes_speed_not_answers(session: ModelSession) -> None:
    task = get_task("banking77")
    trie = session.label_trie(task.display_labels("words"))
    examples = task.examples("test")[:40:8]
    warm = [session.classify(session.tokens(task.prompt(e, [], "words")), trie) for e in examples]
    cold = []
    for e in examples:
        session.llm.reset()
        cold.append(session.classify(session.tokens(task.prompt(e, [], "words")), trie))
    assert all(w.cached_tokens > 300 for w in warm[1:]) and all(c.cached_tokens == 0 for c in cold)
    assert [w.text for w in warm] == [c.text for c in cold]
    assert [w.confidence for w in warm] == pytest.approx([c.confidence for c in cold], rel=1e-3)


@pytest.mark.slow
def test_json_schema_constrained_extraction_always_parses(session: ModelSession) -> None:
    task = get_task("invoices")
    grammar = LlamaGrammar.from_json_schema(json.dumps(SCHEMA), verbose=False)
    for example in task.examples("test")[:2]:
        answer = session.generate(session.tokens(task.prompt(example, [])), 512, grammar=grammar, stop_after_json=True)
        value = json.loads(answer.text)
        assert valid_against_schema(value)
        assert set(answer.field_confidence) == set(SCHEMA["required"])
        assert all(0.0 <= c <= 1.0 for c in answer.field_confidence.values())
        assert answer.confidence == pytest.approx(math.prod(answer.field_confidence.values()))
        assert math.exp(answer.logprob) <= answer.confidence  # the sequence also pays for keys and punctuation


def test_free_generation_stops_at_the_end_of_the_line(session: ModelSession) -> None:
    answer = session.generate(session.tokens("Say hello in one short line."), 24, stop_at_newline=True)
    assert "\n" not in answer.text and 0 < answer.output_tokens <= 24 and 0 < answer.confidence <= 1


def test_a_prompt_longer_than_the_context_is_refused(session: ModelSession) -> None:
    with pytest.raises(PromptTooLong, match="context window is 4,096 tokens"):
        session.feed(list(range(100, 4200)), reserve=8)


def test_chat_template_is_rendered_by_llama_cpp(session: ModelSession) -> None:
    assert session.render("hi") == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    assert "own chat template" in session.template_source


@pytest.mark.parametrize(
    "text, spans",
    [
        ('{"a": 1, "b": "x"}', {"a": (6, 7), "b": (14, 17)}),
        ('noise {"a": [1, 2]} tail', {"a": (12, 18)}),
        ('{"a": 1, "b": tru', {"a": (6, 7)}),
        ("no json", {}),
    ],
)
def test_field_spans(text: str, spans: dict[str, tuple[int, int]]) -> None:
    assert field_spans(text) == spans


@pytest.mark.slow
def test_lazy_grammar_check_picks_what_filtering_every_step_picks(session: ModelSession) -> None:
    from llama_cpp._internals import LlamaSampler

    from bench.decoding import GrammarConstraint

    task = get_task("invoices")
    grammar = LlamaGrammar.from_json_schema(json.dumps(SCHEMA), verbose=False)
    tokens = session.tokens(task.prompt(task.examples("test")[3], []))
    picks = {}
    for name in ("lazy", "every step"):
        session.llm.reset()
        session.feed(tokens, reserve=80)
        chain = LlamaSampler()
        chain.add_grammar(session.llm._model, grammar)
        chain.add_greedy()
        lazy = GrammarConstraint(session.llm, grammar)
        out = []
        for _ in range(60):
            token = lazy.pick(session.logits()) if name == "lazy" else chain.sample(session.llm._ctx, -1)
            out.append(token)
            session.llm.eval([token])
        picks[name] = out
        if name == "lazy":
            assert 0 < lazy.full_passes < 60  # the shortcut is taken, and the full filter is still needed sometimes
    assert picks["lazy"] == picks["every step"]
