"""Rewrite the column reference in docs/schema.md (between the schema markers) from lossbench/schema.py."""

from __future__ import annotations

import re
from pathlib import Path

from lossbench.schema import markdown
from lossbench.tasks import AlgorithmicClassification, Classification, LanguageModeling

PAGE = Path(__file__).resolve().parents[1] / "docs" / "schema.md"
START, END = "<!-- schema:start -->", "<!-- schema:end -->"


def main() -> None:
    """Replace the text between the markers with the generated tables."""
    text = PAGE.read_text()
    body = markdown([Classification, AlgorithmicClassification, LanguageModeling])
    PAGE.write_text(re.sub(re.escape(START) + ".*?" + re.escape(END), lambda _: f"{START}\n{body}{END}", text,
                             flags=re.S))


if __name__ == "__main__":
    main()
