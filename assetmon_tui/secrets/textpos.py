"""Byte offsets in UTF-8 text to 1-based (line, column) in characters."""

from __future__ import annotations


def positions(data: bytes, offsets: list[int]) -> list[tuple[int, int, int]]:
    """(line, column, character offset) for each byte offset in `offsets`,
    which must be sorted and fall on character boundaries. One pass over
    the data in total, however many offsets there are."""
    ascii_only = data.isascii()
    out = []
    line, cursor = 1, 0
    col_pos, col = 0, 1  # last (byte offset, column) on the current line
    char_pos, char_off = 0, 0  # last (byte offset, character offset)
    for pos in offsets:
        newlines = data.count(b"\n", cursor, pos)
        if newlines:
            line += newlines
            col_pos, col = data.rfind(b"\n", cursor, pos) + 1, 1
        cursor = pos
        if ascii_only:
            col += pos - col_pos
            char_off = pos
        else:
            col += len(data[col_pos:pos].decode("utf-8", "replace"))
            char_off += len(data[char_pos:pos].decode("utf-8", "replace"))
        col_pos = char_pos = pos
        out.append((line, col, char_off))
    return out
