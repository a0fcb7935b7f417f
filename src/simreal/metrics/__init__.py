"""Metrics: ranking, detection, re-identification, FID/KID (import submodules directly)."""
