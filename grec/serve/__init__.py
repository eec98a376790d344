"""``grec serve``: a checkpoint's recommendations over HTTP (docs/serve.md).

``ServeConfig`` holds the flags, ``create_app`` builds the Starlette application (for any ASGI
server), ``serve`` runs it on uvicorn.
"""

from grec.serve.app import create_app
from grec.serve.config import ServeConfig
from grec.serve.run import serve

__all__ = ["ServeConfig", "create_app", "serve"]
