"""Revisions, oldest first: 0001_initial, 0002_markets, 0003_scale_out."""
