"""Deterministic generator of WordPress-like blog-post pages.

Every page is a full HTML document of about PAGE_BYTES bytes: a <head> with
meta tags, inline CSS and JS, a header with a navigation menu, an <article>
with seeded English-like prose, comments, a sidebar and a footer. The same
seed always produces byte-identical pages.

Usable on its own:  python bench/sitegen.py OUT_DIR [--posts N] [--seed S]
"""

from __future__ import annotations

import argparse
import bisect
import datetime as dt
import itertools
import os
import random
import re
from dataclasses import dataclass, field
from pathlib import Path

PAGE_BYTES = 50_000
SITE_NAME = "Northern Field Notes"
SITE_HOST = "fieldnotes.example.org"

# --------------------------------------------------------------------------
# Vocabulary. Words are listed roughly by frequency; picks follow a Zipf-like
# distribution so common words dominate, as in real prose.
# --------------------------------------------------------------------------

NOUNS = """
time year people way day thing life world school family group country problem
hand part place case week company system program question work number night
point home water room area money story fact month book eye job word business
issue side kind head house service friend power hour game line end member law
car city community name team minute idea body information back face level
office door health person art history party result change morning reason
research moment air teacher force education foot age policy process music
market sense plan interest experience effect use class control care field
development role effort rate heart show leader light voice mind price report
decision view relationship town road difference value building action model
season society director position player record paper space ground form event
matter center couple site project activity table need cost industry figure
street image garden kitchen recipe bread coffee bicycle mountain river valley
harbour village island forest winter summer autumn journey camera photograph
letter library museum theatre station bridge window engine software network
server browser database update release feature version screen keyboard
battery ticket festival concert neighbour weekend holiday breakfast dinner
soup salad cheese butter flour sugar apple lemon tomato onion garlic pepper
potato trail path map weather storm cloud rain snow wind coast beach cliff
meadow orchard vineyard cottage barn fence gate tool hammer ladder shelf
drawer notebook pencil chapter draft deadline budget meeting schedule routine
habit skill lesson mistake habitat species bird owl heron fox deer beetle
moss fern oak birch pine willow seed soil compost harvest market stall
bakery workshop studio gallery exhibition lecture podcast episode interview
newsletter archive spreadsheet invoice receipt parcel delivery courier
platform carriage tunnel ferry lighthouse canal lock pier tide current
""".split()

VERBS = """
say go get make know think take see come want look use find give tell work
call try ask need feel become leave put mean keep let begin seem help talk
turn start show hear play run move like live believe hold bring happen write
provide sit stand lose pay meet include continue set learn change lead
understand watch follow stop create speak read allow add spend grow open walk
win offer remember love consider appear buy wait serve send expect build stay
fall cut reach remain suggest raise pass sell require report decide pull
return explain hope develop carry break receive agree support produce eat
cover catch draw choose cook bake visit travel fix test ship measure compare
notice plant paint repair borrow collect sort prune water harvest sketch
photograph record publish edit rewrite replace clean wrap pack climb cross
""".split()

IRREGULAR_PAST = {
    "say": "said", "go": "went", "get": "got", "make": "made", "know": "knew",
    "think": "thought", "take": "took", "see": "saw", "come": "came",
    "give": "gave", "tell": "told", "feel": "felt", "become": "became",
    "leave": "left", "put": "put", "mean": "meant", "keep": "kept",
    "let": "let", "begin": "began", "hear": "heard", "run": "ran",
    "bring": "brought", "write": "wrote", "sit": "sat", "stand": "stood",
    "lose": "lost", "pay": "paid", "meet": "met", "set": "set",
    "lead": "led", "understand": "understood", "speak": "spoke",
    "read": "read", "spend": "spent", "grow": "grew", "win": "won",
    "buy": "bought", "send": "sent", "build": "built", "fall": "fell",
    "cut": "cut", "hold": "held", "find": "found", "break": "broke",
    "eat": "ate", "catch": "caught", "draw": "drew", "choose": "chose",
    "sell": "sold", "rewrite": "rewrote",
}

ADJECTIVES = """
good new first last long great little old right big high
different small large next early young important public bad same able
late hard major better economic strong possible whole free military true
federal local sure clear recent certain personal open red difficult
available likely short single medical current wrong private past foreign
fine common poor natural significant similar hot dead central happy serious
ready simple left physical general environmental financial blue democratic
dark various entire close legal religious cold final main green nice huge
popular traditional cultural quiet narrow wooden muddy bright gentle steady
careful patient rough smooth heavy light fresh dry wet sharp crooked hidden
ancient modern rural coastal northern southern rusty fragile sturdy tidy
""".split()

ADVERBS = """
also just only very even back there still well however too never often
really almost always sometimes perhaps actually probably quickly slowly
already finally certainly clearly simply nearly recently quietly carefully
eventually gradually suddenly roughly mostly usually rarely honestly
""".split()

PREPOSITIONS = """
of in to for with on at from by about into over after under between through
during without before around behind along across near beyond toward beside
""".split()

PRONOUNS = "we they I you she he".split()
CONJUNCTIONS = "and but so yet because while although since".split()
DETERMINERS = "the the the a this that every each our their my another".split()
PLURAL_DETERMINERS = "the the these those our their my some many few".split()
OPENERS = """However Eventually Honestly Finally Still Sometimes Perhaps Later
Meanwhile Afterwards Luckily Unfortunately Oddly Naturally""".split()

FIRST_NAMES = """
Anna Ben Clara David Elena Felix Grace Hugo Ines James Kate Liam Maria Noah
Olga Peter Rosa Sam Tara Victor Wendy Yusuf Zoe Alice Bruno Chloe Daniel
""".split()
LAST_NAMES = """
Anders Baker Carter Dunn Ellis Fischer Gray Hughes Ito Jensen Keller Lopez
Moreau Novak Okafor Price Quinn Russo Silva Turner Varga Walsh Young Zimmer
""".split()
SYLLABLES = """
ar bel cor dan el fen gar hol in kel lor mar nor or pen quil ros sel tor
ul val wen yor zan ash brook cliff dale ford ham ley mere stow thorpe wick
""".split()

CATEGORIES = ["Gardening", "Travel", "Cooking", "Photography", "Software",
              "Cycling", "Books", "Local History", "Workshop", "Nature"]
NAV_ITEMS = ["Home", "About", "Archive", "Gardening", "Travel", "Cooking",
             "Photography", "Software", "Newsletter", "Contact"]

TEMPLATES = [
    "D A N Vd P D N .",
    "D N Vs D A N P D N .",
    "PRON Vd that D N Vd ADV A .",
    "SADV , D N Vd D N , C D A N Vd P NAME .",
    "P D A N , PRON Vd D N C Vd D N .",
    "D N P NAME Vs A , C D N Vs ADV .",
    "PRON ADV Vd NUM Ns P D N .",
    "SADV , DP Ns P NAME Vd ADV A .",
    "if D N Vs , D N Vs D A N .",
    "PRON Vd D N P D A N , which Vd ADV A .",
    "D A N Vd D N , but D N Vd A .",
    "NAME Vd that DP Ns P D N Vd A .",
    "when PRON Vd P NAME , D N was ADV A .",
    "PRON Vd D A N , D A N , C D N P D N .",
    "there is D A N P D N that PRON Vd ADV .",
    "why do DP Ns V D N P D N ?",
    "DP Ns Vd P D N P NAME , C PRON Vd D N .",
]


def _zipf_table(words: list[str], exponent: float = 1.0) -> tuple[list[str], list[float]]:
    cumulative = list(itertools.accumulate(1.0 / (rank + 1) ** exponent
                                           for rank in range(len(words))))
    return words, cumulative


_TABLES = {
    "N": _zipf_table(NOUNS, 0.8),
    "V": _zipf_table(VERBS, 0.8),
    "A": _zipf_table(ADJECTIVES, 0.8),
    "ADV": _zipf_table(ADVERBS, 0.9),
    "P": _zipf_table(PREPOSITIONS, 1.0),
    "PRON": _zipf_table(PRONOUNS, 0.7),
    "C": _zipf_table(CONJUNCTIONS, 0.8),
    "D": _zipf_table(DETERMINERS, 0.6),
    "DP": _zipf_table(PLURAL_DETERMINERS, 0.6),
    "SADV": _zipf_table(OPENERS, 0.5),
}


def _pick(rng: random.Random, kind: str) -> str:
    words, cumulative = _TABLES[kind]
    return words[bisect.bisect(cumulative, rng.random() * cumulative[-1])]


def _third_person(verb: str) -> str:
    if verb.endswith(("s", "sh", "ch", "x", "o")):
        return verb + "es"
    if verb.endswith("y") and verb[-2] not in "aeiou":
        return verb[:-1] + "ies"
    return verb + "s"


def _past(verb: str) -> str:
    if verb in IRREGULAR_PAST:
        return IRREGULAR_PAST[verb]
    if verb.endswith("e"):
        return verb + "d"
    if verb.endswith("y") and verb[-2] not in "aeiou":
        return verb[:-1] + "ied"
    if verb in ("stop", "plan", "ship", "wrap", "drop"):
        return verb + verb[-1] + "ed"
    return verb + "ed"


def _plural(noun: str) -> str:
    return _third_person(noun)


def _slot(rng: random.Random, token: str, names: list[str]) -> str:
    if token == "Vs":
        return _third_person(_pick(rng, "V"))
    if token == "Vd":
        return _past(_pick(rng, "V"))
    if token == "Ns":
        return _plural(_pick(rng, "N"))
    if token == "NAME":
        return rng.choice(names)
    if token == "NUM":
        return str(rng.choice([2, 3, 4, 5, 6, 7, 10, 12, 15, 20, 30, 40, 100]))
    if token in _TABLES:
        return _pick(rng, token)
    return token


def _join(words: list[str]) -> str:
    out: list[str] = []
    for word in words:
        if word in (",", ".", "?") and out:
            out[-1] += word
            continue
        if out and out[-1] == "a" and word[0] in "aeiou":
            out[-1] = "an"
        out.append(word)
    text = " ".join(out)
    return text[0].upper() + text[1:]


def sentence(rng: random.Random, names: list[str]) -> str:
    """One English-like sentence, sometimes with an inline link or emphasis."""
    words = [_slot(rng, token, names) for token in rng.choice(TEMPLATES).split()]
    roll = rng.random()
    if roll < 0.10:
        i = rng.randrange(len(words))
        if len(words[i]) > 3 and words[i].isalpha():
            if roll < 0.06:
                words[i] = f'<a href="/tag/{words[i].lower()}/">{words[i]}</a>'
            else:
                words[i] = f"<em>{words[i]}</em>"
    return _join(words)


def place_name(rng: random.Random) -> str:
    word = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 3)))
    return word.capitalize()


def person_name(rng: random.Random) -> str:
    return f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"


def title_for(seed: int, index: int) -> str:
    rng = random.Random(f"{seed}/title/{index}")
    noun, adj = _pick(rng, "N"), _pick(rng, "A")
    forms = [
        f"Notes on the {adj} {noun} of {place_name(rng)}",
        f"How we {_past(_pick(rng, 'V'))} the {adj} {noun}",
        f"A {adj} {noun} in {place_name(rng)}",
        f"{_plural(noun).capitalize()}, {_plural(_pick(rng, 'N'))} and a {adj} {_pick(rng, 'N')}",
        f"What I learned from a {adj} {noun}",
    ]
    return re.sub(r"\b([Aa]) ([aeiou])", r"\1n \2", rng.choice(forms))


def slugify(text: str) -> str:
    return "-".join("".join(c for c in w.lower() if c.isalnum()) for w in text.split())


def page_name(index: int, total: int) -> str:
    return f"{index:0{max(4, len(str(total)))}d}.html"


# --------------------------------------------------------------------------
# Page model
# --------------------------------------------------------------------------

@dataclass
class Block:
    kind: str                    # "p", "h2", "ul", "blockquote", "figure"
    items: list[str] = field(default_factory=list)


@dataclass
class Comment:
    author: str
    avatar: str
    date: str
    sentences: list[str]


@dataclass
class Post:
    seed: int
    index: int
    total: int
    title: str
    author: str
    published: dt.datetime
    modified: dt.datetime
    category: str
    tags: list[str]
    names: list[str]
    nonce: str
    blocks: list[Block]
    comments: list[Comment]
    related: list[int]


def _hex(rng: random.Random, digits: int) -> str:
    return f"{rng.getrandbits(digits * 4):0{digits}x}"


def _article_skeleton(rng: random.Random, names: list[str]) -> list[Block]:
    paragraphs = rng.randint(8, 15)
    blocks: list[Block] = []
    h2_after = set(rng.sample(range(1, paragraphs), rng.randint(2, 4)))
    list_after = rng.randrange(1, paragraphs)
    quote_after = rng.randrange(1, paragraphs) if rng.random() < 0.5 else -1
    figure_after = set(rng.sample(range(paragraphs), rng.randint(1, 3)))
    for p in range(paragraphs):
        if p in h2_after:
            blocks.append(Block("h2", [_join([_pick(rng, "A"), _pick(rng, "N"),
                                              _pick(rng, "P"), rng.choice(names)])]))
        blocks.append(Block("p"))
        if p == list_after:
            items = [_join([_pick(rng, "A"), _pick(rng, "N"), _pick(rng, "P"),
                            _pick(rng, "D"), _pick(rng, "N")])
                     for _ in range(rng.randint(3, 7))]
            blocks.append(Block("ul", items))
        if p in figure_after:
            blocks.append(Block("figure", [f"{rng.randint(1000, 9999)}", sentence(rng, names)]))
        if p == quote_after:
            blocks.append(Block("blockquote", [sentence(rng, names)
                                               for _ in range(rng.randint(1, 3))]))
    return blocks


def _fill_paragraphs(rng: random.Random, post: Post, budget: int) -> None:
    """Fill the empty paragraphs with about `budget` bytes of prose."""
    paragraphs = [b for b in post.blocks if b.kind == "p"]
    weights = [rng.uniform(0.6, 1.4) for _ in paragraphs]
    scale = max(budget, 0) / sum(weights)
    for block, weight in zip(paragraphs, weights):
        target, size = weight * scale, 0
        while size < target or not block.items:
            text = sentence(rng, post.names)
            block.items.append(text)
            size += len(text) + 1


def _comments(rng: random.Random, post: Post) -> list[Comment]:
    comments = []
    day = post.published
    for _ in range(rng.choice([0, 1, 2, 3, 4, 5, 6, 8, 10, 12])):
        day += dt.timedelta(hours=rng.randint(2, 200), minutes=rng.randint(0, 59))
        comments.append(Comment(person_name(rng), _hex(rng, 32), day.isoformat(),
                                [sentence(rng, post.names) for _ in range(rng.randint(1, 5))]))
    return comments


def build_post(seed: int, index: int, total: int, page_bytes: int = PAGE_BYTES) -> Post:
    """The deterministic model of post `index` (1-based) of `total`."""
    rng = random.Random(f"{seed}/post/{index}")
    published = dt.datetime(2019, 1, 1, 8) + dt.timedelta(
        days=index * 1.3, minutes=rng.randint(0, 600))
    names = [place_name(rng) for _ in range(rng.randint(3, 6))]
    names += [person_name(rng) for _ in range(rng.randint(1, 3))]
    post = Post(
        seed=seed, index=index, total=total, title=title_for(seed, index),
        author=person_name(rng), published=published, modified=published,
        category=rng.choice(CATEGORIES),
        tags=sorted({_pick(rng, "N") for _ in range(rng.randint(2, 6))}),
        names=names, nonce=_hex(rng, 10), blocks=_article_skeleton(rng, names),
        comments=[], related=rng.sample(range(1, total + 1), min(3, total)),
    )
    post.comments = _comments(rng, post)
    target = page_bytes * rng.uniform(0.95, 1.04)
    _fill_paragraphs(rng, post, int(target - len(render(post).encode())))
    return post


def edit_post(post: Post, rng: random.Random) -> str:
    """Apply one realistic content edit; returns a description of it."""
    post.modified = post.published + dt.timedelta(days=rng.randint(30, 900))
    paragraphs = [b for b in post.blocks if b.kind == "p"]
    if rng.random() < 0.5 and len(paragraphs) > 1:
        post.blocks.remove(rng.choice(paragraphs))
        return "removed a paragraph"
    block = rng.choice(paragraphs)
    block.items[rng.randrange(len(block.items))] = sentence(rng, post.names)
    return "reworded a sentence"


# --------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------

def _site_css(seed: int) -> str:
    rng = random.Random(f"{seed}/css")
    selectors = """body html a a:hover h1 h2 h3 p ul li blockquote pre code img
    .site-header .site-branding .site-title .site-description .main-navigation
    .main-navigation\x20ul .main-navigation\x20li .main-navigation\x20a .menu-toggle
    .site-content .content-area .entry-header .entry-title .entry-meta .posted-on
    .byline .entry-content .entry-footer .cat-links .tags-links .post-navigation
    .nav-previous .nav-next .comments-area .comment-list .comment-body
    .comment-author .comment-meta .reply .comment-respond .widget-area .widget
    .widget-title .widget_recent_entries .widget_categories .tagcloud
    .search-form .search-field .search-submit .site-footer .site-info
    .screen-reader-text .share-buttons .share-button .wp-block-image figcaption
    .alignleft .alignright .aligncenter .has-text-align-center""".split()
    props = [
        ("margin", lambda: f"{rng.randint(0, 48)}px {rng.choice(['0', 'auto'])}"),
        ("padding", lambda: f"{rng.randint(0, 32)}px {rng.randint(0, 32)}px"),
        ("color", lambda: f"#{_hex(rng, 6)}"),
        ("background-color", lambda: f"#{_hex(rng, 6)}"),
        ("font-size", lambda: f"{rng.choice([0.75, 0.875, 1, 1.125, 1.25, 1.5, 2])}rem"),
        ("line-height", lambda: str(rng.choice([1.2, 1.4, 1.5, 1.6, 1.75]))),
        ("font-weight", lambda: str(rng.choice([400, 500, 600, 700]))),
        ("display", lambda: rng.choice(["block", "flex", "inline-block", "none", "grid"])),
        ("border-bottom", lambda: f"{rng.randint(1, 3)}px solid #{_hex(rng, 6)}"),
        ("max-width", lambda: f"{rng.choice([640, 720, 960, 1140, 1280])}px"),
        ("text-decoration", lambda: rng.choice(["none", "underline"])),
        ("letter-spacing", lambda: f"{rng.choice([0, 0.01, 0.02, 0.05])}em"),
        ("transition", lambda: f"all {rng.choice([0.1, 0.2, 0.3])}s ease-in-out"),
    ]
    rules = []
    for selector in selectors:
        body = ";".join(f"{name}:{value()}" for name, value in rng.sample(props, rng.randint(3, 6)))
        rules.append(f"{selector}{{{body}}}")
    media = "@media screen and (max-width:782px){" + "".join(rules[::4]) + "}"
    return "\n".join(rules) + "\n" + media


_HEAD_SCRIPT = """window._wpemojiSettings = {"baseUrl":"https:\\/\\/s.w.org\\/images\\/core\\/emoji\\/14.0.0\\/72x72\\/","ext":".png","svgUrl":"https:\\/\\/s.w.org\\/images\\/core\\/emoji\\/14.0.0\\/svg\\/","svgExt":".svg","source":{"concatemoji":"\\/wp-includes\\/js\\/wp-emoji-release.min.js?ver=6.4.2"}};
!function(i,n){var o,s,e;function c(e){try{var t={supportTests:e,timestamp:(new Date).valueOf()};sessionStorage.setItem(o,JSON.stringify(t))}catch(e){}}function p(e,t,n){e.clearRect(0,0,e.canvas.width,e.canvas.height),e.fillText(t,0,0);var t=new Uint32Array(e.getImageData(0,0,e.canvas.width,e.canvas.height).data),r=(e.clearRect(0,0,e.canvas.width,e.canvas.height),e.fillText(n,0,0),new Uint32Array(e.getImageData(0,0,e.canvas.width,e.canvas.height).data));return t.every(function(e,t){return e===r[t]})}function u(e,t,n){switch(t){case"flag":return n(e,"\\ud83c\\udff3\\ufe0f\\u200d\\u26a7\\ufe0f","\\ud83c\\udff3\\ufe0f\\u200b\\u26a7\\ufe0f")?!1:!n(e,"\\ud83c\\uddfa\\ud83c\\uddf3","\\ud83c\\uddfa\\u200b\\ud83c\\uddf3");case"emoji":return!n(e,"\\ud83e\\udef1\\ud83c\\udffb\\u200d\\ud83e\\udef2\\ud83c\\udfff","\\ud83e\\udef1\\ud83c\\udffb\\u200b\\ud83e\\udef2\\ud83c\\udfff")}return!1}}(window,document);"""

_SHARE_SVG = ('<svg class="icon" width="20" height="20" viewBox="0 0 24 24" aria-hidden="true">'
              '<path d="M18 16.08c-.76 0-1.44.3-1.96.77L8.91 12.7c.05-.23.09-.46.09-.7s-.04-.47-.09-.7'
              'l7.05-4.11c.54.5 1.25.81 2.04.81 1.66 0 3-1.34 3-3s-1.34-3-3-3-3 1.34-3 3c0 .24.04.47.09.7'
              'L8.04 9.81C7.5 9.31 6.79 9 6 9c-1.66 0-3 1.34-3 3s1.34 3 3 3c.79 0 1.5-.31 2.04-.81'
              'l7.12 4.16c-.05.21-.08.43-.08.65 0 1.61 1.31 2.92 2.92 2.92s2.92-1.31 2.92-2.92-1.31-2.92-2.92-2.92z"/></svg>')


def _post_url(post_seed: int, index: int) -> str:
    return f"/{slugify(title_for(post_seed, index))}/"


def _head(post: Post, css: str) -> str:
    description = post.blocks and next(
        (b.items[0] for b in post.blocks if b.kind == "p" and b.items), post.title)
    url = f"https://{SITE_HOST}{_post_url(post.seed, post.index)}"
    json_ld = ('{"@context":"https://schema.org","@type":"BlogPosting",'
               f'"headline":"{post.title}","datePublished":"{post.published.isoformat()}",'
               f'"dateModified":"{post.modified.isoformat()}","author":{{"@type":"Person",'
               f'"name":"{post.author}"}},"mainEntityOfPage":"{url}","wordCount":'
               f'{sum(len(" ".join(b.items).split()) for b in post.blocks)}}}')
    return f"""<!DOCTYPE html>
<html lang="en-GB">
<head>
<meta charset="UTF-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{post.title} &#8211; {SITE_NAME}</title>
<meta name="description" content="{_plain(description)[:150]}">
<meta name="robots" content="index, follow, max-image-preview:large">
<link rel="canonical" href="{url}">
<meta property="og:locale" content="en_GB">
<meta property="og:type" content="article">
<meta property="og:title" content="{post.title}">
<meta property="og:url" content="{url}">
<meta property="og:site_name" content="{SITE_NAME}">
<meta property="article:published_time" content="{post.published.isoformat()}+00:00">
<meta property="article:modified_time" content="{post.modified.isoformat()}+00:00">
<meta name="twitter:card" content="summary_large_image">
<meta name="generator" content="WordPress 6.4.2">
<link rel="alternate" type="application/rss+xml" title="{SITE_NAME} &raquo; Feed" href="https://{SITE_HOST}/feed/">
<link rel="https://api.w.org/" href="https://{SITE_HOST}/wp-json/">
<link rel="alternate" type="application/json" href="https://{SITE_HOST}/wp-json/wp/v2/posts/{1000 + post.index}">
<link rel="shortlink" href="https://{SITE_HOST}/?p={1000 + post.index}">
<script type="application/ld+json">{json_ld}</script>
<script>{_HEAD_SCRIPT}</script>
<style id="theme-inline-css">
{css}
</style>
<link rel="stylesheet" id="wp-block-library-css" href="/wp-includes/css/dist/block-library/style.min.css?ver=6.4.2" media="all">
<link rel="stylesheet" id="theme-style-css" href="/wp-content/themes/fieldnotes/style.css?ver=2.3.1" media="all">
</head>
"""


def _header() -> str:
    items = "\n".join(
        f'<li id="menu-item-{40 + i}" class="menu-item menu-item-type-custom '
        f'menu-item-object-custom menu-item-{40 + i}"><a href="/{slugify(name)}/">{name}</a></li>'
        for i, name in enumerate(NAV_ITEMS))
    return f"""<body class="post-template-default single single-post single-format-standard">
<a class="skip-link screen-reader-text" href="#primary">Skip to content</a>
<div id="page" class="site">
<header id="masthead" class="site-header">
<div class="site-branding">
<p class="site-title"><a href="/" rel="home">{SITE_NAME}</a></p>
<p class="site-description">Gardens, journeys, kitchens and the odd bit of software</p>
</div>
<nav id="site-navigation" class="main-navigation" aria-label="Primary menu">
<button class="menu-toggle" aria-controls="primary-menu" aria-expanded="false">Menu</button>
<ul id="primary-menu" class="menu nav-menu">
{items}
</ul>
</nav>
</header>
"""


def _block_html(block: Block) -> str:
    if block.kind == "p":
        return f"<p>{' '.join(block.items)}</p>"
    if block.kind == "h2":
        return f'<h2 class="wp-block-heading">{block.items[0]}</h2>'
    if block.kind == "ul":
        return "<ul>\n" + "\n".join(f"<li>{item}</li>" for item in block.items) + "\n</ul>"
    if block.kind == "figure":
        return _figure_html(*block.items)
    return f'<blockquote class="wp-block-quote"><p>{" ".join(block.items)}</p></blockquote>'


def _plain(text: str) -> str:
    return re.sub(r"<[^>]+>", "", text)


def _figure_html(number: str, caption: str) -> str:
    base = f"/wp-content/uploads/{2019 + int(number) % 5}/{int(number) % 12 + 1:02d}/IMG_{number}"
    srcset = ", ".join(f"{base}-{w}x{w * 2 // 3}.jpg {w}w" for w in (300, 768, 1024, 1536))
    alt = _plain(caption)
    return (f'<figure class="wp-block-image size-large"><img decoding="async" loading="lazy" '
            f'width="1024" height="683" src="{base}-1024x683.jpg" alt="{alt}" '
            f'class="wp-image-{number}" srcset="{srcset}, {base}.jpg 2048w" '
            f'sizes="(max-width: 1024px) 100vw, 1024px">'
            f'<figcaption class="wp-element-caption">{caption}</figcaption></figure>')


def _article(post: Post) -> str:
    body = "\n\n".join(_block_html(b) for b in post.blocks)
    tags = ", ".join(f'<a href="/tag/{t}/" rel="tag">{t}</a>' for t in post.tags)
    shares = "\n".join(
        f'<a class="share-button share-{s}" href="https://{s}.example/share?u=https%3A%2F%2F'
        f'{SITE_HOST}%2F{post.index}" rel="nofollow noopener" target="_blank">{_SHARE_SVG}'
        f'<span class="screen-reader-text">Share on {s}</span></a>'
        for s in ("mastodon", "bluesky", "facebook", "linkedin", "email"))
    return f"""<div id="content" class="site-content">
<main id="primary" class="site-main">
<article id="post-{1000 + post.index}" class="post-{1000 + post.index} post type-post status-publish format-standard hentry category-{slugify(post.category)}">
<header class="entry-header">
<h1 class="entry-title">{post.title}</h1>
<div class="entry-meta">
<span class="posted-on">Posted on <a href="{_post_url(post.seed, post.index)}" rel="bookmark"><time class="entry-date published" datetime="{post.published.isoformat()}+00:00">{post.published:%d %B %Y}</time><time class="updated" datetime="{post.modified.isoformat()}+00:00">{post.modified:%d %B %Y}</time></a></span>
<span class="byline"> by <span class="author vcard"><a class="url fn n" href="/author/{slugify(post.author)}/">{post.author}</a></span></span>
</div>
</header>
<div class="entry-content">
{body}
</div>
<footer class="entry-footer">
<span class="cat-links">Posted in <a href="/category/{slugify(post.category)}/" rel="category tag">{post.category}</a></span>
<span class="tags-links">Tagged {tags}</span>
<div class="share-buttons">
{shares}
</div>
</footer>
</article>
"""


def _comments_html(post: Post) -> str:
    items = "\n".join(f"""<li id="comment-{post.index * 10 + i}" class="comment even thread-even depth-1">
<article class="comment-body">
<footer class="comment-meta"><div class="comment-author vcard"><img alt="" src="https://secure.gravatar.com/avatar/{c.avatar}?s=60&amp;d=mm&amp;r=g" class="avatar avatar-60 photo" height="60" width="60" loading="lazy"><b class="fn">{c.author}</b> <span class="says">says:</span></div>
<div class="comment-metadata"><time datetime="{c.date}+00:00">{c.date[:10]}</time></div></footer>
<div class="comment-content"><p>{" ".join(c.sentences)}</p></div>
<div class="reply"><a rel="nofollow" class="comment-reply-link" href="#comment-{post.index * 10 + i}">Reply</a></div>
</article>
</li>""" for i, c in enumerate(post.comments))
    heading = f"{len(post.comments)} thoughts on &ldquo;{post.title}&rdquo;"
    listing = f'<h2 class="comments-title">{heading}</h2>\n<ol class="comment-list">\n{items}\n</ol>' if post.comments else ""
    return f"""<div id="comments" class="comments-area">
{listing}
<div id="respond" class="comment-respond">
<h3 id="reply-title" class="comment-reply-title">Leave a Reply</h3>
<form action="/wp-comments-post.php" method="post" id="commentform" class="comment-form">
<p class="comment-notes">Your email address will not be published. Required fields are marked <span class="required">*</span></p>
<p class="comment-form-comment"><label for="comment">Comment</label><textarea id="comment" name="comment" cols="45" rows="8" maxlength="65525" required></textarea></p>
<p class="comment-form-author"><label for="author">Name</label><input id="author" name="author" type="text" size="30" maxlength="245" required></p>
<p class="comment-form-email"><label for="email">Email</label><input id="email" name="email" type="email" size="30" maxlength="100" required></p>
<p class="form-submit"><input name="submit" type="submit" id="submit" class="submit" value="Post Comment"><input type="hidden" name="comment_post_ID" value="{1000 + post.index}" id="comment_post_ID"><input type="hidden" name="_wpnonce" value="{post.nonce}"></p>
</form>
</div>
</div>
</main>
"""


def _link_list(seed: int, indices: list[int]) -> str:
    return "\n".join(f'<li><a href="{_post_url(seed, i)}">{title_for(seed, i)}</a></li>' for i in indices)


def _sidebar(post: Post) -> str:
    recent = list(range(post.total, max(post.total - 5, 0), -1))
    categories = "\n".join(
        f'<li class="cat-item cat-item-{3 + i}"><a href="/category/{slugify(c)}/">{c}</a></li>'
        for i, c in enumerate(CATEGORIES))
    months = "\n".join(f'<li><a href="/{2024 - m // 12}/{12 - m % 12:02d}/">'
                       f'{dt.date(2024 - m // 12, 12 - m % 12, 1):%B %Y}</a></li>' for m in range(12))
    return f"""<aside id="secondary" class="widget-area">
<section id="search-2" class="widget widget_search"><form role="search" method="get" class="search-form" action="/"><label><span class="screen-reader-text">Search for:</span><input type="search" class="search-field" placeholder="Search &hellip;" value="" name="s"></label><input type="submit" class="search-submit" value="Search"></form></section>
<section id="recent-posts-2" class="widget widget_recent_entries"><h2 class="widget-title">Recent Posts</h2>
<ul>
{_link_list(post.seed, recent)}
</ul></section>
<section id="related-posts" class="widget widget_related"><h2 class="widget-title">Related</h2>
<ul>
{_link_list(post.seed, post.related)}
</ul></section>
<section id="categories-2" class="widget widget_categories"><h2 class="widget-title">Categories</h2>
<ul>
{categories}
</ul></section>
<section id="archives-2" class="widget widget_archive"><h2 class="widget-title">Archives</h2>
<ul>
{months}
</ul></section>
</aside>
</div>
"""


def _footer(post: Post) -> str:
    return f"""<footer id="colophon" class="site-footer">
<div class="site-info">
<a href="https://wordpress.org/">Proudly powered by WordPress</a>
<span class="sep"> | </span>
&copy; 2019&ndash;2024 {SITE_NAME}. Theme: Fieldnotes by Example Studio.
</div>
</footer>
</div>
<script id="theme-navigation-js" src="/wp-content/themes/fieldnotes/js/navigation.js?ver=2.3.1"></script>
<script id="comment-reply-js" src="/wp-includes/js/comment-reply.min.js?ver=6.4.2" async></script>
<script>
var fieldnotesSettings = {{"ajaxUrl":"\\/wp-admin\\/admin-ajax.php","postId":{1000 + post.index},"nonce":"{post.nonce}","i18n":{{"menu":"Menu","close":"Close"}}}};
(function(){{var t=document.getElementById("site-navigation");if(!t)return;var b=t.getElementsByTagName("button")[0];b.addEventListener("click",function(){{t.classList.toggle("toggled");b.setAttribute("aria-expanded",b.getAttribute("aria-expanded")==="true"?"false":"true")}})}})();
</script>
</body>
</html>
"""


_CSS_CACHE: dict[int, str] = {}


def render(post: Post) -> str:
    css = _CSS_CACHE.setdefault(post.seed, _site_css(post.seed))
    return "".join([_head(post, css), _header(), _article(post), _comments_html(post),
                    _sidebar(post), _footer(post)])


# --------------------------------------------------------------------------
# Site generation
# --------------------------------------------------------------------------

def write_site(out_dir: Path, total: int, seed: int = 1) -> list[str]:
    """Write posts/NNNN.html for posts 1..total; returns their URL paths."""
    posts_dir = out_dir / "posts"
    posts_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(1, total + 1):
        name = page_name(index, total)
        (posts_dir / name).write_text(render(build_post(seed, index, total)), encoding="utf-8")
        paths.append(f"/posts/{name}")
    return paths


def pages_to_edit(total: int, fraction: float, seed: int = 1) -> list[int]:
    """The deterministic choice of `fraction` of the posts 1..total."""
    rng = random.Random(f"{seed}/edits")
    return sorted(rng.sample(range(1, total + 1), max(1, round(total * fraction))))


def edit_site(out_dir: Path, total: int, fraction: float, seed: int = 1) -> list[int]:
    """Rewrite pages_to_edit(...) with one content edit each; returns them.

    Each edited file gets an mtime at least two seconds newer than before, so
    servers that derive ETag / Last-Modified from mtime report a change.
    """
    chosen = pages_to_edit(total, fraction, seed)
    for index in chosen:
        post = build_post(seed, index, total)
        edit_post(post, random.Random(f"{seed}/edit/{index}"))
        path = out_dir / "posts" / page_name(index, total)
        old_mtime = path.stat().st_mtime
        path.write_text(render(post), encoding="utf-8")
        new_mtime = max(path.stat().st_mtime, old_mtime + 2)
        os.utime(path, (new_mtime, new_mtime))
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--posts", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    paths = write_site(args.out_dir, args.posts, args.seed)
    print(f"wrote {len(paths)} pages under {args.out_dir / 'posts'}")


if __name__ == "__main__":
    main()
