"""Inspection of stored fits: residuals and plots, recomputed from a model's stored result."""
