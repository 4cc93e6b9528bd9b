"""Comparisons: R's ``anova`` tables over stored models (F tests of lm fits, likelihood
ratios when a mixed model is among them)."""
