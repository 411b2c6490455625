"""The documentation is checked against the code: every documented output of a command that does not train
equals what the CLI prints now (scripts/docs_outputs.py), and the marked blocks exist where the docs
promise them."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("docs_outputs", ROOT / "scripts" / "docs_outputs.py")
docs_outputs = importlib.util.module_from_spec(spec)
spec.loader.exec_module(docs_outputs)


def test_every_documented_command_output_is_what_the_cli_prints_now():
    stale = []
    for page in docs_outputs.pages([]):
        _, changed = docs_outputs.update(page.read_text())
        stale += [f"{page.relative_to(ROOT)}: lossbench {c}" for c in changed]
    assert not stale, "regenerate with python scripts/docs_outputs.py --write: " + "; ".join(stale)


def test_the_checker_sees_a_stale_block():
    text = "<!-- cli: list optim -->\n```text\n$ lossbench list optim\nadam  an old description\n```\n"
    new, changed = docs_outputs.update(text)
    assert changed == ["list optim"] and "sgd" in new and "an old description" not in new


def test_the_docs_keep_outputs_of_the_commands_users_meet_first():
    marked = {m["args"] for page in docs_outputs.pages([]) for m in docs_outputs.BLOCK.finditer(page.read_text())}
    for command in ("list", "list experiment", "run --help"):
        assert command in marked, command
    assert any(c.startswith("run ") and "=" in c for c in marked)  # a bad-input error line
