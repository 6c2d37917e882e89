"""The web page in headless Chromium (Debian's, through Playwright) against a live server with an
iALS model of ml-latest-small: search, pick five movies, get ten recommendations, none a pick."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytest.importorskip("playwright", reason="the browser test needs playwright (dev extra)")
pytest.importorskip("pytest_playwright", reason="the browser test needs pytest-playwright")
from playwright.sync_api import expect  # noqa: E402

# pytest-playwright's own base_url fixture trips a pytest 9 deprecation warning
pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestRemovedIn10Warning")

SCREENSHOTS = Path(__file__).resolve().parents[2] / "benchmarks" / "out"


def picked_ids(page) -> list[int]:
    return [int(x) for x in page.locator('#grid .card[aria-pressed="true"]').evaluate_all(
        "nodes => nodes.map(n => n.dataset.id)")]


def test_pick_five_and_get_ten_recommendations(page, live_real_server):
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(live_real_server.url + "/")
    page.wait_for_selector("#grid .card")
    assert page.locator("#grid .card").count() == 48

    # search, and pick the first hit
    page.fill("#search", "matrix")
    expect(page.locator('#grid .card[aria-label^="The Matrix (1999)"]')).to_have_count(1)
    page.locator('#grid .card[aria-label^="The Matrix (1999)"]').click()
    picks = picked_ids(page)
    assert picks == [2571]

    # back to browsing; hover shows the details; pick four more (one with the keyboard)
    page.fill("#search", "")
    expect(page.locator("#grid .card")).to_have_count(48)
    first = page.locator("#grid .card").first
    first.hover()
    info = first.locator(".info")
    expect(info).to_have_css("opacity", "1")
    assert re.search(r"\d{4} · .+\d+ ratings?", info.inner_text().replace("\n", " "))
    for i in range(3):
        page.locator("#grid .card").nth(i).click()
    page.locator("#grid .card").nth(3).focus()
    page.keyboard.press("Enter")
    picks = [2571, *picked_ids(page)]
    assert len(set(picks)) == 5
    assert page.inner_text("#pick-count") == "5 picks:"
    assert page.locator("#pick-list .chip").count() == 5

    page.click("#recommend")
    expect(page.locator("#rec-grid li")).to_have_count(10)
    recs = [int(x) for x in page.locator("#rec-grid .card").evaluate_all(
        "nodes => nodes.map(n => n.dataset.id)")]
    assert len(set(recs)) == 10 and not set(recs) & set(picks)
    reasons = page.locator("#rec-grid .reason").all_inner_texts()
    picked_titles = page.locator("#pick-list .chip").all_inner_texts()
    assert all(r.startswith("Because you liked ") and r[len("Because you liked "):] in
               picked_titles for r in reasons)
    page.wait_for_timeout(300)  # let the smooth scroll settle for the screenshot
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shot = SCREENSHOTS / "serving-page.png"
    page.screenshot(path=str(shot))
    assert shot.stat().st_size > 10_000
    assert not errors, errors


def test_phone_width_and_genre_filter(page, live_real_server):
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(live_real_server.url + "/")
    page.wait_for_selector("#grid .card")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.select_option("#genre", "Film-Noir")
    expect(page.locator("#browse-title")).to_contain_text("Film-Noir")
    labels = page.locator("#grid .card").evaluate_all("ns => ns.map(n => n.ariaLabel)")
    assert labels and all("Film-Noir" in label for label in labels)
    page.locator("#grid .card").first.click()
    assert page.locator("#recommend").is_enabled()
    page.screenshot(path=str(SCREENSHOTS / "serving-phone.png"))


def test_search_by_words_and_the_result_count(page, live_real_server):
    page.goto(live_real_server.url + "/")
    page.wait_for_selector("#grid .card")
    expect(page.locator("#more")).to_be_visible()  # 48 of thousands shown
    for query, title in (("lord rings", "The Lord of the Rings: The Fellowship of the Ring"),
                         ("matrix the", "The Matrix (1999)"),
                         ("Matrix, The", "The Matrix (1999)"),
                         ("shawshenk", "The Shawshank Redemption (1994)")):
        page.fill("#search", query)
        expect(page.locator(f'#grid .card[aria-label^="{title}"]')).to_have_count(1)
    # one result: "1 movie", and no "Show more" under it
    page.fill("#search", "shawshank redemption")
    expect(page.locator("#grid .card")).to_have_count(1)
    expect(page.locator("#status")).to_have_text("1 movie")
    expect(page.locator("#more")).to_be_hidden()
    page.fill("#search", "toy story")
    expect(page.locator("#status")).to_have_text(re.compile(r"^[2-9] movies$"))
    expect(page.locator("#more")).to_be_hidden()


def test_switch_model_and_see_which_answered(page, live_two_models):
    page.goto(live_two_models.url + "/")
    page.wait_for_selector("#grid .card")
    select = page.locator("#model")
    expect(select).to_be_visible()
    assert select.locator("option").all_inner_texts() == ["ials", "pop (popularity)"]
    page.locator("#grid .card").first.click()
    page.click("#recommend")
    expect(page.locator("#answered")).to_have_text("Answered by ials")
    select.select_option("pop")
    expect(page.locator("#results")).to_be_hidden()
    with page.expect_request(lambda r: "/recommendations" in r.url) as request:
        page.click("#recommend")
    assert "model=pop" in request.value.url
    expect(page.locator("#answered")).to_have_text("Answered by pop (popularity)")
    expect(page.locator("#rec-grid li")).to_have_count(10)


def test_docs_render_offline(page, live_real_server):
    """Swagger UI and ReDoc with every request outside the server refused."""
    outside: list[str] = []

    def only_local(route):
        if route.request.url.startswith(live_real_server.url):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    page.route("**/*", only_local)
    page.goto(live_real_server.url + "/docs")
    expect(page.locator(".swagger-ui .opblock").first).to_be_visible(timeout=20_000)
    assert page.locator(".swagger-ui .opblock").count() >= 9
    page.goto(live_real_server.url + "/redoc")
    expect(page.get_by_text("Top k for a new person").first).to_be_attached(timeout=20_000)
    assert not outside, outside


def test_picks_keep_the_order_they_were_made_in(page, live_real_server):
    """The pick bar numbers picks in picking order, a pick taken off and on again moves last,
    the request sends them in that order, and a reload keeps it (a sequential model reads the
    last pick as the most recent)."""
    page.goto(live_real_server.url + "/")
    page.wait_for_selector("#grid .card")
    cards = page.locator("#grid .card")
    ids = [int(cards.nth(i).get_attribute("data-id")) for i in (5, 0, 3)]
    for movie_id in ids:  # picked 5th, 1st, 4th poster: not the grid's order
        page.locator(f'#grid .card[data-id="{movie_id}"]').click()
    page.locator(f'#grid .card[data-id="{ids[0]}"]').click()  # off...
    page.locator(f'#grid .card[data-id="{ids[0]}"]').click()  # ...and on again: now last
    order = [ids[1], ids[2], ids[0]]
    titles = [page.locator(f'#grid .card[data-id="{m}"] .t').inner_text().rsplit(" (", 1)[0]
              for m in order]
    expect(page.locator("#pick-list .pick-n")).to_have_text(["1.", "2.", "3."])
    expect(page.locator("#pick-list .chip")).to_have_text(titles)
    with page.expect_request(lambda r: r.url.endswith("/recommendations")
                             or "/recommendations?" in r.url) as request:
        page.click("#recommend")
    assert request.value.post_data_json["liked"] == order
    page.reload()
    page.wait_for_selector("#grid .card")
    expect(page.locator("#pick-list .chip")).to_have_text(titles)
