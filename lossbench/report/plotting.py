"""What every report figure shares: the Agg backend, PNG + SVG + PDF output, legends outside the data, and the
result of drawing a figure (its files, a note, or why it was not drawn: index.md says so)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from lossbench.report.palette import OTHERS, Palette

MAX_INCHES = (14.0, 12.0)  # no figure is larger (width, height)
SVG = {"svg.fonttype": "none", "svg.hashsalt": "lossbench"}


@dataclass
class Figure:
    """A figure of the report: `paths` by extension when drawn; otherwise `note` says why not. A drawn
    figure's `note` says what it leaves out."""

    name: str
    paths: dict[str, Path] = field(default_factory=dict)
    note: str = ""


def save(fig: plt.Figure, base: Path) -> dict[str, Path]:
    """Write PNG (150 dpi), SVG and PDF beside each other; close the figure. The SVG (for the HTML page) keeps
    text as text (a third of the PNG's bytes) and is the same bytes on every run (no date, fixed ids)."""
    base.parent.mkdir(parents=True, exist_ok=True)
    width, height = fig.get_size_inches()
    fig.set_size_inches(min(width, MAX_INCHES[0]), min(height, MAX_INCHES[1]))
    paths = {}
    for ext in ("png", "svg", "pdf"):
        path = base.with_suffix(f".{ext}")
        with plt.rc_context(SVG if ext == "svg" else {}):
            fig.savefig(path, dpi=150, metadata={"Date": None} if ext == "svg" else None)
        paths[ext] = path
        fig.set_layout_engine("none")  # SVG and PDF keep the PNG's layout (in points: the same) instead of redoing it
    plt.close(fig)
    return paths


def variant_handles(variants: list[str], palette: Palette, marker: str | None = None) -> list:
    """Legend entries for the drawn variants: each highlighted one, then one grey entry for the rest."""
    style = {"marker": marker, "linestyle": "none"} if marker else {"lw": 1.5}
    handles = [Line2D([], [], color=palette.colour(v), label=v, **style) for v in palette.ordered(variants)
               if palette.highlighted(v)]
    others = sum(not palette.highlighted(v) for v in variants)
    if others:
        handles.append(Line2D([], [], color=palette.colour(""), label=f"{OTHERS}: {others}", **style))
    return handles


def band_handle(text: str) -> Patch:
    """A legend entry for a shaded band (the std or CI around a mean curve)."""
    return Patch(color="0.5", alpha=0.25, label=text)


def legend_outside(fig: plt.Figure, handles: list) -> None:
    """The legend to the right of the axes (constrained layout makes room), never over the data."""
    if handles:
        fig.legend(handles=handles, loc="outside right upper", fontsize=7, frameon=False)
