"""Test clients of the Vosk protocol, written as the Vosk project's own test client is (vosk-server
websocket/test.py: send the config, then 8000-byte chunks, reading one reply per chunk, then eof)."""

from __future__ import annotations

import json
from typing import Any

from websockets.sync.client import ClientConnection, connect

CHUNK = 8000


def lockstep(
    url: str, pcm: bytes, config: dict[str, Any] | None = None, chunk: int = CHUNK, **options: Any
) -> list[dict[str, Any]]:
    """Every reply, in order: one per chunk, then the final for eof (the server then closes with 1000).
    `options` go to websockets' connect (ssl, additional_headers)."""
    replies = []
    with connect(url, compression=None, open_timeout=30, **options) as ws:
        if config is not None:
            ws.send(json.dumps({"config": config}))
        for i in range(0, len(pcm), chunk):
            ws.send(pcm[i : i + chunk])
            replies.append(json.loads(ws.recv(timeout=30)))
        ws.send('{"eof" : 1}')
        replies.append(json.loads(ws.recv(timeout=30)))
        closed(ws)
    return replies


def closed(ws: ClientConnection) -> int | None:
    """Wait for the server's close; its code."""
    try:
        while True:
            ws.recv(timeout=30)
    except Exception:  # ConnectionClosed (OK or error): the close frame is in ws.close_code
        return ws.close_code


def finals(replies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The final results among the replies (those with "text" or "alternatives")."""
    return [r for r in replies if "text" in r or "alternatives" in r]


def final_text(replies: list[dict[str, Any]]) -> str:
    return " ".join(r["text"] for r in finals(replies) if r.get("text"))
