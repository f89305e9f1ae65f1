"""The web UI, JSON API and feeds over the stored history (`monitor serve`, `monitor run --serve`).

app.py builds the ASGI app; its routes are in pages.py (HTML), captures.py (raw captures),
feeds.py (RSS/Atom), api.py (JSON under /api/) and login.py. They read the store through
monitor/read.py; search.py and texts.py read stored texts; render.py turns diffs into what the
pages draw; auth.py guards every request; server.py runs it under uvicorn, alone or beside the
daemon.
"""
