"""One APIRouter per concern; app.py mounts them under /api (ws at /ws)."""
