"""Evaluation metrics and the analysis report."""
