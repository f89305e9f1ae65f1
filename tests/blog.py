"""A realistic corporate blog post (WordPress-like markup) whose page chrome changes on every
request — timestamps, nonces, share counts, a rotating 'trending' list — for the tests."""
from __future__ import annotations

import html
import random

TITLE = "Federal agencies continue to advance capabilities with Azure Government"

ICE = ("This can help employees make more informed decisions faster, with Azure Government enabling them to "
       "process data on edge devices or utilize deep learning capabilities to accelerate facial recognition "
       "and identification.")

PARAGRAPHS = [
    "Agencies across the federal government are moving mission-critical workloads to the cloud, and we are "
    "proud to support them with the security and compliance they require.",
    "Immigration and Customs Enforcement (ICE) is one of the agencies taking advantage of Azure Government to "
    "modernize the way it handles data across its operations.",
    ICE,
    "Azure Government also received its Authority to Operate at the highest impact level for unclassified "
    "data, which gives agencies confidence in moving sensitive workloads.",
    "We look forward to continuing to innovate with our government customers in the months ahead.",
]


READ_NEXT = ["How agencies modernize securely", "Five lessons from the field", "Cloud at the edge",
             "A year of Azure Government", "Serving citizens faster", "Inside our compliance program"]


def post(paragraphs: list[str] | None = None, title: str = TITLE, seed: int = 0, noisy: bool = False,
         tip: str = "") -> str:
    """The post with the given article paragraphs; `seed` varies everything that is chrome.
    `noisy` adds chrome inside the article that no class name gives away (a render stamp and a
    rotating "read next" box); `tip` adds a box whose text the caller changes at will."""
    rng = random.Random(seed)
    paragraphs = PARAGRAPHS if paragraphs is None else paragraphs
    nonce = "%032x" % rng.getrandbits(128)
    shares = rng.randint(10, 5000)
    trending = rng.sample(["Cloud security tips", "AI for good", "Build recap", "Teams update", "Quantum news",
                           "Datacenter tour", "Partner stories"], 3)
    stamp = f"2018-06-{rng.randint(10, 28):02d}T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:00Z"
    body = "\n".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)
    return f"""<!DOCTYPE html>
<html lang="en-US"><head><meta charset="UTF-8">
<title>{html.escape(title)} - Microsoft Government Blog</title>
<meta name="wp-nonce" content="{nonce}">
<script>var wpData = {{"nonce": "{nonce}", "generated": "{stamp}"}};</script>
<style>.share-count{{font-weight:bold}}</style>
</head>
<body class="post-template-default single single-post">
<header id="masthead" class="site-header"><a href="/">Microsoft Government Blog</a>
<nav class="main-navigation"><ul><li><a href="/topics">Topics</a></li><li><a href="/about">About</a></li></ul></nav>
</header>
<div id="content" class="site-content">
<div class="cache-info">Page generated {stamp} · request {nonce[:8]}</div>
<main id="main" class="site-main">
<article id="post-12345" class="post type-post status-publish">
<header class="entry-header"><h1 class="entry-title">{html.escape(title)}</h1>
<div class="entry-meta">Posted on <time datetime="2018-01-24">January 24, 2018</time> by Tom Keane</div></header>
{f'<p class="render-info">Rendered {stamp} by node {nonce[:6]}</p>' if noisy else ''}
<div class="share-bar"><span class="share-count">{shares} shares</span> <a href="/share?n={nonce}">Share</a></div>
<div class="entry-content">
{body}
</div>
{f'<div class="read-next"><h3>Read next</h3><p>{rng.choice(READ_NEXT)}</p></div>' if noisy else ''}
{f'<div class="tip-box"><p>{html.escape(tip)}</p></div>' if tip else ''}
<footer class="entry-footer">Tags: <a href="/tag/azure">Azure</a>, <a href="/tag/government">Government</a></footer>
</article>
<section class="comments"><h2>{rng.randint(0, 90)} comments</h2></section>
</main>
<aside id="secondary" class="widget-area"><h2>Trending</h2><ul>{''.join(f'<li>{t}</li>' for t in trending)}</ul></aside>
</div>
<footer id="colophon"><p>© Microsoft 2018 · Rendered in {rng.randint(50, 400)} ms</p></footer>
</body></html>
"""
