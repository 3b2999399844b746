"""facedyn.nn."""
