"""facedyn.data."""
