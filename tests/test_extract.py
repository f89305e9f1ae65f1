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


# ---- real pages' shapes (each seen on public article pages; see bench/realpages.py) -------------

LEDE = ("<p>The committee published its report on Monday, after a year of hearings, site visits and "
        "written evidence from more than two hundred residents, firms and councils.</p>")
STORY = "".join(f"<p>Paragraph {i} of the report's summary, with its findings, caveats, figures and the "
                f"recommendations the committee made to the minister, numbered {i}.</p>" for i in range(4))


def watched(body: str) -> str:
    return "\n".join(extract(html(body)).blocks)


def test_class_names_of_inline_elements_do_not_make_words_chrome():
    # A code sample's highlighted comment and a link marked "external-popup" are words of the article.
    body = ("<article>" + LEDE + STORY + '<pre><code><span class="hljs-comment"># stash your work first</span>\n'
            'git stash</code></pre><p>Read the <a class="external-popup" href="https://irs.example/rates">Internal '
            "Revenue Service tables</a> before you file.</p></article>")
    text = watched(body)
    assert "# stash your work first" in text
    assert "Internal Revenue Service tables" in text


def test_a_price_on_its_own_is_content_not_a_counter():
    before = watched("<article>" + LEDE + STORY + "<div><div>$39.99</div></div><div><span>137</span></div></article>")
    after = watched("<article>" + LEDE + STORY + "<div><div>$41.99</div></div><div><span>152</span></div></article>")
    assert "$39.99" in before and "$41.99" in after, "a changed price is an edit"
    assert before.replace("$39.99", "$41.99") == after, "a lone count (views, likes) is still masked"


def test_teaser_cards_beside_the_article_are_chrome_but_a_listicle_is_not():
    cards = "".join(f'<div class="card"><a href="/news/{i}"><h3>Other story number {i} of the week</h3></a>'
                    f"<p>A line of teaser.</p></div>" for i in range(4))
    listicle = "".join(f'<div class="item"><h3>{i}. Pack the kitchen last</h3><p>Keep a box of plates and '
                       f'<a href="/shop/{i}">packing paper</a> for the final evening.</p></div>' for i in range(4))
    text = watched(f"<main><div class='post'>{LEDE}{STORY}{listicle}</div><div class='more'>{cards}</div></main>")
    assert "Other story number" not in text
    assert text.count("Pack the kitchen last") == 4 and "packing paper" in text


def test_hidden_answers_inside_the_article_text_are_watched():
    faq = ('<div class="faq"><h3>How long does it take?</h3><div class="answer" style="display: none">'
           "<p>About six weeks from the day the form arrives.</p></div></div>")
    text = watched(f"<article><div class='body'>{LEDE}{STORY}{faq}</div></article><div style='display:none'>"
                   "<p>Sign in to continue reading and more.</p></div>")
    assert "About six weeks" in text, "a collapsed answer is part of the article"
    assert "Sign in" not in text, "hidden things outside the article stay out"


def test_a_header_holding_the_articles_opening_prose_is_watched():
    intro = ("<header class='hero'><h1>Saving for a family</h1><div>Once you are advancing in your career, whether "
             "you are starting a family or concentrating solely on your own goals, the way you save changes, and "
             "the accounts you choose matter more than they did when you started out.</div></header>")
    text = watched(f"<header><nav><a href='/'>Home</a></nav></header><main>{intro}{STORY}</main>")
    assert "Once you are advancing in your career" in text
    assert "Home" not in text


def test_a_calendar_widget_is_chrome():
    calendar = ("<div class='widget_calendar'><table class='wp-calendar-table'>" + "".join(
        f"<tr>{''.join(f'<td><a href=/2025/12/{d:02d}>{d}</a></td>' for d in range(w * 7 + 1, w * 7 + 8))}</tr>"
        for w in range(4)) + "</table></div>")
    text = watched(f"<main><div class='post'>{LEDE}{STORY}</div>{calendar}</main>")
    assert "2025/12/02" not in text and "Paragraph 3" in text


@pytest.mark.parametrize("box", [
    "<div class='author-bio'><p>Dan is the Security Editor, which he joined in 2012 after working for a wire "
    "service and two papers.</p></div>",
    "<div class='short-cta__container'><p>Submit a story of your own to our editors today.</p></div>",
], ids=["author-bio", "call-to-action"])
def test_an_author_bio_or_a_call_to_action_beside_the_text_is_chrome(box):
    text = watched(f"<article>{LEDE}{STORY}{box}</article>")
    assert "Paragraph 3" in text and "Dan is" not in text and "Submit a story" not in text


@pytest.mark.parametrize("before, after", [
    ("<div class='duration'>19:32</div>", "<div class='duration'>24:32</div>"),
    ("<ul><li>Star (107)</li><li>Fork (9)</li></ul>", "<ul><li>Star (116)</li><li>Fork (14)</li></ul>"),
    ("<p class='rating-count'>169 total reviews</p>", "<p class='rating-count'>175 total reviews</p>"),
], ids=["duration", "stars-and-forks", "reviews"])
def test_counts_and_durations_beside_the_text_change_nothing(before, after):
    assert watched(f"<article>{LEDE}{STORY}{before}</article>") == watched(f"<article>{LEDE}{STORY}{after}</article>")


def test_a_cookie_notice_is_chrome_whatever_its_class_names():
    notice = ('<section class="x7f2k"><p>We value your privacy. We use cookies to enhance your browsing experience '
              'and analyse our traffic. Click "Accept" to consent.</p><div>Customise Reject Accept</div></section>')
    article = "<div class='c-body'>" + LEDE + STORY + "<p>The committee also found that cookies sold at the fair were mislabelled.</p></div>"
    text = watched(f"<main>{article}{notice}</main>")
    assert "We value your privacy" not in text and "Customise" not in text
    assert "cookies sold at the fair" in text, "the article's own words about cookies stay"


def test_every_step_of_a_how_to_is_watched_when_the_steps_are_separate_blocks():
    first = ('<div class="mod step"><div class="content"><p>Cut a frame from the plywood, thirty centimetres '
             "square, and sand its edges until they are smooth to the touch, then oil it well.</p></div></div>")
    steps = "".join(f'<div class="mod step"><div class="content"><span>Step {i}</span><p>Press the moss down, '
                    f"layer {i}.</p></div></div>" for i in range(2, 8))
    related = ('<div class="related"><ul>' + "".join(f'<li><a href="/r/{i}">Another craft idea number {i}</a></li>'
                                                   for i in range(8)) + "</ul></div>")
    text = watched(f"<section><div class='col-main'>{first}{related}{steps}</div><div class='col-side'>"
                   "<p>Advertisement</p></div></section>")
    assert all(f"Press the moss down, layer {i}." in text for i in range(2, 8)), text


def test_an_article_made_of_a_list_of_article_elements_is_watched_whole():
    venues = "".join(f'<article class="venue"><div class="venue-head"><a href="/v/{i}">Restaurant {i}</a> '
                     f'<a href="/area/{i}">Lower East Side</a> <a href="/cuisine/{i}">Contemporary</a></div>'
                     f'<div class="venue-main"><p>Chef number {i} cooks a tasting menu of twelve courses, with a wine '
                     f"list that leans on small growers, and the room seats forty people at most.</p></div></article>"
                     for i in range(12))
    text = watched(f"<div class='page'><div class='venues'>{venues}</div></div><div class='side'><p>Ads</p></div>")
    assert all(f"Chef number {i} cooks" in text for i in range(12)), text


def test_a_post_loop_whose_entries_carry_generated_classes_is_watched_whole():
    # A WordPress query loop: each entry's classes name its post id, yet they are one kind of block.
    entries = "".join(
        f'<li class="wp-block-post post-{1800 + i} type-oer hentry"><div class="wp-block-group"><div class="col">'
        f'<h3><a href="/oer/{i}">Open resource number {i}</a></h3><div class="entry-content"><p>Resource {i} '
        f"helps teachers of Spanish plan lessons, assess learners and share materials with colleagues across "
        f"the country, and every part of it is free to adapt.</p></div></div></div></li>" for i in range(8))
    text = watched(f"<div class='site'><div class='query'><ul class='wp-block-post-template'>{entries}</ul></div>"
                   "<div class='side'><p>Ads</p></div></div>")
    assert all(f"Resource {i} helps teachers" in text for i in range(8)), text


def test_sources_cited_in_the_article_are_watched_but_a_list_of_the_sites_own_posts_is_not():
    sources = "".join(f'<li><a href="https://source{i}.example/report-{i}">Report number {i} on licensing '
                      f"and pay for artists</a></li>" for i in range(4))
    related = "".join(f'<li><a href="https://blog.example/post-{i}">Our own post number {i} on the same '
                      f"topic</a></li>" for i in range(4))
    page = html(f"<article><div class='e-content'>{LEDE}{STORY}<p>Sources:</p><ul>{sources}</ul>"
                f"<p>Read next:</p><ul>{related}</ul></div></article>")
    text = "\n".join(extract(page, url="https://blog.example/this-post").blocks)
    assert all(f"Report number {i} on licensing" in text for i in range(4)), text
    assert "Our own post number" not in text
    # The page's canonical URL names its site when it is served from elsewhere (a mirror, a CDN).
    mirrored = page.replace("<head>", '<head><link rel="canonical" href="https://www.blog.example/this-post">')
    text = "\n".join(extract(mirrored, url="http://127.0.0.1:8080/this-post").blocks)
    assert "Report number 3 on licensing" in text and "Our own post number" not in text


def test_a_section_of_the_same_kind_as_the_articles_is_watched_whatever_its_name():
    # The article is split into "content-nav-section"s (anchors for an in-page menu): "nav" in the
    # name does not make the sections that do not hold the densest text chrome.
    section = ('<div class="content-nav-section"><div class="rtf"><h2>Part {0}</h2><p>Millennials face '
               'challenges in part {0}, growing careers, income and investments while saving for a home, '
               'and the advice here differs for each of them.</p></div></div>')
    lead = section.format(0).replace("</p>", "<p>" + " More words of the longest part. " * 20 + "</p></p>")
    text = watched(f"<main><div class='wrap'><div class='bg-white'>{section.format(1)}</div>"
                   f"<div class='body-content'>{lead}{section.format(2)}"
                   f"<div class='nav-links'><a href=/a>Prev</a> <a href=/b>Next</a></div></div></div></main>")
    assert "challenges in part 1" in text and "challenges in part 2" in text, text
    assert "Prev" not in text


def test_a_stray_read_more_link_does_not_stop_the_scope_short_of_the_caption():
    body = ("<div id='story'><div class='story-body'><div class='article-media'><p class='caption'>A new bill "
            "would require providers to store metadata for two years.</p></div>"
            f"<div id='read-more'><div id='read-more-link'><a href='#'>Read more</a></div>"
            f"<div id='read-more-content'>{LEDE}{STORY}</div></div></div></div>"
            "<div class='side'><ul><li><a href=/1>One link</a></li><li><a href=/2>Two links</a></li>"
            "<li><a href=/3>Three links</a></li></ul></div>")
    assert "store metadata for two years" in watched(body)
