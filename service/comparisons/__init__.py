"""Comparisons: likelihood-ratio tables over stored models (R's ``anova``)."""
