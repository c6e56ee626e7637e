"""Narration rows for a terminal of a given width: wrapped, never cut.

Prose wraps at spaces with its continuation rows indented. A shell command (:class:`Paste`)
wraps between its words with a ``\\`` at the end of each row but the last, so that the rows,
selected and pasted into a shell, run as the one command: the shell drops each
backslash-newline, and the indentation of the next row is only space between words.
"""

from __future__ import annotations

import re
import textwrap

CONTINUED = " \\"
# A word of ``shlex.join``'s output: unquoted characters and '...' runs, up to a space.
_WORD = re.compile(r"(?:[^\s']+|'[^']*')+")


class Paste(str):
    """A line meant to be pasted into a shell: wrapped as a command, never cut."""

    __slots__ = ()


def wrap_prose(text: str, width: int, indent: int) -> list[str]:
    """``text`` in rows of at most ``width`` characters; rows after the first indented."""
    rows = textwrap.wrap(
        text,
        width=max(width, indent + 8),
        subsequent_indent=" " * indent,
        break_on_hyphens=False,
    )
    return rows or [""]


def wrap_command(lead: str, command: str, width: int, indent: int) -> list[str]:
    """``lead`` then ``command`` in rows of at most ``width`` characters.

    Rows break between words, each row but the last ends with `` \\``, and the next one starts
    ``indent`` spaces in. A word longer than a row is broken inside with a ``\\`` and goes on
    at column 0 (an indentation there would become part of the word), unless it is quoted (a
    backslash-newline is kept inside quotes): that row is left longer than ``width``.
    """
    rows: list[str] = []
    row, has_word = lead, False
    for word in _WORD.findall(command):
        sep = " " if has_word else ""
        if len(row) + len(sep) + len(word) + len(CONTINUED) <= width:
            row, has_word = row + sep + word, True
            continue
        if has_word:
            rows.append(row + CONTINUED)
            row, has_word = " " * indent, False
            if len(row) + len(word) + len(CONTINUED) <= width:
                row, has_word = row + word, True
                continue
        if "'" in word:
            row, has_word = row + word, True
            continue
        room = max(1, width - len(row) - 1)
        rows.append(row + word[:room] + "\\")
        rest = word[room:]
        while len(rest) + len(CONTINUED) > width:
            rows.append(rest[: width - 1] + "\\")
            rest = rest[width - 1 :]
        row, has_word = rest, True
    rows.append(row)
    return rows


def narration_rows(lead: str, text: str, width: int) -> list[str]:
    """One line of the story after its ``lead`` (the time), in rows that fit ``width``;
    continuation rows start under the text. The last column stays free: a row that fills it
    would leave some terminals about to wrap."""
    indent = len(lead)
    if isinstance(text, Paste):
        command = text.lstrip()
        return wrap_command(lead + text[: len(text) - len(command)], command, width - 1, indent)
    return wrap_prose(lead + text, width - 1, indent)
