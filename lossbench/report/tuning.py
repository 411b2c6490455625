"""The report's tuning table: for each tuned protocol of a results folder (`lossbench tune`, protocol.py),
per variant the search budget (trials asked, completed, failed), the best validation objective and the
chosen values that its stage-2 runs use. Equal budget per variant is the protocol's fairness rule; the
table lets a reader check it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from lossbench.protocol import protocols


def tuning_tables(results_dir: Path) -> list[tuple[dict[str, Any], pd.DataFrame]]:
    """(protocol manifest, its table) for every tuned protocol recorded under `results_dir`."""
    out = []
    for protocol in protocols(results_dir):
        rows = []
        for v in protocol["variants"]:
            best = v.get("best") or {}
            rows.append({"variant": v["variant"], "trials": protocol["trials"], "completed": v.get("complete"),
                         "failed": v.get("failed"),
                         "best_objective": ", ".join(f"{x:.4g}" for x in v.get("objective") or []) or "none",
                         "chosen": ", ".join(f"{k}={_short(val)}" for k, val in best.items()) or "not tuned",
                         "seeds": len(v.get("runs") or [])})
        out.append((protocol, pd.DataFrame(rows)))
    return out


def caption(protocol: dict[str, Any]) -> str:
    """What the table shows and how the budget was spent."""
    space = "; ".join(f"`{s}`" for s in protocol["space"])
    seeds = ",".join(map(str, protocol["seeds"]))
    objective = ", ".join(protocol.get("objective") or ["the task's validation score"])
    return (f"Tuned protocol {protocol['protocol']}: every variant got the same budget, {protocol['trials']} Optuna "
            f"trials ({protocol.get('sampler', 'tpe')} sampler, seeded) over {space}, scored on {objective} at seed "
            f"{protocol['seeds'][0]} (failed trials count against the budget); then its best values over seeds "
            f"{seeds}. The tables above compare these stage-2 runs; the trials are kept in "
            f"`{protocol['tuning_dir']}`. Command: `{protocol['command']}`")


def to_markdown(protocol: dict[str, Any], table: pd.DataFrame) -> str:
    """The tuning table in markdown, with its caption."""
    head = "| " + " | ".join(table.columns) + " |"
    lines = [caption(protocol), "", head, "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def _short(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
