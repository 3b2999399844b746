"""facedyn.reports."""
