"""facedyn.fabnet."""
