"""Reading the markdown tables the leaderboards write, for tests that check their cells."""

from __future__ import annotations


def table_rows(page: str, header_word: str) -> list[dict[str, str]]:
    """The rows of the first table whose header line holds ``header_word``, as header -> cell dicts."""
    lines = page.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|") and header_word in line)
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.strip("|").split("|")])
    return [dict(zip(rows[0], r)) for r in rows[2:]]
