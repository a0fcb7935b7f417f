"""Model building blocks in plain torch (import submodules directly)."""
