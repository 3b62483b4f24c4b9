"""Scoring recognition output: alignments, error rates, reports."""
