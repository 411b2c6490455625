"""The declared result schema: unique names, a check that catches undeclared and missing columns, and the
documentation's schema page (docs/schema.md) kept in step with it."""

from __future__ import annotations

from pathlib import Path

from lossbench.schema import HISTORY, Column, check_row, markdown, summary_columns
from lossbench.tasks import AlgorithmicClassification, Classification, LanguageModeling

TASKS = (Classification, AlgorithmicClassification, LanguageModeling)


def test_every_column_is_declared_once_per_task():
    for task in TASKS:
        names = [c.name for c in summary_columns(task.columns, task.score_columns)]
        assert len(names) == len(set(names)), task.name
    assert len({c.name for c in HISTORY}) == len(HISTORY)


def test_each_report_metric_is_a_declared_column_with_a_block_and_a_direction_field():
    for task in TASKS:
        declared = {c.name: c for c in summary_columns(task.columns, task.score_columns)}
        for name in task.report.metrics + task.report.radar + (task.report.headline,):
            assert name in declared and declared[name].block in ("Performance", "Interpretability", "Sustainability")


def test_check_row_reports_undeclared_and_missing_columns():
    declared = [Column("a", "float", "x", present="always"), Column("b", "float", "y"),
                Column("err", "str", "z", present="failed")]
    assert check_row({"a": 1, "b": 2}, declared, "completed") == (set(), set())
    assert check_row({"a": 1, "b": 2, "c": 3}, declared, "completed") == ({"c"}, set())
    assert check_row({"a": 1}, declared, "completed") == (set(), {"b"})
    assert check_row({"a": 1, "err": "boom"}, declared, "failed") == (set(), set())
    assert check_row({"a": 1}, declared, "failed") == (set(), {"err"})


def test_the_documented_column_reference_is_generated_from_the_schema():
    page = (Path(__file__).resolve().parents[1] / "docs" / "schema.md").read_text()
    section = page.split("<!-- schema:start -->\n", 1)[1].split("<!-- schema:end -->", 1)[0]
    assert section == markdown(list(TASKS)), "docs/schema.md is stale: run python scripts/docs_schema.py"
    for task in TASKS:  # and it names every column a run of each task writes
        for column in summary_columns(task.columns, task.score_columns):
            assert f"`{column.name}`" in section
