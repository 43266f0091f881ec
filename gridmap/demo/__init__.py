"""The demo city: a manifest of imports (``data/taipei/demo.yaml``) run through the ordinary importers."""
