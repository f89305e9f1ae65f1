"""The defining case as the web UI's tests need it, built through the real pipeline (the real
`monitor check` against pages on the loopback server): the ICE passage removed, restored and the
post edited, plus a second target; and the web server itself, run in a thread on a free port."""
from __future__ import annotations

import threading

import blog
from conftest import wait_for

NAME = "azure-gov-ice-post"
WITHOUT_ICE = [p for p in blog.PARAGRAPHS if p != blog.ICE]
EDITED = [p.replace("we are proud", "we are honored") for p in blog.PARAGRAPHS]
PRESS = ("<html><head><title>Press release</title></head>"
         "<body><main><p>We are pleased to announce a new office.</p></main></body></html>")

CONFIG = """
[monitor]
retries = 0
calibrate = false
{monitor_extra}

[[targets]]
name = "{name}"
url = "{url}"
selector = "article .entry-content"
keywords = ["facial recognition"]
tags = ["microsoft", "government"]

[[targets]]
name = "press-release"
url = "{press_url}"
tags = ["acme"]
"""


def config(server, monitor_extra: str = "") -> str:
    return CONFIG.format(name=NAME, url=server.url("/post"), press_url=server.url("/press"),
                         monitor_extra=monitor_extra)


def tell(server, workspace, monitor_extra: str = "") -> dict:
    """v1 the post; v2 the ICE paragraph removed; v3 restored; v4 one word edited. Returns the
    post's `monitor history --json` with changes by kind: {"removed": {...}, ...}."""
    server.set("/press", PRESS)
    server.set("/post", blog.post(seed=0))
    workspace.write_config(config(server, monitor_extra))
    workspace.run("check")
    for paragraphs, seed in ((WITHOUT_ICE, 1), (blog.PARAGRAPHS, 2), (EDITED, 3)):
        server.set("/post", blog.post(paragraphs, seed=seed))
        workspace.run("check", NAME)
    history = workspace.json("history", NAME)
    assert [c["kind"] for c in history["changes"]] == ["edited", "restored", "removed", "first"]
    history["by_kind"] = {c["kind"]: c for c in history["changes"]}
    return history


class UI:
    """The real server (uvicorn, the app, the store) on 127.0.0.1 with a free port, in a thread."""

    def __init__(self, workspace):
        import httpx

        from monitor import config as config_module
        from monitor.app import open_store
        from monitor.web.server import WebServer

        self.settings = config_module.load(workspace.config)
        self.store = open_store(self.settings)
        self.web = WebServer(self.settings, self.store, "127.0.0.1", 0)
        self.thread = threading.Thread(target=self.web.run, daemon=True)
        self.thread.start()
        wait_for(lambda: self.web.server.started)
        self.url = self.web.url.rstrip("/")
        self.http = httpx.Client(base_url=self.url, follow_redirects=False, timeout=10)

    def get(self, path: str, **kwargs):
        return self.http.get(path, **kwargs)

    def close(self) -> None:
        self.http.close()
        self.web.server.should_exit = True
        self.thread.join(10)
        self.store.close()
