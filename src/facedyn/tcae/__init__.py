"""facedyn.tcae."""
