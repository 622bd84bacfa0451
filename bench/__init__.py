"""Benchmarks of Facet on the machine they run on; `python -m bench` writes bench/reports/."""
