"""facedyn.dr."""
