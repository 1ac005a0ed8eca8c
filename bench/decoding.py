"""Answer one request with a loaded model and say how sure it is, at the cost of plain greedy generation.

Confidence comes from the logits llama.cpp already computes for the position that picks the next token, so
`logits_all` stays off (turning it on copies a vocabulary-sized row for every prompt token):

- label-constrained classification walks a token trie of the label set; at each step the allowed tokens'
  logits are softmax-normalised among themselves, and the product along the chosen path is the probability of
  the chosen label under a distribution over the label set that sums to one;
- JSON-schema-constrained extraction uses a llama.cpp grammar; each generated token's log-probability under
  the unconstrained model is summed per top-level field (its value's tokens) and over the sequence; the
  answer's confidence is the product of the field confidences, the probability of the values it wrote;
- free (unconstrained) generation is greedy; its confidence is the sequence probability.

Requests share their instructions and worked examples, so the KV cache of the longest common token prefix
with the previous request is kept (after checking llama.cpp really dropped the rest) and only the new suffix is
evaluated. This changes speed, never the answer.
"""

from __future__ import annotations

import ctypes
import json
import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from llama_cpp import Llama

BUILTIN_TEMPLATES = {"gemma": "gemma", "gemma2": "gemma", "gemma3": "gemma", "phi3": "phi3", "qwen2": "chatml"}


class PromptTooLong(ValueError):
    """A prompt plus its answer would not fit in the context window."""


@dataclass(frozen=True)
class Answer:
    """A model's answer to one request, with its confidence and cost in tokens and time."""

    text: str
    output_tokens: int
    confidence: float  # probability of this answer (see the module docstring for what it is normalised over)
    logprob: float  # summed log-probability under the unconstrained model of the tokens the model chose (a label's
    # tokens forced by the label set, with no alternative, are not scored)
    prompt_tokens: int
    cached_tokens: int  # prompt tokens whose KV cache was reused from the previous request
    latency_ms: float
    field_confidence: dict[str, float] = field(default_factory=dict)


class LabelTrie:
    """The label set as a trie of token ids; `end` marks a label that is also the prefix of a longer one."""

    def __init__(self, sequences: dict[str, list[int]], end: int) -> None:
        if any(not tokens for tokens in sequences.values()):
            raise ValueError("a label tokenises to nothing")
        self.end = end
        self.root: dict = {}
        for label, tokens in sequences.items():
            node = self.root
            for token in tokens:
                node = node.setdefault(token, {})
            node.setdefault(end, {})["label"] = label  # type: ignore[index]
        self._arrays: dict[int, np.ndarray] = {}

    def choices(self, node: dict) -> np.ndarray:
        """Token ids allowed at a node (cached as an array)."""
        key = id(node)
        if key not in self._arrays:
            self._arrays[key] = np.fromiter((t for t in node if t != "label"), dtype=np.int64)
        return self._arrays[key]


_TOKEN_DATA = np.dtype([("id", np.int32), ("logit", np.float32), ("p", np.float32)], align=True)


class GrammarConstraint:
    """A llama.cpp grammar applied lazily: the greedy token is checked alone first, and only when the grammar
    rejects it is the whole vocabulary filtered (llama.cpp's own common sampler does the same). Same tokens as
    filtering every step, far less work on large vocabularies."""

    def __init__(self, llm: Llama, grammar) -> None:
        import llama_cpp

        self._api = llama_cpp
        self._sampler = llama_cpp.llama_sampler_init_grammar(
            llm._model.vocab, grammar._grammar.encode("utf-8"), grammar._root.encode("utf-8")
        )
        if not self._sampler:
            raise ValueError("llama.cpp could not parse the grammar")
        self._all = np.zeros(llm.n_vocab(), dtype=_TOKEN_DATA)
        self._all["id"] = np.arange(llm.n_vocab(), dtype=np.int32)
        self._one = np.zeros(1, dtype=_TOKEN_DATA)
        self.full_passes = 0  # how often the greedy token was rejected and the whole vocabulary filtered

    def _apply(self, candidates: np.ndarray) -> None:
        api = self._api
        view = api.llama_token_data_array(
            data=candidates.ctypes.data_as(api.llama_token_data_p), size=len(candidates), selected=-1, sorted=False
        )
        api.llama_sampler_apply(self._sampler, ctypes.byref(view))

    def pick(self, logits: np.ndarray) -> int:
        """The most probable token the grammar allows; the grammar advances past it."""
        token = int(logits.argmax())
        self._one["id"][0], self._one["logit"][0] = token, logits[token]
        self._apply(self._one)
        if not np.isfinite(self._one["logit"][0]):
            self.full_passes += 1
            self._all["logit"] = logits
            self._apply(self._all)
            token = int(self._all["logit"].argmax())
        self._api.llama_sampler_accept(self._sampler, token)
        return token

    def __del__(self) -> None:
        if getattr(self, "_sampler", None):
            self._api.llama_sampler_free(self._sampler)
            self._sampler = None


def _log_softmax_at(logits: np.ndarray, index: int) -> float:
    """log p(index) under the full distribution, computed in float64 for stability."""
    top = float(logits.max())
    return float(logits[index]) - top - math.log(float(np.exp(logits - top, dtype=np.float64).sum()))


def field_spans(text: str) -> dict[str, tuple[int, int]]:
    """Character span of each top-level value of the first JSON object in `text` (partial JSON gives fewer)."""
    decoder = json.JSONDecoder()
    spans: dict[str, tuple[int, int]] = {}
    i = text.find("{")
    if i < 0:
        return spans

    def skip(j: int) -> int:
        while j < len(text) and text[j] in " \t\r\n":
            j += 1
        return j

    i = skip(i + 1)
    try:
        while i < len(text) and text[i] != "}":
            key, i = decoder.raw_decode(text, i)
            i = skip(i)
            if text[i] != ":":
                break
            start = skip(i + 1)
            _, end = decoder.raw_decode(text, start)
            spans[str(key)] = (start, end)
            i = skip(end)
            if i < len(text) and text[i] == ",":
                i = skip(i + 1)
    except (json.JSONDecodeError, IndexError):
        pass
    return spans


class ModelSession:
    """One loaded model answering requests in turn, reusing the shared prompt prefix's KV cache."""

    def __init__(self, llm: Llama) -> None:
        import llama_cpp

        self.llm = llm
        self.vocab = llm.n_vocab()
        model = llm._model
        eot = model.token_eot()
        self.end_token = eot if eot >= 0 else llm.token_eos()
        self._vocab_ptr = llama_cpp.llama_model_get_vocab(model.model)
        self.bos = llm.token_bos()
        self.template, self.template_source = self._find_template()
        self._pieces: dict[int, bytes] = {}

    # prompt rendering ---------------------------------------------------------------------------------------
    def _find_template(self) -> tuple[bytes | None, str]:
        import llama_cpp

        own = llama_cpp.llama_model_chat_template(self.llm._model.model, None)
        if own:
            return own, "the model's own chat template (GGUF tokenizer.chat_template)"
        architecture = str(self.llm.metadata.get("general.architecture", ""))
        builtin = BUILTIN_TEMPLATES.get(architecture)
        if builtin:
            return builtin.encode(), f"llama.cpp's built-in '{builtin}' template (the GGUF has none)"
        return None, "plain text 'User:/Assistant:' (no chat template known for this model)"

    def render(self, user_message: str) -> str:
        """The chat prompt for one user turn, rendered by llama.cpp (no Jinja runs here)."""
        import llama_cpp

        if self.template is None:
            return f"User: {user_message}\nAssistant:"
        role, content = b"user", user_message.encode()
        messages = (llama_cpp.llama_chat_message * 1)(llama_cpp.llama_chat_message(role=role, content=content))
        size = len(content) * 2 + 512
        for _ in range(2):
            buffer = ctypes.create_string_buffer(size)
            written = llama_cpp.llama_chat_apply_template(self.template, messages, 1, True, buffer, size)
            if written < 0:
                self.template, self.template_source = None, "plain text (llama.cpp did not recognise the chat template)"
                return self.render(user_message)
            if written <= size:
                return buffer.raw[:written].decode("utf-8", errors="replace")
            size = written + 1
        raise RuntimeError("chat template output kept growing")

    def tokens(self, user_message: str) -> list[int]:
        """Token ids of the rendered prompt, with exactly one BOS where the model wants one."""
        tokens = self.llm.tokenize(self.render(user_message).encode(), add_bos=True, special=True)
        while len(tokens) > 1 and tokens[0] == self.bos and tokens[1] == self.bos:
            tokens = tokens[1:]
        return tokens

    def label_trie(self, labels: tuple[str, ...]) -> LabelTrie:
        """The label set as answer-token sequences, as the model would write them at the start of its turn."""
        return LabelTrie(
            {label: self.llm.tokenize(label.encode(), add_bos=False, special=False) for label in labels}, self.end_token
        )

    # decoding primitives ------------------------------------------------------------------------------------
    def feed(self, tokens: list[int], reserve: int) -> int:
        """Evaluate the prompt, reusing the cached common prefix; returns how many tokens were reused."""
        llm = self.llm
        if len(tokens) + reserve > llm.n_ctx():
            raise PromptTooLong(
                f"the prompt has {len(tokens):,} tokens and the answer may need {reserve:,} more, "
                f"but the context window is {llm.n_ctx():,} tokens"
            )
        previous = llm.input_ids[: llm.n_tokens]
        common = 0
        limit = min(len(previous), len(tokens) - 1)  # always evaluate at least one token to refresh the logits
        while common < limit and previous[common] == tokens[common]:
            common += 1
        if common == 0 or not llm._ctx.kv_cache_seq_rm(-1, common, -1):
            llm.reset()
            llm._ctx.kv_cache_clear()
            common = 0
        llm.n_tokens = common
        llm.eval(tokens[common:])
        return common

    def logits(self) -> np.ndarray:
        """The last evaluated position's logits, read in place (no copy of the vocabulary row)."""
        return np.ctypeslib.as_array(self.llm._ctx.get_logits(), shape=(self.vocab,))

    def piece(self, token: int) -> bytes:
        """The bytes a token stands for (cached)."""
        if token not in self._pieces:
            import llama_cpp

            buffer = ctypes.create_string_buffer(256)
            length = llama_cpp.llama_token_to_piece(self._vocab_ptr, token, buffer, 256, 0, False)
            self._pieces[token] = buffer.raw[: max(length, 0)]
        return self._pieces[token]

    # the three answering modes ------------------------------------------------------------------------------
    def classify(self, tokens: list[int], trie: LabelTrie) -> Answer:
        """The most probable label by greedy trie walk; confidence normalised over the label set."""
        started = time.perf_counter()
        cached = self.feed(tokens, reserve=64)
        node, constrained_logprob, raw_logprob, generated = trie.root, 0.0, 0.0, 0
        while True:
            allowed = trie.choices(node)
            if len(allowed) == 1:
                token = int(allowed[0])  # forced: probability 1 within the label set, no model call needed
            else:
                logits = self.logits()
                chosen = logits[allowed].astype(np.float64)
                top = chosen.max()
                log_probs = chosen - top - math.log(np.exp(chosen - top).sum())
                pick = int(log_probs.argmax())
                token = int(allowed[pick])
                constrained_logprob += float(log_probs[pick])
                raw_logprob += _log_softmax_at(logits, token)
            node = node[token]
            if token == trie.end:
                break
            generated += 1
            if set(node) == {trie.end}:  # the label is complete and nothing longer shares its tokens
                node = node[trie.end]
                break
            self.llm.eval([token])
        return Answer(
            text=node["label"],
            output_tokens=generated,
            confidence=math.exp(constrained_logprob),
            logprob=raw_logprob,
            prompt_tokens=len(tokens),
            cached_tokens=cached,
            latency_ms=(time.perf_counter() - started) * 1000,
        )

    def generate(
        self,
        tokens: list[int],
        max_tokens: int,
        *,
        grammar=None,
        stop_at_newline: bool = False,
        stop_after_json: bool = False,
    ) -> Answer:
        """Greedy generation, optionally under a llama.cpp grammar; per-token log-probabilities from the model."""
        import llama_cpp

        started = time.perf_counter()
        cached = self.feed(tokens, reserve=max_tokens)
        constraint = GrammarConstraint(self.llm, grammar) if grammar is not None else None
        out: list[int] = []
        logprobs: list[float] = []
        depth, in_string, escaped, opened = 0, False, False, False
        for _ in range(max_tokens):
            logits = self.logits()
            token = constraint.pick(logits) if constraint else int(logits.argmax())
            if llama_cpp.llama_vocab_is_eog(self._vocab_ptr, token):
                break
            logprobs.append(_log_softmax_at(logits, token))
            out.append(token)
            piece = self.piece(token)
            if stop_at_newline and b"\n" in piece and b"".join(self.piece(t) for t in out).strip():
                break
            if stop_after_json:
                for char in piece.decode("utf-8", errors="ignore"):
                    if in_string:
                        escaped, in_string = (False, in_string) if escaped else (char == "\\", char != '"')
                    elif char == '"':
                        in_string = True
                    elif char in "{[":
                        depth, opened = depth + 1, True
                    elif char in "}]":
                        depth -= 1
                if opened and depth <= 0:
                    break
            self.llm.eval([token])
        raw = b"".join(self.piece(t) for t in out)
        text = raw.decode("utf-8", errors="replace")
        total = sum(logprobs)
        fields = self._field_confidence(out, logprobs, text) if stop_after_json else {}
        # JSON: the probability of the values written (keys and punctuation are not the answer); else the sequence's
        confidence = math.prod(fields.values()) if fields else math.exp(total)
        return Answer(
            text=text.strip(),
            output_tokens=len(out),
            confidence=confidence,
            logprob=total,
            prompt_tokens=len(tokens),
            cached_tokens=cached,
            latency_ms=(time.perf_counter() - started) * 1000,
            field_confidence=fields,
        )

    def _field_confidence(self, out: list[int], logprobs: list[float], text: str) -> dict[str, float]:
        """exp(sum of log-probabilities) of the tokens that overlap each top-level JSON value."""
        spans = field_spans(text)
        if not spans:
            return {}
        ends, position = [], 0
        for token in out:
            position += len(self.piece(token))
            ends.append(position)
        encoded_offsets = {}
        for name, (start, end) in spans.items():
            encoded_offsets[name] = (
                len(text[:start].encode("utf-8", errors="replace")),
                len(text[:end].encode("utf-8", errors="replace")),
            )
        result = {}
        for name, (start, end) in encoded_offsets.items():
            total, token_start = 0.0, 0
            for token_end, logprob in zip(ends, logprobs):
                if token_end > start and token_start < end:
                    total += logprob
                token_start = token_end
            result[name] = math.exp(total)
        return result
