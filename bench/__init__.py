"""ModelShelf's benchmark: its overhead over raw joblib/pickle and MLflow, measured in one run.

``python -m bench`` writes docs/benchmarks.md and docs/benchmarks/*.html; every figure in them
comes from that run (see bench/__main__.py for the options).
"""
