"""facedyn.eval."""
