"""facedyn.data.datasets."""
