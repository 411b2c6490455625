"""Keep the documented outputs of commands that do not train equal to what the CLI prints now.

A page marks a block as a command's output with an HTML comment right before the fenced block:

    <!-- cli: list distance -->
    ```text
    $ lossbench list distance
    braycurtis  ...
    ```

This script runs `lossbench <args>` for every marked block (in-process, through typer's test runner, in an
empty temporary folder, 100 columns wide), and either rewrites the blocks (`--write`) or reports the blocks
that differ and exits 1 (the default; tests/test_docs.py runs it). Commands that would train are refused:
a marked `run` must be one that exits 2 (bad input). Paths of the temporary folder are shown as `results`.

    python scripts/docs_outputs.py [--write] [FILES...]   (default: README.md and docs/**/*.md)
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"(<!-- cli: (?P<args>.*?) -->\n```text\n)(?P<body>.*?)(```)", re.S)


def output(args: str) -> str:
    """`$ lossbench ARGS` and what it prints (stdout, then stderr), as a documented block's body."""
    from typer.testing import CliRunner

    from lossbench.cli import app

    argv = shlex.split(args)
    with tempfile.TemporaryDirectory() as folder:
        cwd = os.getcwd()
        os.chdir(folder)
        try:
            result = CliRunner().invoke(app, argv, env={"COLUMNS": "100", "TERMINAL_WIDTH": "100"},
                                        prog_name="lossbench")
        finally:
            os.chdir(cwd)
    if argv and argv[0] == "run" and "--help" not in argv and result.exit_code != 2:
        raise SystemExit(f"docs_outputs: 'lossbench {args}' is not a refused command (exit {result.exit_code}); "
                         "only outputs of commands that do not train are kept in step")
    text = (result.stdout or "") + (result.stderr or "")
    text = text.replace(folder, "results").replace(os.path.realpath(folder), "results")
    return f"$ lossbench {args}\n" + "\n".join(line.rstrip() for line in text.rstrip().splitlines()) + "\n"


def update(text: str) -> tuple[str, list[str]]:
    """The text with every marked block regenerated, and the commands whose blocks changed."""
    changed = []

    def regenerate(match: re.Match[str]) -> str:
        body = output(match["args"])
        if body != match["body"]:
            changed.append(match["args"])
        return match.group(1) + body + match.group(4)

    return BLOCK.sub(regenerate, text), changed


def pages(files: list[str]) -> list[Path]:
    """The files to check: the given ones, or README.md and every page under docs/."""
    return [Path(f).resolve() for f in files] if files else [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", action="store_true", help="rewrite the blocks instead of checking them")
    parser.add_argument("files", nargs="*")
    args = parser.parse_args()
    stale = []
    for page in pages(args.files):
        new, changed = update(page.read_text())
        if changed and args.write:
            page.write_text(new)
        stale += [f"{page.relative_to(ROOT)}: lossbench {c}" for c in changed]
    for line in stale:
        print(("rewrote " if args.write else "differs: ") + line)
    sys.exit(1 if stale and not args.write else 0)


if __name__ == "__main__":
    main()
