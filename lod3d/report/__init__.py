"""The run report: ``DIR/report/index.html`` with figures and accuracy (:func:`build_report`)."""

from .build import build_report

__all__ = ["build_report"]
