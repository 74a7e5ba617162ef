"""Figures of the manuscript: forest plots, risk-of-bias grid, PRISMA flow diagram.

Each public function takes plain data (dicts/lists, as in ``results/*.json``) and a path
stem, and writes ``<stem>.svg`` (vector) and ``<stem>.png`` (300 dpi) with deterministic bytes.
"""

from .common import save_figure
from .flow import prisma_flow
from .forest import forest_plot, leave_one_out_plot
from .rob import risk_of_bias_grid

__all__ = ["forest_plot", "leave_one_out_plot", "prisma_flow", "risk_of_bias_grid", "save_figure"]
