"""Batch predictions: a stored dataset scored by a stored model as a job (issue 9)."""
