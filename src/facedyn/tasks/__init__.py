"""facedyn.tasks."""
