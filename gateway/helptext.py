"""Help a person reads: module docstrings without their reStructuredText markup."""

from __future__ import annotations

import re

_ROLE = re.compile(r":(?:mod|class|func|meth|attr|data|obj|exc|ref|doc):`~?([^`]+)`")


def plain(doc: str | None) -> str:
    """``doc`` for ``--help``: Sphinx roles become their target, double backquotes quotes,
    and a paragraph ending in ``::`` ends in ``:``."""
    text = _ROLE.sub(lambda m: m.group(1).rsplit(".", 1)[-1], doc or "")
    text = text.replace("``", "'")
    text = re.sub(r"::\n", ":\n", text)
    return text.strip()
