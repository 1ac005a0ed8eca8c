"""A bounded reader of GGUF headers: every declared count and length is checked against the bytes the file holds
before anything is read, so a hostile header cannot make it allocate, loop or seek past the end."""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

MAGIC = b"GGUF"
MAX_KEY_BYTES = 65_535  # the GGUF specification's limit on key length
MAX_TENSOR_DIMS = 4  # GGML_MAX_DIMS
MAX_ARRAY_NESTING = 8
MAX_KV_PAIRS = 1 << 20
MAX_TENSORS = 1 << 20
# value type -> (struct format, size); 8 = string, 9 = array
_SCALARS = {
    0: ("<B", 1),
    1: ("<b", 1),
    2: ("<H", 2),
    3: ("<h", 2),
    4: ("<I", 4),
    5: ("<i", 4),
    6: ("<f", 4),
    7: ("<?", 1),
    10: ("<Q", 8),
    11: ("<q", 8),
    12: ("<d", 8),
}
STRING, ARRAY = 8, 9


class HeaderError(ValueError):
    """The header is malformed or declares more than the file holds; the message says where."""


@dataclass(frozen=True)
class TensorInfo:
    """One tensor's entry in the header: name, shape, ggml type and offset into the data section."""

    name: str
    shape: tuple[int, ...]
    ggml_type: int
    offset: int


@dataclass(frozen=True)
class GGUFHeader:
    """The scalar and string metadata (arrays only as their length and item type), the tensor table and where
    the data section starts."""

    version: int
    fields: dict[str, object]
    arrays: dict[str, tuple[int, int]]  # key -> (item type, count)
    tensors: tuple[TensorInfo, ...]
    data_offset: int


class _Cursor:
    def __init__(self, handle: BinaryIO, size: int) -> None:
        self.handle, self.size, self.at = handle, size, 0

    def need(self, count: int, what: str) -> None:
        if count < 0 or count > self.size - self.at:
            raise HeaderError(
                f"{what} at byte {self.at:,} needs {count:,} bytes, but only {self.size - self.at:,} remain "
                f"of the file's {self.size:,}"
            )

    def read(self, count: int, what: str) -> bytes:
        self.need(count, what)
        data = self.handle.read(count)
        if len(data) != count:
            raise HeaderError(f"{what} at byte {self.at:,}: the file ended early")
        self.at += count
        return data

    def skip(self, count: int, what: str) -> None:
        self.need(count, what)
        self.handle.seek(count, io.SEEK_CUR)
        self.at += count

    def unpack(self, fmt: str, size: int, what: str) -> object:
        return struct.unpack(fmt, self.read(size, what))[0]

    def uint(self, fmt: str, size: int, what: str) -> int:
        """An unsigned count, type or offset: typed as int so bounds checks on it are checked too."""
        value = self.unpack(fmt, size, what)
        assert isinstance(value, int), f"{fmt} is not an integer format"
        return value

    def _length(self, what: str, limit: int | None) -> int:
        length = self.uint("<Q", 8, f"the length of {what}")
        if limit is not None and length > limit:
            raise HeaderError(f"{what} at byte {self.at:,} declares {length:,} bytes (at most {limit:,} allowed)")
        return length

    def skip_string(self, what: str) -> None:
        self.skip(self._length(what, None), what)

    def string(self, what: str, limit: int | None = None) -> str:
        length = self._length(what, limit)
        raw = self.read(length, what)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise HeaderError(f"{what} at byte {self.at - length:,} is not UTF-8") from error


def _min_size(value_type: int) -> int:
    if value_type in _SCALARS:
        return _SCALARS[value_type][1]
    if value_type == STRING:
        return 8
    if value_type == ARRAY:
        return 12
    raise HeaderError(f"unknown value type {value_type}")


def _skip_array(cursor: _Cursor, key: str, depth: int) -> tuple[int, int]:
    item_type = cursor.uint("<I", 4, f"the item type of array '{key}'")
    count = cursor.uint("<Q", 8, f"the length of array '{key}'")
    if item_type not in _SCALARS and item_type not in (STRING, ARRAY):
        raise HeaderError(f"array '{key}' has unknown item type {item_type}")
    cursor.need(count * _min_size(item_type), f"array '{key}' of {count:,} items")
    if item_type in _SCALARS:
        cursor.skip(count * _SCALARS[item_type][1], f"array '{key}'")
    elif item_type == STRING:
        for _ in range(count):
            cursor.skip_string(f"an item of array '{key}'")
    else:
        if depth >= MAX_ARRAY_NESTING:
            raise HeaderError(f"array '{key}' is nested more than {MAX_ARRAY_NESTING} levels deep")
        for _ in range(count):
            _skip_array(cursor, key, depth + 1)
    return item_type, count


def read_header(path: Path) -> GGUFHeader:
    """Parse and validate the header and tensor table of a GGUF file; HeaderError says what is wrong and where."""
    size = path.stat().st_size
    with path.open("rb", buffering=1 << 20) as handle:
        cursor = _Cursor(handle, size)
        magic = cursor.read(4, "the magic number") if size >= 4 else b""
        if magic != MAGIC:
            raise HeaderError(f"not a GGUF file (starts with {magic!r}, expected {MAGIC!r})")
        version = cursor.uint("<I", 4, "the version")
        if version not in (2, 3):
            raise HeaderError(f"GGUF version {version} is not supported (2 and 3 are)")
        tensor_count = cursor.uint("<Q", 8, "the tensor count")
        kv_count = cursor.uint("<Q", 8, "the metadata count")
        if kv_count > MAX_KV_PAIRS or tensor_count > MAX_TENSORS:
            raise HeaderError(
                f"declares {kv_count:,} metadata entries and {tensor_count:,} tensors "
                f"(at most {MAX_KV_PAIRS:,} of each are read)"
            )
        cursor.need(kv_count * 13 + tensor_count * 32, f"{kv_count:,} metadata entries and {tensor_count:,} tensors")
        fields: dict[str, object] = {}
        arrays: dict[str, tuple[int, int]] = {}
        for index in range(kv_count):
            key = cursor.string(f"metadata key {index}", limit=MAX_KEY_BYTES)
            if key in fields or key in arrays:
                raise HeaderError(f"metadata key '{key}' appears twice")
            value_type = cursor.uint("<I", 4, f"the type of '{key}'")
            if value_type in _SCALARS:
                fmt, width = _SCALARS[value_type]
                fields[key] = cursor.unpack(fmt, width, f"the value of '{key}'")
            elif value_type == STRING:
                fields[key] = cursor.string(f"the value of '{key}'")
            elif value_type == ARRAY:
                arrays[key] = _skip_array(cursor, key, 1)
            else:
                raise HeaderError(f"metadata '{key}' has unknown value type {value_type}")
        tensors = []
        for index in range(tensor_count):
            name = cursor.string(f"the name of tensor {index}", limit=MAX_KEY_BYTES)
            dims = cursor.uint("<I", 4, f"the dimension count of tensor '{name}'")
            if not 1 <= dims <= MAX_TENSOR_DIMS:
                raise HeaderError(f"tensor '{name}' declares {dims} dimensions (1 to {MAX_TENSOR_DIMS} allowed)")
            shape = struct.unpack(f"<{dims}Q", cursor.read(8 * dims, f"the shape of tensor '{name}'"))
            ggml_type = cursor.uint("<I", 4, f"the type of tensor '{name}'")
            offset = cursor.uint("<Q", 8, f"the offset of tensor '{name}'")
            tensors.append(TensorInfo(name, tuple(int(d) for d in shape), ggml_type, offset))
        alignment = fields.get("general.alignment", 32)
        if not isinstance(alignment, int) or alignment <= 0 or alignment & (alignment - 1):
            raise HeaderError(f"general.alignment is {alignment!r}, not a power of two")
        data_offset = cursor.at + (-cursor.at) % alignment
    return GGUFHeader(version, fields, arrays, tuple(tensors), data_offset)
