"""The thin FastAPI app over the gridmap library."""
