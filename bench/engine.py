"""llama.cpp driven the way its own tools drive it, through llama-cpp-python's low-level bindings.

`slmlab bench` must give the figures llama-bench gives. The high-level `Llama` object costs speed in ways that
have nothing to do with the model: its context defaults differ from llama-bench's (flash attention off where
llama-bench uses `auto`, a full-size sliding-window cache), and every `eval` refills its batch token by token in
Python and trims the KV cache. `Engine` instead builds the context with llama-bench's parameters, keeps one
`llama_batch` whose arrays are numpy buffers (filled with slice assignments, no per-token Python), asks for
logits only where a token will be picked, and calls `llama_decode` directly. The same engine serves one
sequence (`bench.runner`) or many sequences in one context (`bench.batched`).
"""

from __future__ import annotations

import ctypes
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

FLASH_ATTN = ("auto", "on", "off")
KV_TYPES = ("f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "iq4_nl")


class EngineError(RuntimeError):
    """llama.cpp refused: the model did not load, the context could not be made, or a decode failed."""


class KVCacheFull(EngineError):
    """llama_decode found no room in the KV cache for the batch (return code 1)."""


@dataclass(frozen=True)
class EngineConfig:
    """llama.cpp context settings, defaulting to llama-bench's (`llama-bench -h` shows the same defaults)."""

    n_ctx: int
    threads: int
    n_batch: int = 2048
    n_ubatch: int = 512
    n_seq_max: int = 1
    n_gpu_layers: int = 0
    flash_attn: str = "auto"
    type_k: str = "f16"
    type_v: str = "f16"
    kv_unified: bool = False

    def __post_init__(self) -> None:
        if min(self.n_ctx, self.threads, self.n_batch, self.n_ubatch, self.n_seq_max) < 1:
            raise ValueError("n_ctx, threads, n_batch, n_ubatch and n_seq_max must be at least 1")
        if self.n_seq_max > self.n_batch:
            raise ValueError(
                f"n_seq_max ({self.n_seq_max}) cannot exceed n_batch ({self.n_batch}): one decode step "
                "holds a token of every sequence"
            )
        if self.flash_attn not in FLASH_ATTN:
            raise ValueError(f"flash_attn must be one of {', '.join(FLASH_ATTN)}")
        for name in ("type_k", "type_v"):
            if getattr(self, name) not in KV_TYPES:
                raise ValueError(f"{name} must be one of {', '.join(KV_TYPES)}")

    def as_dict(self) -> dict[str, object]:
        """JSON-ready."""
        return asdict(self)


def _flash_attn_type(api, name: str) -> int:
    return {
        "auto": api.LLAMA_FLASH_ATTN_TYPE_AUTO,
        "on": api.LLAMA_FLASH_ATTN_TYPE_ENABLED,
        "off": api.LLAMA_FLASH_ATTN_TYPE_DISABLED,
    }[name]


_quiet_logger = None


def _silence(api) -> None:
    """Route llama.cpp's log lines to nowhere (the worker's stderr would otherwise fill with load chatter)."""
    global _quiet_logger
    if _quiet_logger is None:
        _quiet_logger = api.llama_log_callback(lambda level, text, user_data: None)
        api.llama_log_set(_quiet_logger, ctypes.c_void_p(0))


class Engine:
    """One model and one context; `decode` takes numpy arrays of tokens, positions, sequence ids, logit flags."""

    def __init__(self, model_path: str | Path, config: EngineConfig, *, quiet: bool = True) -> None:
        import llama_cpp as api

        self.api, self.config = api, config
        if quiet:
            _silence(api)
        api.llama_backend_init()
        model_params = api.llama_model_default_params()
        model_params.n_gpu_layers = config.n_gpu_layers
        self.model = api.llama_model_load_from_file(str(model_path).encode(), model_params)
        if not self.model:
            raise EngineError(f"llama.cpp could not load {model_path}")
        params = api.llama_context_default_params()
        params.n_ctx, params.n_batch, params.n_ubatch = config.n_ctx, config.n_batch, config.n_ubatch
        params.n_seq_max = config.n_seq_max
        params.n_threads = params.n_threads_batch = config.threads
        params.flash_attn_type = _flash_attn_type(api, config.flash_attn)
        params.type_k = int(getattr(api, f"GGML_TYPE_{config.type_k.upper()}"))
        params.type_v = int(getattr(api, f"GGML_TYPE_{config.type_v.upper()}"))
        params.swa_full = False  # llama-bench's choice; the default (full-size sliding-window cache) costs memory
        params.kv_unified = config.kv_unified
        params.no_perf = False
        self.ctx = api.llama_init_from_model(self.model, params)
        if not self.ctx:
            api.llama_model_free(self.model)
            self.model = None
            raise EngineError(
                f"llama.cpp could not create a context of {config.n_ctx:,} cells for "
                f"{config.n_seq_max} sequence(s) (not enough memory?)"
            )
        self.memory = api.llama_get_memory(self.ctx)
        self.n_vocab = api.llama_vocab_n_tokens(api.llama_model_get_vocab(self.model))
        self.n_ctx = api.llama_n_ctx(self.ctx)
        capacity = config.n_batch  # llama_decode takes at most n_batch tokens a call
        # The batch's arrays are numpy buffers: a whole prompt or a whole decode step is two slice assignments.
        self.tokens = np.zeros(capacity, dtype=np.int32)
        self.positions = np.zeros(capacity, dtype=np.int32)
        self.n_seq_id = np.ones(capacity, dtype=np.int32)
        self.seq_ids = np.zeros(capacity, dtype=np.int32)
        self.want_logits = np.zeros(capacity, dtype=np.int8)
        seq_pointers = (ctypes.POINTER(ctypes.c_int32) * capacity)()
        base = self.seq_ids.ctypes.data
        for i in range(capacity):
            seq_pointers[i] = ctypes.cast(base + 4 * i, ctypes.POINTER(ctypes.c_int32))
        self._seq_pointers = seq_pointers
        self.batch = api.llama_batch(
            n_tokens=0,
            token=self.tokens.ctypes.data_as(ctypes.POINTER(ctypes.c_int32)),
            embd=None,
            pos=self.positions.ctypes.data_as(ctypes.POINTER(ctypes.c_int32)),
            n_seq_id=self.n_seq_id.ctypes.data_as(ctypes.POINTER(ctypes.c_int32)),
            seq_id=ctypes.cast(seq_pointers, ctypes.POINTER(ctypes.POINTER(ctypes.c_int32))),
            logits=self.want_logits.ctypes.data_as(ctypes.POINTER(ctypes.c_int8)),
        )
        self.capacity = capacity
        self._one = (ctypes.c_int32 * 1)()

    # lifecycle ----------------------------------------------------------------------------------------------
    def close(self) -> None:
        """Free the context and the model (idempotent)."""
        if getattr(self, "ctx", None):
            self.api.llama_free(self.ctx)
            self.ctx = None
        if getattr(self, "model", None):
            self.api.llama_model_free(self.model)
            self.model = None

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()

    # KV cache -----------------------------------------------------------------------------------------------
    def clear(self) -> None:
        """Empty the KV cache of every sequence."""
        self.api.llama_memory_clear(self.memory, False)

    def drop(self, seq: int, start: int = 0) -> None:
        """Forget sequence `seq`'s cached positions from `start` on (frees its cells for another sequence)."""
        if not self.api.llama_memory_seq_rm(self.memory, seq, start, -1):
            raise EngineError(f"llama.cpp could not remove positions {start}.. of sequence {seq}")

    def next_position(self, seq: int = 0) -> int:
        """The first free position of a sequence (0 when it holds nothing)."""
        return int(self.api.llama_memory_seq_pos_max(self.memory, seq)) + 1

    # decoding -----------------------------------------------------------------------------------------------
    def _run(self, n: int) -> None:
        self.batch.n_tokens = n
        code = self.api.llama_decode(self.ctx, self.batch)
        if code == 1:
            raise KVCacheFull(f"no room in the KV cache ({self.n_ctx:,} cells) for a batch of {n} tokens")
        if code != 0:
            raise EngineError(f"llama_decode returned {code}")

    def decode(self, tokens: np.ndarray, positions: np.ndarray, seqs: np.ndarray, logits: np.ndarray) -> None:
        """One llama_decode of up to n_batch tokens; `logits` marks the tokens whose next-token logits are kept."""
        n = len(tokens)
        if not 0 < n <= self.capacity:
            raise ValueError(f"a batch holds 1..{self.capacity} tokens, got {n}")
        self.tokens[:n] = tokens
        self.positions[:n] = positions
        self.seq_ids[:n] = seqs
        self.want_logits[:n] = logits
        self._run(n)

    def prompt(self, tokens: np.ndarray, seq: int = 0, start: int = 0) -> None:
        """Evaluate one sequence's prompt in n_batch chunks, logits only for its last token."""
        n_batch = self.config.n_batch
        for offset in range(0, len(tokens), n_batch):
            chunk = tokens[offset : offset + n_batch]
            n = len(chunk)
            self.tokens[:n] = chunk
            self.positions[:n] = np.arange(start + offset, start + offset + n, dtype=np.int32)
            self.seq_ids[:n] = seq
            self.want_logits[:n] = 0
            self.want_logits[n - 1] = offset + n == len(tokens)
            self._run(n)

    def step(self, token: int, position: int, seq: int = 0) -> None:
        """Decode one token of one sequence, keeping its logits."""
        self.tokens[0], self.positions[0], self.seq_ids[0], self.want_logits[0] = token, position, seq, 1
        self._run(1)

    def synchronize(self) -> None:
        """Wait for the backend (GPU backends return from decode early)."""
        self.api.llama_synchronize(self.ctx)

    def logits(self, index: int = -1) -> np.ndarray:
        """Next-token logits of one output of the last decode (-1: the last), read in place."""
        pointer = self.api.llama_get_logits_ith(self.ctx, index)
        if not pointer:
            raise EngineError(f"no logits for output {index} of the last batch")
        return np.ctypeslib.as_array(pointer, shape=(self.n_vocab,))

    def all_logits(self, n_outputs: int) -> np.ndarray:
        """The last decode's logits for its `n_outputs` outputs, as an (n_outputs, vocab) view."""
        return np.ctypeslib.as_array(self.api.llama_get_logits(self.ctx), shape=(n_outputs, self.n_vocab))

    def greedy(self, index: int = -1) -> int:
        """The most probable next token after one output of the last decode."""
        return int(self.logits(index).argmax())

    def perf(self) -> dict[str, float]:
        """llama.cpp's own counters since the last reset (a cross-check of Python-side timing)."""
        counters = self.api.llama_perf_context(self.ctx)
        return {
            "t_p_eval_ms": counters.t_p_eval_ms,
            "n_p_eval": counters.n_p_eval,
            "t_eval_ms": counters.t_eval_ms,
            "n_eval": counters.n_eval,
            "graphs_reused": counters.n_reused,
        }

    def perf_reset(self) -> None:
        self.api.llama_perf_context_reset(self.ctx)
