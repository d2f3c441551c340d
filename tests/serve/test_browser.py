"""The web UI in headless Chromium against a real uvicorn server with scripted engines: chat with
a streamed reply, retry it into a branch, then grow a loom tree and walk it with the keyboard."""
from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from simulacra.engine.base import Engine
from simulacra.engine.fake import FakeBackend
from simulacra.engine.spec import load_engine
from simulacra.loom import Loom
from simulacra.types import Capabilities, Chunk, TokenLogprob

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run", "--disable-sync"]
EM_REPLY = "Hello, traveller. The tide is turning."
ENDINGS = [" the sea was calm that night.", " a storm rolled in from the west.", " nobody had come in years."]

pytestmark = pytest.mark.slow


def _need_browser():
    """In CI a missing browser fails the test; elsewhere it is skipped with the reason."""
    ci = bool(os.environ.get("CI"))
    if not Path(CHROMIUM).exists() and not ci:
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium); CI is unset so this is skipped")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        if ci:
            raise
        pytest.skip("playwright is not installed (pip install 'simulacra[dev]')")
    return sync_playwright


class ScriptedLogprobs(FakeBackend):
    """Different endings in turn, every piece with a made-up logprob and alternatives."""

    def __init__(self):
        super().__init__(lambda prompt: ENDINGS[(len(self.prompts) - 1) % len(ENDINGS)])
        self.capabilities = Capabilities(can_logprobs=True)

    async def _stream(self, reply, sampling):
        async for chunk in super()._stream(reply, sampling):
            if chunk.text:
                lp = -0.35 * (len(chunk.text) % 6)
                chunk = Chunk(chunk.text, chunk.tokens, (TokenLogprob(chunk.text, lp, ((chunk.text, lp), (" the", -2.0))),))
            yield chunk


@pytest.fixture
def server(tmp_path, kit):
    from simulacra.serve import create_app

    em = tmp_path / "ems" / "mara"
    em.mkdir(parents=True)
    (em / "config.yaml").write_text(f'continuation_model: "fake:{EM_REPLY}"\n')
    load = lambda spec: Engine(ScriptedLogprobs(), name=spec) if spec == "scripted" else load_engine(spec)  # noqa: E731
    app = create_app([em], ["scripted"], loader=load)
    app.state.loom = Loom(tmp_path / "loom.db")
    with kit.running(app) as url:
        yield url.removesuffix("/v1"), app.state.loom
    app.state.loom.close()


def screenshot(page, tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    page.screenshot(path=str(path), full_page=True)
    if os.environ.get("SIMULACRA_SCREENSHOTS"):
        folder = Path(os.environ["SIMULACRA_SCREENSHOTS"])
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, folder / name)
    assert path.stat().st_size > 10_000  # a rendered page, not a blank one
    return path


def selected(page) -> int:
    return int(page.locator("#text .node.selected").get_attribute("data-id"))


def test_chat_then_loom_in_a_real_browser(server, tmp_path):
    sync_playwright = _need_browser()
    url, loom = server
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 820})
            page.set_default_timeout(15_000)
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(url + "/")

            # chat: the em's reply streams in; retry makes a second branch of it
            page.wait_for_selector("#model option[value='mara']", state="attached")
            page.select_option("#model", "mara")
            page.fill("#chat-input", "Hello? Is anyone there?")
            page.press("#chat-input", "Enter")
            reply = page.locator(".message.assistant:not(.streaming) .content")
            reply.wait_for()
            assert reply.inner_text() == EM_REPLY
            assert page.locator(".message.user .content").inner_text() == "Hello? Is anyone there?"
            page.locator(".message.assistant button[title^='retry']").click()
            page.locator(".message.assistant .branch").wait_for()
            assert page.locator(".message.assistant .branch").inner_text() == "2/2"
            page.locator(".message.assistant:not(.streaming) .content").wait_for()
            page.locator(".message.user button[title^='edit']").click()
            page.fill(".message.user textarea", "Hello? Who keeps this light?")
            page.click(".message.user button:has-text('Save as a branch')")
            page.locator(".message.assistant:not(.streaming) .content").wait_for()
            assert page.locator(".message.user .branch").inner_text() == "2/2"
            assert page.locator(".message.user .content").inner_text() == "Hello? Who keeps this light?"
            assert page.locator(".message.assistant .content").inner_text() == EM_REPLY
            assert page.locator(".message.assistant .branch").count() == 0  # a fresh branch has one reply
            page.locator(".message.user button[title='previous branch']").click()
            assert page.locator(".message.user .content").inner_text() == "Hello? Is anyone there?"
            assert page.locator(".message.assistant .branch").inner_text() == "2/2"  # the old branch is kept
            screenshot(page, tmp_path, "chat.png")

            # loom: a new tree, three continuations, then walk them with the keyboard
            page.click("#tab-loom")
            page.fill("#new-tree-text", "The lighthouse keeper looked out and saw that")
            page.click("#new-tree button")
            page.locator("#text .node.selected").wait_for()
            root = selected(page)
            page.select_option("#model", "scripted")
            page.fill("#gen-n", "3")
            page.click("#generate")
            page.wait_for_function("document.querySelectorAll('#children li').length === 3")
            kids = [int(x) for x in page.locator("#children li").evaluate_all("els => els.map(e => e.dataset.id)")]
            assert kids == [n.id for n in loom.children(root)]

            screenshot(page, tmp_path, "loom-children.png")
            page.keyboard.press("ArrowDown")
            assert selected(page) == kids[0]
            page.keyboard.press("ArrowRight")
            assert selected(page) == kids[1] != root
            page.keyboard.press("b")
            page.locator("#text .node.selected.bookmarked").wait_for()
            assert loom.node(kids[1]).bookmarked
            assert page.locator("#text").inner_text() == loom.full_text(kids[1])
            assert page.locator("#text .node.selected .tok").count() > 1  # coloured by probability
            page.keyboard.press("ArrowUp")
            assert selected(page) == root
            page.keyboard.press("ArrowDown")  # back to the child last visited, not the first
            assert selected(page) == kids[1]
            assert "branch 2 of 3" in page.locator("#where").inner_text()
            screenshot(page, tmp_path, "loom.png")
            page.keyboard.press("e")
            page.fill("#edit-text", " the lamp had gone out.")
            page.click("#edit-save")
            page.wait_for_function(f"document.querySelector('#text .node.selected').dataset.id != '{kids[1]}'")
            edited = selected(page)
            assert loom.node(edited).meta["edited_from"] == kids[1] and loom.node(kids[1]).text == ENDINGS[1]
            assert page.locator("#text").inner_text() == "The lighthouse keeper looked out and saw that the lamp had gone out."
            assert "branch 4 of 4" in page.locator("#where").inner_text()
            assert errors == []
        finally:
            browser.close()
