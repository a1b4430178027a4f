"""Terminal helpers for the importer management commands."""

import sys
from collections.abc import Iterable
from pathlib import Path

from tqdm import tqdm

# How many lines of a long list (rejected files or rows) a command prints before a count.
LIST_LIMIT = 20


def progress_bar(*, description: str, unit: str, total: int | None = None) -> tqdm:
    """Return a tqdm bar on stderr; it draws nothing when stderr is not a terminal."""
    return tqdm(total=total, desc=description, unit=unit, file=sys.stderr, disable=not sys.stderr.isatty())


def limited_lines(lines: Iterable[str], *, limit: int = LIST_LIMIT, indent: str = "  ") -> list[str]:
    """Return the first `limit` lines, indented, and one line counting the rest."""
    lines = list(lines)
    kept = [f"{indent}{line}" for line in lines[:limit]]
    if len(lines) > limit:
        kept.append(f"{indent}... and {len(lines) - limit} more")
    return kept


def optional_path(value: str | Path | None) -> Path | None:
    """Return an option as a Path: call_command passes keyword options without argparse's type."""
    return None if value is None else Path(value)
