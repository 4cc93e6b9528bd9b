"""Inference on stored models over HTTP (issue 12): intervals and anova tables."""
