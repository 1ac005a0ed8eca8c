"""Each request's labels as one small code into its trace's table of distinct label combinations.

A trace of millions of requests holds a few dozen combinations of task, data class, residency, tenant and
SLO. Storing one integer per request and the combinations once (`label_sets`) writes one column where five
columns of repeated strings took most of a large import's time (see `store.m009_narrow_requests`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from slmlab.traces.labelling import LABEL_FIELDS
from slmlab.traces.staged import one_chunk


@dataclass(frozen=True)
class _Field:
    """One label field as codes 0..k-1 into its distinct values (-1 for NULL)."""

    codes: np.ndarray
    values: pa.Array

    @classmethod
    def of(cls, column: pa.ChunkedArray | pa.Array) -> _Field:
        """A dictionary column's codes are used as they are, without a copy; other columns are encoded."""
        if isinstance(column, pa.ChunkedArray):
            column = one_chunk(column)
        if pa.types.is_dictionary(column.type) and column.dictionary.null_count:
            column = column.dictionary_decode()
        if not pa.types.is_dictionary(column.type):
            column = pc.dictionary_encode(column)
        indices = column.indices.fill_null(-1) if column.indices.null_count else column.indices
        return cls(indices.to_numpy(zero_copy_only=False), column.dictionary)

    @property
    def radix(self) -> int:
        """Digit 0 is NULL, digits 1..k the values."""
        return len(self.values) + 1

    def decode(self, digits: np.ndarray) -> pa.Array:
        """The values of digits 1..k (NULL for 0)."""
        return self.values.take(pa.array(digits - 1, mask=digits == 0))


def _combined_key(fields: list[_Field], n: int) -> np.ndarray:
    """One int32 per request that differs exactly where some field differs: its digits, most significant
    first, are the fields' codes + 1. Computed in place (the caller checks that it fits)."""
    key = np.zeros(n, dtype=np.int32)
    for field in fields:
        key *= field.radix
        key += field.codes
        key += 1  # NULL (-1) becomes digit 0
    return key


def encode_label_sets(requests: pa.Table) -> tuple[np.ndarray, pa.Table]:
    """Per request, the number of its label combination; and each combination the trace uses, once.

    A combination's number is its key from `_combined_key` while that fits in an int32 (a few thousand for the
    synthetic labels), so the combinations are read off its digits; otherwise they are renumbered from 0.
    Fields a table lacks are NULL in every combination.
    """
    names = [f for f in LABEL_FIELDS if f in requests.column_names]
    fields = [_Field.of(requests.column(name)) for name in names]
    span = int(np.prod([f.radix for f in fields], dtype=object)) if fields else 1
    if span < (1 << 31):
        label_set = _combined_key(fields, requests.num_rows)
        used = (
            np.flatnonzero(np.bincount(label_set, minlength=span))
            if span <= max(4 * requests.num_rows, 1 << 16)
            else np.unique(label_set)
        )
        columns, rest = {}, used
        for name, field in reversed(list(zip(names, fields))):
            rest, digits = np.divmod(rest, field.radix)
            columns[name] = field.decode(digits)
        sets = pa.table({"label_set": pa.array(used, type=pa.int32())})
    else:  # too many distinct values to number by digits: renumber, and read each combination off one request
        combined = np.zeros(requests.num_rows, dtype=np.int64)
        for field in fields:
            _, combined = np.unique(combined * field.radix + field.codes.astype(np.int64) + 1, return_inverse=True)
        used, representatives, label_set = np.unique(combined, return_index=True, return_inverse=True)
        label_set = label_set.astype(np.int32)
        columns = {name: requests.column(name).take(pa.array(representatives)) for name in names}
        sets = pa.table({"label_set": pa.array(np.arange(len(used)), type=pa.int32())})
    for name in LABEL_FIELDS:
        if name in columns:
            values = columns[name]
            if pa.types.is_dictionary(values.type):
                values = values.cast(values.type.value_type)
        else:
            values = pa.nulls(len(sets), pa.float64() if name == "latency_slo_ms" else pa.string())
        sets = sets.append_column(name, values)
    return label_set, sets
