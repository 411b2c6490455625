"""The report package: catalogue (metrics from the schema, views from the tasks), aggregation over
seeds, table formats, figures, and `build_report`, which writes them. Import order, with no cycle:
catalogue <- aggregate <- formats, figures <- build."""

from lossbench.report.build import Report, build_report

__all__ = ["Report", "build_report"]
