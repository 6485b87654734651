"""The streaming renderer: blocks rendered once, the tail each batch, and what
the page ends up with equal to the whole reply rendered at once."""

from __future__ import annotations

import random

import pytest

from rmm_tray.desktop.render import StreamRenderer, render_markdown

FENCED = """Here is some code:

```python
def f(x):

    return x + 1


print(f(2))
```

And a paragraph after it, with `inline code` and **bold**.

~~~
tilde fence

still inside
~~~

# A heading

Done.
"""

PARAGRAPHS = "\n\n".join(f"Paragraph {i} with *some* text and a [link](https://example.com/{i})."
                         for i in range(40)) + "\n"


def reply_23k() -> str:
    """A long reply: paragraphs, fenced code with blank lines, headings, a table."""
    parts = []
    i = 0
    while sum(map(len, parts)) < 23_000:
        parts.append(f"## Section {i}\n\nSome prose about step {i}, with `code` and _emphasis_.\n"
                     "It goes on for a second line.\n")
        parts.append(f"```python\ndef step_{i}():\n    x = {i}\n\n    return x * 2\n```\n")
        parts.append("| a | b |\n|---|---|\n| 1 | 2 |\n")
        i += 1
    return "\n".join(parts)


def stream(text: str, sizes: list[int]) -> tuple[str, list[str], list[str]]:
    """Feed ``text`` in pieces; what the page would hold at the end, and the
    appended blocks and tails of every batch."""
    r = StreamRenderer()
    so_far = ""
    appended: list[str] = []
    tails: list[str] = []
    pos = 0
    k = 0
    while pos < len(text):
        n = sizes[k % len(sizes)]
        so_far += text[pos:pos + n]
        pos += n
        k += 1
        blocks, tail = r.update(so_far)
        appended.append(blocks)
        tails.append(tail)
    return "".join(appended) + tails[-1], appended, tails


@pytest.mark.parametrize("text", [FENCED, PARAGRAPHS, "one line, no newline", "a\n\n\n\nb\n"])
@pytest.mark.parametrize("sizes", [[1], [2, 3], [7], [64], [10_000]])
def test_pieces_of_any_size_end_as_the_whole_rendering(text: str, sizes: list[int]) -> None:
    page, _, _ = stream(text, sizes)
    assert page == render_markdown(text)


def test_random_pieces_of_a_23k_reply() -> None:
    text = reply_23k()
    assert len(text) >= 23_000
    rng = random.Random(7)
    page, appended, tails = stream(text, [rng.randint(1, 40) for _ in range(500)])
    assert page == render_markdown(text)
    # Each batch sends little: the tail is one block at most, never the reply so far.
    assert max(len(t) for t in tails) < 1_000
    assert sum(len(a) for a in appended) < 2 * len(render_markdown(text))


def test_a_fence_is_not_split_at_its_blank_lines() -> None:
    _, appended, tails = stream(FENCED, [1])
    blocks = [a for a in appended if a]
    code = next(b for b in blocks if "<pre>" in b)
    assert "return" in code and "print" in code, "the whole fenced block at once"
    # While the fence is open, the tail holds it (rendered as code, not as paragraphs).
    open_fence = [t for t in tails if "def" in t and "print" in t]
    assert open_fence and all("<pre>" in t for t in open_fence)


def test_list_items_and_indented_continuations_stay_with_their_list() -> None:
    text = "- one\n\n  more about one\n\n- two\n\n      code in a list\n\nAfter.\n"
    page, appended, _ = stream(text, [1])
    # The indented lines never start a block of their own (they would be code or a stray paragraph).
    for block in appended:
        assert not block.startswith("<pre>") and "more about one" not in block.split("<li>")[0]
    assert "After." in page
    # A list broken at its blank lines shows the same items; the final message puts it right.
    assert page.count("<li>") == render_markdown(text).count("<li>")


def test_streamed_html_is_as_safe_as_the_whole() -> None:
    text = ("<script>alert(1)</script>\n\n[x](javascript:alert(1))\n\n![p](javascript:1)\n\n"
            "<img src=x onerror=alert(1)>\n")
    _, appended, tails = stream(text, [3])
    for html in [*appended, *tails]:
        assert "<script" not in html and "<img" not in html  # escaped: shown as text
        assert "href=\"javascript" not in html and " src=" not in html.replace("&lt;img src=", "")
    assert any("&lt;script&gt;" in h for h in [*appended, *tails])
