"""Command-line interface (typer). One module per command group; each exposes ``register(app)``."""
