"""A page driver for the workbench's browser test: headless Chromium through
Selenium, waiting for each new page, keeping screenshots and checking what
people using a keyboard or a screen reader need."""

from __future__ import annotations

import time
from dataclasses import dataclass

from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.support import ROOT

SHOTS = ROOT / "test-output" / "workbench"
DESK = (1366, 768)
PHONE = (390, 844)
WAIT_S = 30


@dataclass
class Browser:
    driver: WebDriver
    base: str

    def open(self, path: str) -> None:
        self.driver.get(self.base + path)

    def find(self, element_id: str) -> WebElement:
        return self.driver.find_element(By.ID, element_id)

    def wait_for(self, element_id: str, timeout_s: float = WAIT_S) -> WebElement:
        wait = WebDriverWait(self.driver, timeout_s, poll_frequency=0.2)
        return wait.until(lambda d: d.find_element(By.ID, element_id))

    def fill(self, element_id: str, value: str) -> None:
        field = self.find(element_id)
        field.clear()
        field.send_keys(value)

    def choose(self, element_id: str, value: str) -> None:
        Select(self.find(element_id)).select_by_value(value)

    def click(self, element_id: str) -> None:
        """Click what loads a new page, and wait until the new page is there."""
        self.press(self.find(element_id))

    def press(self, element: WebElement) -> None:
        # A mark on the old document's window: gone once the next page loaded.
        self.driver.execute_script("window.wbOldPage = true")
        element.click()
        WebDriverWait(self.driver, WAIT_S, poll_frequency=0.1).until(
            lambda d: d.execute_script(
                "return !window.wbOldPage && document.readyState === 'complete'"
            )
        )

    def text(self, element_id: str) -> str:
        return str(self.wait_for(element_id).text).strip()

    def check_accessible(self) -> None:
        """A title, a label for every field a person fills in, a name for every
        button, and nothing that keyboard focus skips (positive tabindex)."""
        problems = self.driver.execute_script(
            """
            const found = [];
            if (!document.title.trim()) found.push("no title");
            for (const f of document.querySelectorAll("input, select, textarea")) {
              if (f.type === "hidden" || f.closest("[aria-hidden=true]")) continue;
              if (!f.labels || !f.labels.length) found.push("no label: " + (f.id || f.name));
            }
            for (const b of document.querySelectorAll("button, a[href]")) {
              if (!b.textContent.trim()) found.push("no name: " + b.outerHTML.slice(0, 60));
            }
            for (const e of document.querySelectorAll("[tabindex]")) {
              if (e.tabIndex > 0) found.push("tabindex > 0: " + (e.id || e.tagName));
            }
            return found;
            """
        )
        assert not problems, f"{self.driver.current_url}: {problems}"

    def shot(self, name: str, size: tuple[int, int] = DESK) -> None:
        """The whole page at this width (at least the screen's height): the
        window grows by its own frame, which headless Chromium counts in."""
        self.driver.set_window_size(*size)
        height, frame = self.driver.execute_script(
            "window.scrollTo(0, 0); return [document.documentElement.scrollHeight,"
            " window.outerHeight - window.innerHeight]"
        )
        self.driver.set_window_size(size[0], max(size[1], int(height)) + int(frame))
        SHOTS.mkdir(parents=True, exist_ok=True)
        self.driver.save_screenshot(str(SHOTS / f"{name}.png"))
        self.driver.set_window_size(*size)
        self.check_accessible()

    def sign_in(self, key: str) -> None:
        """By keyboard: the key field has the focus, Enter submits."""
        self.driver.set_window_size(*DESK)
        self.open("/signin")
        focused = self.driver.switch_to.active_element
        assert focused.get_attribute("id") == "key", "the key field has the focus"
        self.driver.execute_script("window.wbOldPage = true")
        focused.send_keys(key + Keys.ENTER)
        WebDriverWait(self.driver, WAIT_S, poll_frequency=0.1).until(
            lambda d: d.execute_script("return !window.wbOldPage")
        )
        self.wait_for("who")

    def sign_out(self) -> None:
        self.click("signout")
        assert "您已安全退出" in self.text("notice")

    def reload_until(self, path: str, css: str, timeout_s: float = WAIT_S) -> WebElement:
        """Open the page again until the element is there (an event still on its way)."""
        deadline = time.monotonic() + timeout_s
        while True:
            self.open(path)
            found = self.driver.find_elements(By.CSS_SELECTOR, css)
            if found:
                return found[0]
            assert time.monotonic() < deadline, f"{css} never appeared on {path}"
            time.sleep(0.5)
