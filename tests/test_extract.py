"""extract(): HTML -> the watched text, one block per paragraph-like element."""
from __future__ import annotations

import pytest

from monitor.extract import ExtractError, extract

SITE_HEADER = "<header><nav><a href=/>Home</a> <a href=/about>About</a></nav><h1>Field Notes</h1></header>"
CHROME = """<aside>Trending: five things</aside><form><p>Subscribe to our newsletter</p><input name=email></form>
<footer>© 2024 Field Notes</footer><script>var nonce = "abc123";</script><style>p { color: red }</style>"""


def html(body: str, title: str = "A post") -> str:
    return f"<!DOCTYPE html><html><head><title>{title}</title><script>x()</script></head><body>{body}</body></html>"


def test_single_article_is_the_scope_with_its_own_header():
    page = html(SITE_HEADER + CHROME + """<article><header><h1>Post title</h1><p>By Ann</p></header>
        <p>First paragraph.</p><aside>Related posts</aside><p>Second paragraph.</p>
        <footer>Share this</footer></article><p>Comments (3)</p>""")
    result = extract(page)
    assert result.scope == "article" and result.title == "A post"
    assert result.blocks == ["Post title", "By Ann", "First paragraph.", "Second paragraph."]


@pytest.mark.parametrize("main", ["<main>{}</main>", "<div role=main>{}</div>"])
def test_main_is_the_scope_without_a_single_article(main):
    inner = "<header>Section banner</header><article><p>One.</p></article><article><p>Two.</p></article>"
    page = html(SITE_HEADER + main.format(inner) + "<p>Outside main.</p>" + CHROME)
    result = extract(page)
    assert result.blocks == ["One.", "Two."], "headers outside an article are dropped"
    assert result.scope in ("main", "[role=main]")


def test_body_is_the_scope_otherwise_without_chrome():
    result = extract(html(SITE_HEADER + "<div><p>Plain page text.</p><ul><li>one</li><li>two</li></ul></div>" + CHROME))
    assert result.scope == "body"
    assert result.blocks == ["Plain page text.", "one", "two"]


def test_hidden_and_non_text_elements_are_dropped():
    page = html('<p hidden>hidden</p><p aria-hidden="true">aria</p><noscript>enable js</noscript>'
                "<p>Shown<button>Click</button></p><!-- a comment --><template><p>tpl</p></template>")
    assert extract(page).blocks == ["Shown"]


def test_table_row_is_one_block_of_cells():
    page = html("<table><thead><tr><th>Name</th><th>Price</th></tr></thead><tbody>"
                "<tr><td>Apple</td><td> 1.20 </td></tr><tr><td>Pear</td><td></td><td>new</td></tr></tbody></table>")
    assert extract(page).blocks == ["Name | Price", "Apple | 1.20", "Pear | new"]


@pytest.mark.parametrize("cells, row", [
    ("<td><p>Apple</p></td><td>1.20</td>", "Apple | 1.20"),  # a cell's paragraph is not a block of its own
    ("<td>Line one<br>Line two</td><td>x</td>", "Line one Line two | x"),
    ("<td><p>First</p><p>Second</p></td><td>x</td>", "First Second | x"),
    ("<td>Price<script>track(1)</script><style>td{}</style></td><td>5<span hidden>secret</span></td>", "Price | 5"),
], ids=["paragraph", "br", "two-paragraphs", "script-style-hidden"])
def test_table_cell_text_is_what_a_reader_sees(cells, row):
    assert extract(html(f"<table><tr>{cells}</tr></table>")).blocks == [row]


def test_whitespace_soft_hyphens_and_zero_width_characters_are_normalised():
    page = html("<p>  Price:\n\t5\u00a0\u00a0EUR   now  </p><p>co\u00adop\u00aderative wo\u200brk\u200d\u2060\ufeff</p>"
                "<p>\u200b \u00ad</p><p>Cafe\u0301</p>", title="  Spaced \n title ")
    result = extract(page)
    assert result.blocks == ["Price: 5 EUR now", "cooperative work", "Café"]
    assert result.title == "Spaced title"


def test_inline_markup_does_not_split_words_or_punctuation():
    page = html("<p>Read <a href=/r>the report</a>, then <em>act</em>. <b>H</b>ello, E=mc<sup>2</sup>.</p>")
    assert extract(page).blocks == ["Read the report ⟨/r⟩, then act. Hello, E=mc2."]  # link targets are content


def test_selector_scopes_the_text():
    page = html(SITE_HEADER + "<div class=content><p>Watched.</p><footer>Kept: the user chose it.</footer></div>"
                "<p>Not watched.</p>")
    result = extract(page, selector=".content")
    assert result.scope == ".content"
    assert result.blocks == ["Watched.", "Kept: the user chose it."]


def test_nested_selector_matches_count_text_once():
    assert extract(html("<div><div><p>Once.</p></div></div>"), selector="div").blocks == ["Once."]


def test_selector_matching_nothing_names_the_selector():
    with pytest.raises(ExtractError, match=r"'\.entry-content'.*matched nothing"):
        extract(html("<p>Something else.</p>"), selector=".entry-content")


def test_ignore_drops_elements():
    page = html("<article><p class=date>Updated 5 minutes ago</p><p>Body text.</p>"
                "<div id=ads><p>Buy now!</p></div></article>")
    assert extract(page, ignore=[".date", "#ads"]).blocks == ["Body text."]


def test_ignore_text_drops_text_by_regex():
    page = html("<article><p>Views: 1234</p><p>Body text, 1234 words.</p><p>Last updated 2024-05-06</p></article>",
                title="Post (42 comments)")
    result = extract(page, ignore_text=[r"^Views: \d+$", r"\s*\(\d+ comments\)", r"Last updated \S+"])
    assert result.blocks == ["Body text, 1234 words."]
    assert result.title == "Post"


def test_malformed_html_still_gives_the_text():
    page = "<html><body><div><p>Unclosed <b>bold<p>Second para</div></div></span><p>Third &amp; last"
    assert extract(page).blocks == ["Unclosed bold", "Second para", "Third & last"]
