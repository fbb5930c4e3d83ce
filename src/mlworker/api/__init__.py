"""HTTP API (FastAPI): thin routes over ``services/``. The only package that imports FastAPI."""
