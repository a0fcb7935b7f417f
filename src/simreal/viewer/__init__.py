"""The triage review viewer: ``simreal view FOLDER`` (FastAPI + uvicorn, a static page, no build step)."""

from simreal.viewer.server import serve

__all__ = ["serve"]
