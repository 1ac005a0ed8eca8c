"""Each request's labels as one small code into its trace's table of distinct label combinations.

A trace of millions of requests holds a few dozen combinations of task, data class, residency, tenant and
SLO. Storing one integer per request and the combinations once (`label_sets`) writes one column where five
columns of repeated strings took most of a large import's time (see `store.m009_narrow_requests`).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from simulators.traces.labelling import LABEL_FIELDS

_MAX_KEY = 1 << 62  # a combined key past this is renumbered field by field (np.unique) so it never overflows


def _field_codes(column: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, int]:
    """A field as codes 0..k-1 into its distinct values (-1 for NULL), and k + 1; dictionary codes are used as
    they are, without a copy."""
    if isinstance(column, pa.ChunkedArray):
        column = column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()
    if pa.types.is_dictionary(column.type) and column.dictionary.null_count:
        column = column.dictionary_decode()
    if not pa.types.is_dictionary(column.type):
        column = pc.dictionary_encode(column)
    indices = column.indices.fill_null(-1) if column.indices.null_count else column.indices
    return indices.to_numpy(zero_copy_only=False), len(column.dictionary) + 1


def _combined_key(fields: list[tuple[np.ndarray, int]], n: int) -> tuple[np.ndarray, int]:
    """One integer per request that differs exactly where some field differs, and its range. In place, in the
    narrowest integer type that holds it: millions of requests take milliseconds."""
    span = int(np.prod([radix for _, radix in fields], dtype=object)) if fields else 1
    if span < _MAX_KEY:
        key = np.zeros(n, dtype=np.int32 if span < (1 << 31) else np.int64)
        for codes, radix in fields:
            key *= radix
            key += codes
            key += 1  # NULL (-1) becomes digit 0
        return key, span
    key, span = np.zeros(n, dtype=np.int64), 1
    for codes, radix in fields:
        if span * radix >= _MAX_KEY:
            _, key = np.unique(key, return_inverse=True)
            span = int(key.max(initial=0)) + 1
        key = key * radix + codes.astype(np.int64) + 1
        span *= radix
    return key, span


def encode_label_sets(requests: pa.Table) -> tuple[np.ndarray, pa.Table]:
    """Per request, the number of its label combination; and the combinations, numbered from 0.

    Fields a table lacks are NULL in every combination. A combination's values are read from any one of its
    requests (they all hold the same values), so a dictionary column's unused values never reach the table.
    """
    fields = [f for f in LABEL_FIELDS if f in requests.column_names]
    n = requests.num_rows
    key, span = _combined_key([_field_codes(requests.column(name)) for name in fields], n)
    if span <= max(4 * n, 1 << 16):  # a dense key: count and renumber in linear time
        used = np.flatnonzero(np.bincount(key, minlength=span))
        number = np.zeros(span, dtype=np.int32)
        number[used] = np.arange(len(used), dtype=np.int32)
        label_set = number[key]
        some_row = np.zeros(span, dtype=np.int64)
        some_row[key] = np.arange(n)
        representatives = some_row[used]
    else:
        _, representatives, label_set = np.unique(key, return_index=True, return_inverse=True)
        label_set = label_set.astype(np.int32)
    sets = pa.table({"label_set": pa.array(np.arange(len(representatives), dtype=np.int32))})
    for name in LABEL_FIELDS:
        if name in fields:
            values = requests.column(name).take(pa.array(representatives))
            if pa.types.is_dictionary(values.type):
                values = values.cast(values.type.value_type)
        else:
            values = pa.nulls(len(representatives), pa.float64() if name == "latency_slo_ms" else pa.string())
        sets = sets.append_column(name, values)
    return label_set, sets
