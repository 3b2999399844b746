"""facedyn.train."""
