"""`gruasr serve`: the streaming recognizer behind the protocols telephony speaks (docs/serving.md).

from gruasr.server import ServerConfig, create_app
app = create_app(ServerConfig(), StreamingRecognizer.load())   # an ASGI app; gruasr.server.runner runs it
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gruasr.server.config import ServerConfig, load_config

if TYPE_CHECKING:
    from gruasr.server.app import create_app

__all__ = ["ServerConfig", "create_app", "load_config"]


def __getattr__(name: str) -> Any:
    # create_app on first use: a decoding process imports gruasr.server.decoding without the web stack
    if name == "create_app":
        from gruasr.server.app import create_app

        return create_app
    raise AttributeError(f"module 'gruasr.server' has no attribute {name!r}")
