"""Synthetic data engine: scene spec, randomizers, assets, backends, annotation, post-effects."""
