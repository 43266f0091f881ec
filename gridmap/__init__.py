"""gridmap: grid management and field inspection for city management bureaus (数字城管).

The package is the domain library; the FastAPI app in ``api/`` and the ``gridmap`` CLI are thin
layers over the functions found here, one subpackage per domain concept.
"""

__version__ = "0.1.0"
