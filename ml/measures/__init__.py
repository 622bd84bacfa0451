"""Facial measures of pre/post comparisons: definitions, landmark measures, noise floors, comparability
checks and cohort statistics (docs/measures.md)."""
