"""Tasks: what is learned from a batch, how it is scored, probed and reported (`task=`).

The protocol is `lossbench.tasks.base.Task`; each task is one file here plus `conf/task/<name>.yaml`.
The built-in tasks are re-exported here because rows of schema version 1 name them by this path in
their stored config (`lossbench.tasks.Classification`), and the report finds a row's task through it.
"""

from lossbench.tasks.algorithmic import AlgorithmicClassification
from lossbench.tasks.base import ReportView, Task
from lossbench.tasks.classification import Classification
from lossbench.tasks.lm import LanguageModeling

__all__ = ["AlgorithmicClassification", "Classification", "LanguageModeling", "ReportView", "Task"]
