"""The engine: a read model -> its exact partition of a 2-D domain or slice (numpy geometry, float64)."""
