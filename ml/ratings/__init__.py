"""Human ratings: inter-rater reliability, per-item summaries and per-rater quality (pure statistics)."""
