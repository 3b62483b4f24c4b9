"""`gruasr serve`: the streaming recognizer behind the protocols telephony speaks (docs/serving.md).

from gruasr.server import ServerConfig, create_app
app = create_app(ServerConfig(), StreamingRecognizer.load())   # an ASGI app; gruasr.server.runner runs it
"""

from gruasr.server.app import create_app
from gruasr.server.config import ServerConfig, load_config

__all__ = ["ServerConfig", "create_app", "load_config"]
