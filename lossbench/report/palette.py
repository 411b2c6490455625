"""One colour per variant, fixed across every figure of a report.

About ten colours stay distinguishable (matplotlib's tab10, designed as a categorical palette); more do not
(the 20-colour cycle repeats hues in light and dark pairs). tab10 without its grey gives nine: with up to
nine variants each has its own colour, and with more the baseline and the eight variants that rank best over
the report's groups are coloured and every other variant is drawn in grey under one legend entry ("top-k
with the rest greyed"). A variant's colour is set once per report, never per figure.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import matplotlib

GREY = "#9a9a9a"
COLOURS = tuple(c for i, c in enumerate(matplotlib.colormaps["tab10"].colors) if i != 7)  # 7: tab10's grey
OTHERS = "other variants (grey)"


@dataclass(frozen=True)
class Palette:
    """Variant -> colour for the highlighted variants; every other variant is grey."""

    colours: dict[str, tuple[float, ...]] = field(default_factory=dict)

    @classmethod
    def of(cls, ordered: list[str]) -> Palette:
        """`ordered`: every variant of the report, most important first (baseline, then best mean rank)."""
        unique = list(dict.fromkeys(ordered))
        return cls({v: COLOURS[i] for i, v in enumerate(unique[: len(COLOURS)])})

    def colour(self, variant: str) -> tuple[float, ...] | str:
        return self.colours.get(variant, GREY)

    def highlighted(self, variant: str) -> bool:
        return variant in self.colours

    def ordered(self, variants: list[str]) -> list[str]:
        """`variants` in the palette's order (coloured first, most important first), then the rest."""
        chosen = set(variants)
        return [v for v in self.colours if v in chosen] + [v for v in variants if v not in self.colours]


def report_order(tables: list, headline_of: dict) -> list[str]:
    """Every variant of `tables`: each table's baseline first, then by the headline metric's mean rank over
    seeds averaged across the groups that have it (ties and unranked variants by name)."""
    ranks: dict[str, list[float]] = {}
    baselines = []
    for t in tables:
        if t.baseline is not None:
            baselines.append(t.baseline)
        st = t.standings.get(headline_of[t.task])
        for v in t.mean.index:
            ranks.setdefault(v, [])
            if st is not None and v in st.mean_ranks:
                ranks[v].append(st.mean_ranks[v])
    score = {v: (sum(r) / len(r) if r else float("inf"), v) for v, r in ranks.items()}
    return list(dict.fromkeys(baselines)) + sorted((v for v in ranks if v not in baselines), key=score.__getitem__)
