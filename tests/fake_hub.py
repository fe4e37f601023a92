"""A minimal local stand-in for the Hugging Face Hub: the model-info API and file downloads over HTTP.

It serves model folders as repositories at one fixed commit, answers 404 with the Hub's
error code for anything else, and counts its requests, so that the real download path
(``huggingface_hub`` over HTTP) can be exercised without a network.
"""

from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

COMMIT = "0123456789abcdef0123456789abcdef01234567"
JSON = {"Content-Type": "application/json"}


class _Server(ThreadingHTTPServer):
    request_queue_size = 64
    daemon_threads = True


class FakeHub:
    """``FakeHub({"owner/name": folder})`` serving on ``self.url`` until ``close()``."""

    def __init__(self, repos: dict[str, Path]) -> None:
        self.repos = repos
        self.requests: list[str] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                hub.requests.append(f"GET {self.path}")
                hub._answer(self, body=True)

            def do_HEAD(self) -> None:
                hub.requests.append(f"HEAD {self.path}")
                hub._answer(self, body=False)

            def log_message(self, *args) -> None:
                pass

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _files(self, repo: str) -> list[str]:
        root = self.repos[repo]
        return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())

    def _answer(self, handler: BaseHTTPRequestHandler, body: bool) -> None:
        path = handler.path.split("?")[0]
        for repo in self.repos:
            info = f"/api/models/{repo}/revision/"
            tree = f"/api/models/{repo}/tree/"
            resolve = f"/{repo}/resolve/"
            if path.startswith(info):
                siblings = [{"rfilename": name} for name in self._files(repo)]
                data = json.dumps({"id": repo, "modelId": repo, "sha": COMMIT, "siblings": siblings}).encode()
                return self._send(handler, 200, data, JSON, body)
            if path.startswith(tree):
                root = self.repos[repo]
                entries = [
                    {"type": "file", "path": name, "size": (root / name).stat().st_size, "oid": name}
                    for name in self._files(repo)
                ]
                return self._send(handler, 200, json.dumps(entries).encode(), JSON, body)
            if path.startswith(resolve):
                name = path[len(resolve) :].split("/", 1)[1]
                file = self.repos[repo] / name
                if file.is_file():
                    data = file.read_bytes()
                    etag = f'"{hashlib.sha256(data).hexdigest()}"'
                    return self._send(handler, 200, data, {"ETag": etag, "X-Repo-Commit": COMMIT}, body)
                return self._send(handler, 404, b"{}", {"X-Error-Code": "EntryNotFound"}, body)
        self._send(handler, 404, b'{"error": "Repository not found"}', {"X-Error-Code": "RepoNotFound"}, body)

    @staticmethod
    def _send(handler: BaseHTTPRequestHandler, status: int, data: bytes, headers: dict, body: bool) -> None:
        handler.send_response(status)
        for key, value in {**headers, "Content-Length": str(len(data))}.items():
            handler.send_header(key, value)
        handler.end_headers()
        if body:
            handler.wfile.write(data)
