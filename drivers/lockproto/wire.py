"""Little-endian field readers and writers shared by every layer of the protocol."""

from __future__ import annotations

from drivers.lockproto.errors import DecodeError


class Reader:
    """Reads fields off a byte string; any overrun raises :class:`DecodeError`."""

    __slots__ = ("_data", "_pos")

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def raw(self, n: int) -> bytes:
        end = self._pos + n
        if n < 0 or end > len(self._data):
            raise DecodeError(f"needs {n} bytes at offset {self._pos}, has {self.remaining}")
        chunk = self._data[self._pos : end]
        self._pos = end
        return chunk

    def _int(self, n: int) -> int:
        return int.from_bytes(self.raw(n), "little")

    def u8(self) -> int:
        return self._int(1)

    def u16(self) -> int:
        return self._int(2)

    def u32(self) -> int:
        return self._int(4)

    def u64(self) -> int:
        return self._int(8)

    def bytes8(self, limit: int = 255) -> bytes:
        n = self.u8()
        if n > limit:
            raise DecodeError(f"field of {n} bytes over its limit of {limit}")
        return self.raw(n)

    def str8(self, limit: int = 255) -> str:
        try:
            return self.bytes8(limit).decode("utf-8")
        except UnicodeDecodeError as err:
            raise DecodeError("text field is not UTF-8") from err

    def rest(self) -> bytes:
        return self.raw(self.remaining)

    @property
    def remaining(self) -> int:
        return len(self._data) - self._pos

    def end(self) -> None:
        if self.remaining:
            raise DecodeError(f"{self.remaining} trailing bytes")


class Writer:
    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = bytearray()

    def raw(self, data: bytes) -> Writer:
        self._buf += data
        return self

    def _int(self, value: int, n: int) -> Writer:
        self._buf += value.to_bytes(n, "little")
        return self

    def u8(self, value: int) -> Writer:
        return self._int(value, 1)

    def u16(self, value: int) -> Writer:
        return self._int(value, 2)

    def u32(self, value: int) -> Writer:
        return self._int(value, 4)

    def u64(self, value: int) -> Writer:
        return self._int(value, 8)

    def bytes8(self, data: bytes) -> Writer:
        if len(data) > 255:
            raise ValueError(f"field of {len(data)} bytes does not fit a one-byte length")
        self._buf.append(len(data))
        self._buf += data
        return self

    def str8(self, text: str) -> Writer:
        return self.bytes8(text.encode("utf-8"))

    def __len__(self) -> int:
        return len(self._buf)

    def getvalue(self) -> bytes:
        return bytes(self._buf)
