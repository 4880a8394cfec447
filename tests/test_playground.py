"""The playground at / in a real headless browser (Debian's chromium, driven by Playwright): a full
conversation with kernelgate/exec, its figure and a file download, the containers view, errors."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from gateway.testing import serve

from .conftest import gateway_settings

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists() and not os.environ.get("CI"),
    reason="no chromium here (images/setup.sh test installs it; CI always runs this)",
)
CODE = """print('hello from the playground')
import matplotlib.pyplot as plt
plt.plot([1, 3, 2])
plt.show()
open('report.txt', 'w').write('the report')"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        # --no-sandbox: Chromium's own sandbox needs user namespaces that a root CI runner lacks.
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser, data_dir: Path) -> Iterator[Page]:
    with serve(gateway_settings(data_dir)) as base_url:
        context = browser.new_context(accept_downloads=True, viewport={"width": 1280, "height": 800})
        opened = context.new_page()
        opened.set_default_timeout(60_000)
        opened.goto(f"{base_url}/")
        yield opened
        context.close()


def _send(page: Page, text: str) -> None:
    page.fill("#input", text)
    page.click("#send")


def test_a_conversation_runs_code_shows_its_figure_and_downloads_its_file(page: Page, tmp_path: Path) -> None:
    """Send code; its logs and figure appear; the cited file downloads; the next turn runs in the same
    container; the containers view shows it with its memory and files, and deletes it."""
    _send(page, CODE)
    first = page.locator(".turn").nth(0)
    expect(first.locator(".call pre.code")).to_contain_text("plt.plot([1, 3, 2])")
    expect(first.locator("pre.logs")).to_contain_text("hello from the playground")
    figure = first.locator(".call img")
    expect(figure).to_have_attribute("src", re.compile(r"^data:image/png;base64,"))
    assert figure.evaluate("img => img.complete && img.naturalWidth > 0")  # a real PNG the browser decoded
    expect(first.locator(".answer a.file")).to_have_text("report.txt")
    if screenshot := os.environ.get("KERNELGATE_SCREENSHOT"):  # the README's picture
        page.locator(".container.current").wait_for()
        page.set_viewport_size({"width": 1280, "height": 1060})
        page.locator(".turn").first.evaluate("turn => turn.scrollIntoView()")
        page.screenshot(path=screenshot)

    with page.expect_download() as downloading:
        first.locator(".answer a.file").first.click()
    saved = tmp_path / "report.txt"
    downloading.value.save_as(saved)
    assert saved.read_text() == "the report"

    _send(page, "print(open('report.txt').read())")
    expect(page.locator(".turn").nth(1).locator("pre.logs")).to_contain_text("the report")
    expect(page.locator("#send")).to_be_enabled()

    card = page.locator(".container.current")
    expect(card).to_contain_text("running")
    expect(card.locator(".meta")).to_contain_text(re.compile(r"\d+ MB of 1g · expires in \d+ min"))
    expect(card.locator("li")).to_contain_text("report.txt")
    container_id = card.get_attribute("data-container")
    card.get_by_role("button", name="delete").click()
    expect(page.locator(f"[data-container='{container_id}']")).to_have_count(0)


def test_an_upload_reaches_the_container(page: Page, tmp_path: Path) -> None:
    """A file uploaded in the containers view is in /mnt/data for the next call."""
    _send(page, "print('ready')")
    expect(page.locator("pre.logs")).to_contain_text("ready")
    upload = tmp_path / "numbers.csv"
    upload.write_text("a\n1\n2\n")
    card = page.locator(".container.current")
    card.locator("input[type=file]").set_input_files(str(upload))
    expect(page.locator(".container.current li")).to_contain_text("numbers.csv")
    _send(page, "import glob\nprint(open(glob.glob('/mnt/data/*numbers.csv')[0]).read().split())")
    expect(page.locator(".turn").nth(1).locator("pre.logs")).to_contain_text("['a', '1', '2']")


def test_errors_are_shown_as_errors(page: Page) -> None:
    """A model no upstream serves: the API's 400 message, in an alert."""
    page.fill("#model", "no-such-model")
    _send(page, "print(1)")
    alert = page.locator(".turn [role=alert]")
    expect(alert).to_contain_text("400")
    expect(alert).to_contain_text("needs an upstream provider")
