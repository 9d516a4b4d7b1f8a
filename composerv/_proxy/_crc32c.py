"""CRC32c (Castagnoli), the checksum of the PROXY v2 CRC32C TLV (RFC 4960, appendix B).

Headers are at most a few KiB and carry a checksum rarely, so a table-driven
pure-Python loop is fast enough and keeps composerv free of C dependencies.
"""

from __future__ import annotations

__all__ = ["crc32c", "header_checksum"]

# The Castagnoli polynomial 0x1EDC6F41, bit-reversed for the reflected algorithm.
_POLYNOMIAL = 0x82F63B78


def _make_table() -> tuple[int, ...]:
    table: list[int] = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ _POLYNOMIAL if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_TABLE = _make_table()


def crc32c(data: bytes) -> int:
    """The CRC32c of `data`, as an unsigned 32-bit int."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def header_checksum(header: bytes, value_start: int) -> int:
    """The checksum of a whole v2 `header` whose CRC32C value starts at `value_start`.

    The spec computes it with the 4 checksum bytes set to zero (section 2.2.3).
    """
    return crc32c(header[:value_start] + bytes(4) + header[value_start + 4 :])
