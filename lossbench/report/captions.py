"""What a group's numbers and marks mean, in words: the caption every format prints above its tables (markdown,
LaTeX, HTML) and the note on the difference table's family of tests. The texts name the tests of stats.py
and the cases a reader must know about (cells of one variant kept apart, runs left out, runs that did not
finish, modelled energy, mixed thread counts or grid intensities)."""

from __future__ import annotations

from lossbench.report.aggregate import GroupTable
from lossbench.report.stats import ALPHA, MAX_SEEDS

TIE = "†"
NOT_APPLICABLE = "n/a"
MARKS = (f"Per metric, seeds as blocks: a repeated-measures ANOVA over the variants (row 'ANOVA p'); post-hoc "
         f"comparisons are declared only where it rejects (p < {ALPHA}; with two variants, directly). Family of the "
         f"marks: every variant against the best mean, paired t-test by seed, Holm-corrected over the V - 1 "
         f"comparisons, p < {ALPHA}. Bold: the best mean, declared better than every other variant. {TIE}: no variant "
         f"is declared best; the best mean and every variant not declared worse than it. Rank: the variant's rank on "
         f"each seed (1 = best, ties averaged), averaged over seeds (Friedman's mean rank) and over the block's "
         f"ranked metrics.")
FAMILY = ("paired by seed; 95 % CI of the paired t-test; p-values of the paired t-test and of the exact Wilcoxon "
          "signed-rank test, Holm-corrected over the {k} comparisons with {baseline} (this table's family; the "
          "forest plot uses the same); bold difference: declared significant (the repeated-measures ANOVA over the "
          f"group's variants rejects at p < {ALPHA}, then the paired t-test's Holm p < {ALPHA}); seeds a paired "
          f"t-test needs to detect the observed difference with 80 % power (> {MAX_SEEDS}: more than {MAX_SEEDS}).")



def caption(table: GroupTable, block: str | None = None) -> str:
    """What the numbers and marks mean (plain text; LaTeX escapes it)."""
    not_ranked = [m.label or m.name for m in table.metrics if m.higher_is_better is not None and not table.ranked(m)]
    parts = [(f"{table.title}{' - ' + block if block else ''}: mean ± std over the seeds of each cell (n = completed "
              "runs; a cell's runs differ only by seed).")]
    if len(table.mean.index) > 1:
        parts.append(MARKS)
    if table.split:
        names = "; ".join(f"{v}: {', '.join(labels)}" for v, labels in sorted(table.split.items()))
        parts.append(f"Rows labelled 'variant (key=value)' are separate cells of one variant, whose configs differ in "
                     f"those keys; they are never pooled ({names}).")
    if table.duplicates:
        parts.append(f"{table.duplicates} older row(s) left out: another row holds their cell and seed (files of "
                     "schema versions before 3, whose run ids hashed measurement settings); the completed, most "
                     "recently finished one is reported.")
    if table.unfinished:
        parts.append("No completed run: " + "; ".join(
            f"{v} ({', '.join(f'{n} {s}' for s, n in counts.items())})" for v, counts in table.unfinished.items()) + ".")
    if table.ended:
        parts.append(f"Failed includes runs the cluster ended ({', '.join(f'{n} {s}' for s, n in table.ended.items())}).")
    if not_ranked:
        parts.append(f"{', '.join(not_ranked)}: the checkpoint-selection score, shown but not ranked.")
    if any(m.distance_heads_only for m in table.metrics):
        parts.append(f"{NOT_APPLICABLE}: prototype alignment is defined for distance-head prototypes only.")
    if table.modelled_energy and (block in (None, "Sustainability")):
        sources = ", ".join(sorted(table.energy_sources))
        parts.append(f"Energy is modelled, not measured ({sources}): see the documentation's energy page (docs/energy.md).")
        if "model:cpu-time" in table.energy_sources and len(table.thread_counts) > 1:
            counts = ", ".join(map(str, sorted(table.thread_counts)))
            parts.append(f"Runs used different torch thread counts ({counts}): modelled CPU energy grows with threads "
                         f"(a waiting thread spins), so it compares runs with the same thread count.")
    if len(table.countries) > 1 and block in (None, "Sustainability"):
        parts.append(f"Emissions use the grid intensities of several countries ({', '.join(sorted(table.countries))}): "
                     "compare energy, not emissions.")
    return " ".join(parts)



def family_note(table: GroupTable) -> str:
    """The difference table's family and tests, with this group's V - 1 and baseline."""
    k = len(next(iter(table.comparisons.values()), []))
    return FAMILY.format(k=f"V - 1 = {k}", baseline=table.baseline)

