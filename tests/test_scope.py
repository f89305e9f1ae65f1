"""The watched scope is pinned at a target's first capture: an edit cannot move it to another
container, `monitor explain` says which container it is and why, and when the page loses it
the history says the scope was chosen again."""
from __future__ import annotations

ARTICLE = [f"Article paragraph {i}: the council approved the budget, with amendments, after a long "
           f"debate about roads, schools and the harbour, in session number {i}." for i in range(5)]
OTHER = [f"Letters column {i}: readers wrote in, at length, about parking, noise, dogs and the "
         f"new bus timetable that started this spring, letter number {i}." for i in range(4)]


def page(article: list[str], container: str = "story") -> str:
    paras = "".join(f"<p>{p}</p>" for p in article)
    letters = "".join(f"<p>{p}</p>" for p in OTHER)
    return (f"<html><head><title>Budget</title></head><body><div class='{container}'>{paras}</div>"
            f"<div class='letters-block'>{letters}</div></body></html>")


CONFIG = '[monitor]\nretries = 0\ncalibrate_delay = "0s"\n\n[[targets]]\nname = "story"\nurl = "{url}"\n'


def changes(workspace) -> list[dict]:
    return [c for c in reversed(workspace.json("history", "story")["changes"]) if c["kind"] != "rebaselined"]


def test_a_removal_cannot_move_the_scope_and_explain_shows_the_pin(server, workspace):
    server.set("/story", page(ARTICLE))
    workspace.write_config(CONFIG.format(url=server.url("/story")))
    workspace.run("check")
    out = workspace.run("explain", "story").stdout
    assert "scope: pinned: div.story" in out
    assert "chosen at first capture: densest text" in out

    # Three of five article paragraphs removed: the letters are now the denser text, but the
    # pinned container is still watched, so the change is exactly the removal.
    server.set("/story", page(ARTICLE[:2]))
    workspace.run("check")
    last = changes(workspace)[-1]
    assert last["kind"] == "removed", last
    removed = " ".join(p["removed"] for p in last["passages"])
    assert all(f"session number {i}" in removed for i in (2, 3, 4))
    assert not any(p["added"] for p in last["passages"]) and "Letters column" not in removed


def test_the_scope_is_chosen_again_when_its_container_is_gone(server, workspace):
    server.set("/story", page(ARTICLE))
    workspace.write_config(CONFIG.format(url=server.url("/story")))
    workspace.run("check")
    server.set("/story", page(ARTICLE[:4], container="article-body"))  # a redesign and a removal
    workspace.run("check")
    last = changes(workspace)[-1]
    assert last["summary"].startswith("the pinned scope 'div.story' is gone; watching "), last
    assert "session number 4" in " ".join(p["removed"] for p in last["passages"])
    assert "pinned: div.article-body" in workspace.run("explain", "story").stdout
