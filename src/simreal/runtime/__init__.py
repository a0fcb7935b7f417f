"""Runtime services shared by every stage: seeding, atomic io, progress, manifest, executors."""

from simreal.runtime.io import atomic_path, atomic_write_bytes, atomic_write_json, atomic_write_text
from simreal.runtime.seeding import sample_rng, sample_seed, seed_everything

__all__ = [
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "sample_rng",
    "sample_seed",
    "seed_everything",
]
