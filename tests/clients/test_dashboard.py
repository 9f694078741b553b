"""The built-in web dashboard in a real headless browser (Debian's chromium, driven by
Selenium through chromedriver) against a running broker.

Every page loads without a console error (the browser's own log is read after each page), a
job enqueued through the API shows up and its progress bar follows the progress a worker
posts (over Server-Sent Events, without a reload), a redrive clicked in the UI moves dead
letters back to their queue, a group's lag shows once it falls behind, a job that fails for
good raises a firing dlq_not_empty alarm on the alarms page and the overview, a queue's charts
and a stream's partitions show the broker's numbers, each status tab lists exactly that
status's jobs (also when clicked while a refresh waits), and an unknown UI path answers the
404 page. Screenshots of every page, at 1280 px and at phone width, are saved to
`<target>/dashboard-screenshots/` (the path is printed).

No console error is allowed: every page, the alarms page included, must load cleanly.
"""

from __future__ import annotations

import os
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

from harness import REPO, http_json, unique, wait_until

CHROMIUM = os.environ.get("OMNIBUS_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("OMNIBUS_CHROMEDRIVER", "/usr/bin/chromedriver")
DESKTOP = (1280, 900)
PHONE = (390, 844)
UI_TIMEOUT_S = 15.0


def screenshot_dir() -> Path:
    target = Path(os.environ.get("CARGO_TARGET_DIR") or REPO / "target")
    if not target.is_absolute():
        target = REPO / target
    folder = target / "dashboard-screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def screenshots() -> Path:
    folder = screenshot_dir()
    for stale in folder.glob("*.png"):  # only this run's pictures stay
        stale.unlink()
    print(f"\ndashboard screenshots in {folder}")
    return folder


@pytest.fixture(scope="module")
def browser():
    for path in (CHROMIUM, CHROMEDRIVER):
        if not Path(path).exists():
            pytest.fail(
                f"{path} is missing: install Debian's chromium and chromium-driver "
                "(scripts/client-tests.sh does)",
                pytrace=False,
            )
    options = Options()
    options.binary_location = CHROMIUM
    options.add_argument("--headless=new")
    # Root in a container: Chromium's sandbox needs user namespaces it may not have.
    options.add_argument("--no-sandbox")
    options.add_argument("--disable-dev-shm-usage")
    options.add_argument("--disable-gpu")
    options.add_argument(f"--window-size={DESKTOP[0]},{DESKTOP[1]}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def console_errors(driver) -> list[str]:
    """The browser log's errors since the last call."""
    errors = []
    for entry in driver.get_log("browser"):
        if entry["level"] != "SEVERE":
            continue
        errors.append(entry["message"])
    return errors


def find(driver, css: str, timeout: float = UI_TIMEOUT_S):
    return wait_until(
        lambda: next(iter(driver.find_elements(By.CSS_SELECTOR, css)), None),
        timeout,
        f"{css} on {driver.current_url}",
    )


def text_of(driver, css: str) -> str:
    try:
        return " ".join(e.text for e in driver.find_elements(By.CSS_SELECTOR, css))
    except StaleElementReferenceException:
        return ""  # redrawn by a poll meanwhile: ask again


def wait_for_text(driver, css: str, expected: str, timeout: float = UI_TIMEOUT_S) -> None:
    wait_until(
        lambda: expected in text_of(driver, css),
        timeout,
        f"{expected!r} in {css} on {driver.current_url} (has {text_of(driver, css)!r})",
    )


def attribute_of(driver, css: str, name: str):
    try:
        element = next(iter(driver.find_elements(By.CSS_SELECTOR, css)), None)
        return element.get_attribute(name) if element is not None else None
    except StaleElementReferenceException:
        return None


def click(driver, css: str, timeout: float = UI_TIMEOUT_S) -> None:
    """Clicks `css`, again if a poll redrew it between finding and clicking."""

    def attempt():
        try:
            find(driver, css, timeout).click()
            return True
        except StaleElementReferenceException:
            return False

    wait_until(attempt, timeout, f"a click on {css}")


def save(driver, folder: Path, name: str) -> None:
    driver.save_screenshot(str(folder / f"{name}.png"))


def make_queue(http: str, **settings) -> str:
    name = unique("dash-queue")
    http_json("POST", f"{http}/v1/queues", {"name": name, **settings})
    return name


def enqueue_job(http: str, queue: str, payload) -> str:
    answer = http_json(
        "POST", f"{http}/v1/queues/{queue}/jobs", {"name": "resize", "payload": payload}
    )
    return answer["jobs"][0]["id"]


def dead_letter(http: str, queue: str, values: list[str]) -> None:
    """Enqueues `values` and terminates each delivery: they end up as dead letters."""
    http_json(
        "POST",
        f"{http}/v1/queues/{queue}/messages",
        {"messages": [{"value": v, "headers": {"tenant": "t-1"}} for v in values]},
    )
    deliveries = http_json(
        "POST", f"{http}/v1/queues/{queue}/receive", {"worker": "w", "max": len(values)}
    )["messages"]
    assert len(deliveries) == len(values)
    for delivery in deliveries:
        http_json(
            "POST",
            f"{http}/v1/queues/{queue}/messages/{delivery['id']}/term",
            {"attempt": delivery["attempt"], "reason": "unparseable"},
        )
    wait_until(
        lambda: http_json("GET", f"{http}/v1/queues/{queue}")["dead_letter_depth"] == len(values),
        10,
        "the dead letters",
    )


def dead_job(http: str, queue: str) -> str:
    """Enqueues a job on `queue` (max_deliver 1) and fails its one attempt: the job is dead and
    its message a dead letter."""
    job = enqueue_job(http, queue, {"image": "corrupt"})
    leased = http_json(
        "POST", f"{http}/v1/queues/{queue}/jobs/fetch", {"worker": "w", "max": 1}
    )["jobs"]
    assert [j["id"] for j in leased] == [job]
    http_json(
        "POST",
        f"{http}/v1/queues/{queue}/jobs/{job}/fail",
        {"attempt": leased[0]["attempt"], "error": "cannot decode the image"},
    )
    wait_until(
        lambda: http_json("GET", f"{http}/v1/queues/{queue}")["dead_letter_depth"] == 1,
        10,
        "the failed job's dead letter",
    )
    assert http_json("GET", f"{http}/v1/queues/{queue}/jobs/{job}")["status"] == "dead"
    return job


def firing_alarm(http: str, rule: str, target: str):
    """The firing alarm of `rule` on `target` from `GET /v1/alerts`, or None."""
    alarms = http_json("GET", f"{http}/v1/alerts?state=firing")["alerts"]
    return next((a for a in alarms if (a["rule"], a["target"]) == (rule, target)), None)


def table_rows(driver, container_css: str) -> list[list[str]]:
    """The body rows of the table inside `container_css`, each as its cells' shown texts
    (read in one script, so a poll redrawing the table cannot tear a row)."""
    return driver.execute_script(
        """const table = document.querySelector(arguments[0] + ' table');
        if (!table) return [];
        return [...table.querySelectorAll('tbody tr')].map(
          (row) => [...row.cells].map((cell) => cell.innerText.trim()));""",
        container_css,
    )


def card_table_rows(driver, heading: str) -> list[list[str]]:
    """The body rows of the table in the card titled `heading`."""
    return driver.execute_script(
        """const card = [...document.querySelectorAll('#page section.card')].find(
          (section) => section.querySelector('h2')?.textContent === arguments[0]);
        const table = card && card.querySelector('table');
        if (!table) return [];
        return [...table.querySelectorAll('tbody tr')].map(
          (row) => [...row.cells].map((cell) => cell.innerText.trim()));""",
        heading,
    )


def chart_line(driver, series: str):
    """One chart line as drawn: its card's title, its points as (x, y) pairs, the y-axis
    maximum's label, the y of the zero line, and the legend's text; None while not drawn."""
    drawn = driver.execute_script(
        """const line = document.querySelector(`polyline[data-series="${arguments[0]}"]`);
        if (!line) return null;
        const svg = line.ownerSVGElement;
        const axes = svg.querySelectorAll('line.axis');
        return {
          card: line.closest('section.card').querySelector('h2').textContent,
          points: line.getAttribute('points'),
          max: svg.querySelector('text.axis-label').textContent,
          zero: Number(axes[0].getAttribute('y2')),
          top: Number(axes[0].getAttribute('y1')),
          legend: line.closest('figure').querySelector('figcaption').textContent,
        };""",
        series,
    )
    if drawn is None:
        return None
    drawn["points"] = [tuple(float(n) for n in p.split(",")) for p in drawn["points"].split()]
    return drawn


def test_every_page_loads_without_console_errors(browser, broker, http, screenshots):
    stream = unique("dash-stream")
    broker.create_stream(stream, 3)
    broker.publish(stream, [{"key": f"k{i}", "value": f"v{i}"} for i in range(30)])
    group = unique("dash-group")
    http_json(
        "POST",
        f"{http}/v1/groups/{group}/offsets",
        {"offsets": [{"stream": stream, "partition": 0, "offset": 1}]},
    )
    queue = make_queue(http, max_deliver=1)
    job = enqueue_job(http, queue, {"image": 1})
    failing = make_queue(http, max_deliver=1)
    dead_letter(http, failing, ["broken"])
    # The default dlq_not_empty rule fires for it: the alarms page then has a table to draw.
    wait_until(
        lambda: firing_alarm(http, "dlq_not_empty", failing),
        UI_TIMEOUT_S,
        f"the dlq_not_empty alarm of {failing} in the API",
    )
    pages = {
        "root": ("/", "#health"),
        "overview": ("/ui/overview", "#disk-free"),
        "streams": ("/ui/streams", f"a[href='/ui/streams/{stream}']"),
        "stream": (f"/ui/streams/{stream}", "table"),
        "groups": ("/ui/groups", f"a[href='/ui/groups/{group}']"),
        "group": (f"/ui/groups/{group}", "#total-lag"),
        "queues": ("/ui/queues", f"a[href='/ui/queues/{queue}']"),
        "queue": (f"/ui/queues/{queue}", f"tr[data-job='{job}']"),
        "dead-letters": (f"/ui/queues/{failing}/dlq", "tr[data-offset]"),
        "job": (f"/ui/queues/{queue}/jobs/{job}", "#job-status .status"),
        "alarms": ("/ui/alerts", "#alerts table"),
    }
    console_errors(browser)  # start from a clean log
    for width, height, suffix in [(*DESKTOP, "desktop"), (*PHONE, "phone")]:
        browser.set_window_size(width, height)
        for name, (path, ready) in pages.items():
            browser.get(http + path)
            find(browser, ready)
            find(browser, "svg polyline, #page table, #page .empty, #page ol")
            time.sleep(0.3)  # let a poll or two land, so their errors would show
            assert console_errors(browser) == [], f"console errors on {path} ({suffix})"
            assert browser.find_elements(By.ID, "alarms-unavailable") == [], (
                f"{path}: this broker has the alarms API"
            )
            assert browser.find_element(By.ID, "banner").is_displayed() is False, (
                f"{path}: {browser.find_element(By.ID, 'banner').text}"
            )
            # Readable on a phone: wide tables scroll inside their card, the page does not.
            overflow = browser.execute_script(
                "return document.documentElement.scrollWidth - window.innerWidth"
            )
            assert overflow <= 0, f"{path} is {overflow}px wider than a {width}px window"
            save(browser, screenshots, f"{name}-{suffix}")
    browser.set_window_size(*DESKTOP)


def test_overview_shows_the_publish_rate_from_successive_polls(browser, broker, http, screenshots):
    stream = unique("dash-rate")
    broker.create_stream(stream, 1)
    browser.get(http + "/ui/overview")
    find(browser, "#disk-free")
    deadline = time.monotonic() + 6
    while time.monotonic() < deadline:
        broker.publish(stream, [{"value": "x"}] * 20)
        time.sleep(0.2)
    polyline = "polyline[data-series='published']"
    wait_until(
        lambda: len((attribute_of(browser, polyline, "points") or "").split()) >= 2,
        UI_TIMEOUT_S,
        "a published-rate line with two points",
    )
    assert "published" in text_of(browser, ".legend")
    save(browser, screenshots, "overview-publishing")
    assert console_errors(browser) == []


def test_a_job_enqueued_through_the_api_appears_and_its_progress_bar_moves(
    browser, http, screenshots
):
    queue = make_queue(http)
    browser.get(f"{http}/ui/queues/{queue}")
    find(browser, "#jobs")
    job = enqueue_job(http, queue, {"image": 42})
    # Live: the queue page shows the new job without a reload.
    click(browser, f"tr[data-job='{job}'] a")
    wait_for_text(browser, "#job-status", "waiting")
    leased = http_json(
        "POST", f"{http}/v1/queues/{queue}/jobs/fetch", {"worker": "w1", "max": 1}
    )["jobs"]
    assert [j["id"] for j in leased] == [job]
    attempt = leased[0]["attempt"]
    wait_for_text(browser, "#job-status", "active")
    progress = "#job-progress"
    for percent in (10, 60):
        http_json(
            "POST",
            f"{http}/v1/queues/{queue}/jobs/{job}/progress",
            {"attempt": attempt, "progress": {"percent": percent}},
        )
        wait_until(
            lambda: attribute_of(browser, progress, "aria-valuenow") == str(percent),
            UI_TIMEOUT_S,
            f"the progress bar at {percent}",
        )
        width = browser.execute_script(
            "return document.querySelector('#job-progress .fill').style.width"
        )
        assert width == f"{percent}%"
        save(browser, screenshots, f"job-progress-{percent}")
    assert "progress" in text_of(browser, "#job-events")
    http_json(
        "POST",
        f"{http}/v1/queues/{queue}/jobs/{job}/complete",
        {"attempt": attempt, "result": {"thumbnail": "t.png"}},
    )
    wait_for_text(browser, "#job-status", "completed")
    wait_for_text(browser, "#job-result", "t.png")
    save(browser, screenshots, "job-completed")
    assert console_errors(browser) == []


def test_cancel_and_retry_from_the_job_page(browser, http, screenshots):
    queue = make_queue(http)
    job = enqueue_job(http, queue, "plain text")
    browser.get(f"{http}/ui/queues/{queue}/jobs/{job}")
    wait_for_text(browser, "#job-status", "waiting")
    click(browser, "#cancel-job")
    wait_for_text(browser, "#job-status", "cancelled")
    assert http_json("GET", f"{http}/v1/queues/{queue}/jobs/{job}")["status"] == "cancelled"
    click(browser, "#retry-job")
    wait_for_text(browser, "#job-action-result", "Retried as job")
    new_id = find(browser, "#job-action-result a").text
    assert new_id != job
    retried = http_json("GET", f"{http}/v1/queues/{queue}/jobs/{new_id}")
    assert (retried["status"], retried["payload"]) == ("waiting", "plain text")
    save(browser, screenshots, "job-retried")
    assert console_errors(browser) == []


def test_a_redrive_from_the_ui_moves_dead_letters_back_to_their_queue(browser, http, screenshots):
    queue = make_queue(http, max_deliver=1)
    dead_letter(http, queue, ["first", "second", "third"])
    browser.get(f"{http}/ui/queues/{queue}/dlq")
    find(browser, "tr[data-offset]")
    # Inspect one: its payload and headers open under its row.
    click(browser, "tr[data-offset='0']")
    wait_for_text(browser, ".letter-detail", "first")
    wait_for_text(browser, ".letter-detail", "omnibus.dlq.reason")
    wait_for_text(browser, ".letter-detail", "tenant")
    save(browser, screenshots, "dead-letter-opened")

    # One letter alone...
    click(browser, "button.redrive-one[data-offset='1']")
    wait_until(
        lambda: http_json("GET", f"{http}/v1/queues/{queue}")["ready"] == 1,
        UI_TIMEOUT_S,
        "one message back in the queue",
    )
    wait_for_text(browser, "tr[data-offset='1']", "redriven")
    assert http_json("GET", f"{http}/v1/queues/{queue}")["dead_letter_depth"] == 2
    # ...then the rest: the one already redriven does not go twice.
    click(browser, "#redrive-all")
    wait_for_text(browser, "#redrive-result", "2 dead letters moved back")
    info = http_json("GET", f"{http}/v1/queues/{queue}")
    assert (info["ready"], info["dead_letter_depth"]) == (3, 0)
    values = sorted(
        m["value"]
        for m in http_json(
            "POST", f"{http}/v1/queues/{queue}/receive", {"worker": "w", "max": 10}
        )["messages"]
    )
    assert values == ["first", "second", "third"]
    wait_for_text(browser, "#dead-letters-waiting", "0")
    save(browser, screenshots, "dead-letters-redriven")
    assert console_errors(browser) == []


def test_the_dead_letter_page_shows_the_newest_and_pages_to_older_ones(browser, http):
    queue = make_queue(http, max_deliver=1)
    dead_letter(http, queue, [f"letter-{i}" for i in range(130)])
    browser.get(f"{http}/ui/queues/{queue}/dlq")
    find(browser, "tr[data-offset='129']")
    assert browser.find_elements(By.CSS_SELECTOR, "tr[data-offset='29']") == []
    assert len(browser.find_elements(By.CSS_SELECTOR, "tr[data-offset]")) == 100
    click(browser, "#older-letters")
    find(browser, "tr[data-offset='0']")
    click(browser, "#newest-letters")
    find(browser, "tr[data-offset='129']")
    assert console_errors(browser) == []


def test_lag_shows_after_a_group_falls_behind(browser, broker, http, screenshots):
    stream = unique("dash-lag")
    broker.create_stream(stream, 1)
    broker.publish(stream, [{"value": f"r{i}"} for i in range(10)])
    group = unique("dash-lagging")
    http_json(
        "POST",
        f"{http}/v1/groups/{group}/offsets",
        {"offsets": [{"stream": stream, "partition": 0, "offset": 10}]},
    )
    browser.get(f"{http}/ui/groups/{group}")
    wait_for_text(browser, "#total-lag", "0")
    # The group falls behind: the page shows it on its next poll, no reload.
    broker.publish(stream, [{"value": f"s{i}"} for i in range(25)])
    wait_for_text(browser, "#total-lag", "25")
    wait_until(
        lambda: len((attribute_of(browser, "polyline[data-series='total']", "points") or "").split())
        >= 2,
        UI_TIMEOUT_S,
        "a lag line",
    )
    browser.get(f"{http}/ui/groups")
    wait_for_text(browser, "#page table", "25")
    save(browser, screenshots, "group-lagging")
    assert console_errors(browser) == []


def test_unknown_ui_routes_answer_the_404_page(browser, http, screenshots):
    request = urllib.request.Request(f"{http}/ui/no/such/page", headers={"accept": "text/html"})
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=10)
    assert caught.value.code == 404
    assert caught.value.headers["content-type"].startswith("text/html")
    browser.get(f"{http}/ui/no/such/page")
    wait_for_text(browser, "#not-found", "404")
    save(browser, screenshots, "not-found")
    # The document's own 404 is logged by the browser; nothing else may be.
    errors = [e for e in console_errors(browser) if "/ui/no/such/page" not in e]
    assert errors == []


def test_a_dead_lettered_job_raises_a_dlq_alarm_on_the_alarms_page_and_the_overview(
    browser, http, screenshots
):
    queue = make_queue(http, max_deliver=1)
    browser.get(f"{http}/ui/alerts")
    find(browser, "#alerts table, #alerts .empty")
    dead_job(http, queue)
    # The default rule fires without configuration; the page shows it on a poll, no reload.

    def alarm_row():
        rows = table_rows(browser, "#alerts")
        return next((row for row in rows if len(row) > 3 and row[3] == queue), None)

    row = wait_until(alarm_row, UI_TIMEOUT_S, f"a row for {queue} on the alarms page")
    state, rule, kind, target = row[:4]
    assert (state, rule, kind, target) == ("firing", "dlq_not_empty", "dlq_depth", queue), row
    assert row[4] == "1", f"the dead-letter depth shown: {row}"
    api = firing_alarm(http, "dlq_not_empty", queue)
    assert api is not None and row[-1] == api["message"], (row, api)
    save(browser, screenshots, "alarms-dlq-firing")

    browser.get(f"{http}/ui/overview")
    wait_for_text(browser, "#firing-alarms li", f"dlq_not_empty {queue}:")
    item = next(
        li.text for li in browser.find_elements(By.CSS_SELECTOR, "#firing-alarms li")
        if f" {queue}:" in li.text
    )
    assert item.startswith("firing dlq_not_empty"), item
    assert api["message"] in item, item
    save(browser, screenshots, "overview-dlq-firing")
    assert console_errors(browser) == []


def test_an_alarms_tab_clicked_while_a_refresh_waits_never_shows_the_other_tabs_alarms(
    browser, http
):
    queue = make_queue(http, max_deliver=1)
    dead_job(http, queue)
    wait_until(lambda: firing_alarm(http, "dlq_not_empty", queue), UI_TIMEOUT_S, "the alarm")
    http_json("POST", f"{http}/v1/queues/{queue}/dlq/redrive", {})
    wait_until(
        lambda: firing_alarm(http, "dlq_not_empty", queue) is None,
        UI_TIMEOUT_S,
        "the alarm resolved once its dead letter was redriven",
    )
    browser.get(f"{http}/ui/alerts")
    click(browser, "button[data-state='all']")

    def resolved_row():
        return any(r[0] == "resolved" and r[3] == queue for r in table_rows(browser, "#alerts"))

    wait_until(resolved_row, UI_TIMEOUT_S, f"the resolved alarm of {queue} under 'all'")
    browser.execute_script(HOLD_API_CALLS)
    click(browser, "button[data-state='all']")  # a refresh of 'all' now waits for the broker
    wait_until(
        lambda: browser.execute_script("return window.heldCalls.length") >= 1,
        UI_TIMEOUT_S,
        "the refresh's call held",
    )
    browser.execute_script(RECORD_DRAWINGS, "#alerts", [0, 3])
    click(browser, "button[data-state='firing']")
    browser.execute_script(RELEASE_API_CALLS)

    def firing_drawn():
        drawings = browser.execute_script("return window.drawings") or []
        last = drawings[-1] if drawings else None
        return last and last["tab"] == "firing" and all(r[0] == "firing" for r in last["rows"])

    # The poll loop is stopped: only the click's own refresh can draw the firing tab.
    wait_until(firing_drawn, UI_TIMEOUT_S, "the firing tab drawn with the firing alarms only")
    drawings = browser.execute_script("return window.drawings")
    for drawing in drawings:
        if drawing["tab"] == "firing":
            assert all(r[0] == "firing" for r in drawing["rows"]), (
                f"{drawing['rows']} drawn under the firing tab"
            )
    assert queue not in [target for _, target in drawings[-1]["rows"]]
    assert console_errors(browser) == []


def test_the_queue_page_draws_its_depth_and_rate_charts_from_the_queue(browser, http, screenshots):
    queue = make_queue(http)
    browser.get(f"{http}/ui/queues/{queue}")
    first = wait_until(lambda: chart_line(browser, "ready"), UI_TIMEOUT_S, "the ready line")
    assert first["card"] == "Depth"
    for job in range(3):
        enqueue_job(http, queue, {"image": job})

    def ready_at_three():
        line = chart_line(browser, "ready")
        return line if line and "ready: 3" in line["legend"] and len(line["points"]) >= 2 else None

    ready = wait_until(ready_at_three, UI_TIMEOUT_S, "the ready line at 3")
    # The line starts on the zero line (an empty queue) and its newest point sits at 3 on
    # the y-axis the chart labels.
    y_max = float(ready["max"])
    plot_height = ready["zero"] - ready["top"]
    assert ready["points"][0][1] == pytest.approx(ready["zero"], abs=0.1), ready
    three = ready["zero"] - 3 / y_max * plot_height
    assert ready["points"][-1][1] == pytest.approx(three, abs=0.1), ready
    # x grows with time across the chart.
    xs = [x for x, _ in ready["points"]]
    assert xs == sorted(xs) and xs[-1] > xs[0], ready
    for series in ("leased", "delayed", "dead letters"):
        assert chart_line(browser, series)["card"] == "Depth", series

    def enqueued_above_zero():
        line = chart_line(browser, "enqueued")
        return line if line and min(y for _, y in line["points"]) < line["zero"] - 0.5 else None

    enqueued = wait_until(enqueued_above_zero, UI_TIMEOUT_S, "an enqueued rate above zero")
    assert enqueued["card"] == "Rates"
    assert enqueued["max"].endswith("/s"), enqueued
    legend_rate = enqueued["legend"].split("enqueued: ", 1)[1].split("/s", 1)[0]
    assert float(legend_rate) > 0, enqueued["legend"]
    for series in ("delivered", "completed", "failed"):
        assert chart_line(browser, series)["card"] == "Rates", series
    save(browser, screenshots, "queue-charts")
    assert console_errors(browser) == []


def queue_with_a_completed_and_a_waiting_job(http: str) -> tuple[str, str, str]:
    """A new queue, the id of its completed job and of its waiting one."""
    queue = make_queue(http)
    done = enqueue_job(http, queue, {"image": "done"})
    waiting = enqueue_job(http, queue, {"image": "waiting"})
    leased = http_json(
        "POST", f"{http}/v1/queues/{queue}/jobs/fetch", {"worker": "w", "max": 1}
    )["jobs"]
    assert [j["id"] for j in leased] == [done]
    http_json(
        "POST",
        f"{http}/v1/queues/{queue}/jobs/{done}/complete",
        {"attempt": leased[0]["attempt"], "result": "ok"},
    )
    return queue, done, waiting


def shown_jobs(driver) -> list[tuple[str, str]]:
    """The queue page's job rows as (id, status), sorted."""
    return sorted((row[0], row[2]) for row in table_rows(driver, "#jobs"))


# Stops the page's poll loop (its interval is the page's only timer left running) and holds
# every call to the API until RELEASE_API_CALLS: a refresh can then be caught waiting for the
# broker without racing a timer.
HOLD_API_CALLS = """
const last = setTimeout(() => {}, 0);
for (let id = 1; id <= last; id++) clearInterval(id);
window.heldCalls = [];
window.realFetch = window.fetch;
window.fetch = (...args) => new Promise((resolve, reject) => {
  window.heldCalls.push(() => window.realFetch(...args).then(resolve, reject));
});
"""
RELEASE_API_CALLS = """
window.fetch = window.realFetch;
for (const call of window.heldCalls.splice(0)) call();
"""
# Records, after every change the page makes, the selected tab and the rows of the table in
# `arguments[0]` (the cells at the indexes in `arguments[1]`).
RECORD_DRAWINGS = """
const [container, columns] = arguments;
window.drawings = [];
const snapshot = () => ({
  tab: document.querySelector('#page [role=tab][aria-selected=true]')?.textContent,
  rows: [...document.querySelectorAll(container + ' tbody tr')].map(
    (row) => columns.map((index) => row.cells[index].innerText.trim())),
});
new MutationObserver(() => window.drawings.push(snapshot()))
  .observe(document.getElementById('page'), { childList: true, subtree: true });
"""


def test_the_status_filter_lists_exactly_the_jobs_of_that_status(browser, http, screenshots):
    queue, done, waiting = queue_with_a_completed_and_a_waiting_job(http)
    browser.get(f"{http}/ui/queues/{queue}")
    wait_until(
        lambda: shown_jobs(browser) == sorted([(done, "completed"), (waiting, "waiting")]),
        UI_TIMEOUT_S,
        f"both jobs under 'all' (shows {shown_jobs(browser)})",
    )
    for status, job in (("completed", done), ("waiting", waiting)):
        click(browser, f"button[data-status='{status}']")
        wait_until(
            lambda: attribute_of(browser, f"button[data-status='{status}']", "aria-selected")
            == "true",
            UI_TIMEOUT_S,
            f"the {status} tab selected",
        )
        wait_until(
            lambda: shown_jobs(browser) == [(job, status)],
            UI_TIMEOUT_S,
            f"only job {job} under {status} (shows {shown_jobs(browser)})",
        )
        assert text_of(browser, f"button[data-status='{status}']") == f"{status} (1)"
        save(browser, screenshots, f"queue-jobs-{status}")
    # A status with no job says so instead of showing a table.
    click(browser, "button[data-status='dead']")
    wait_for_text(browser, "#jobs .empty", "No dead job.")
    assert table_rows(browser, "#jobs") == []
    assert console_errors(browser) == []


def test_a_status_tab_clicked_while_a_refresh_waits_shows_only_that_status(browser, http):
    """A refresh that read the API before the click must neither draw its rows under the
    clicked tab nor be the last word: the clicked tab's own refresh follows it at once."""
    queue, done, waiting = queue_with_a_completed_and_a_waiting_job(http)
    both = sorted([[done, "completed"], [waiting, "waiting"]])
    browser.get(f"{http}/ui/queues/{queue}")
    wait_until(lambda: shown_jobs(browser) == [tuple(r) for r in both], UI_TIMEOUT_S, "both jobs")
    browser.execute_script(HOLD_API_CALLS)
    click(browser, "button[data-status='all']")  # a refresh of 'all' now waits for the broker
    wait_until(
        lambda: browser.execute_script("return window.heldCalls.length") >= 2,
        UI_TIMEOUT_S,
        "the refresh's calls held",
    )
    browser.execute_script(RECORD_DRAWINGS, "#jobs", [0, 2])
    click(browser, "button[data-status='completed']")
    browser.execute_script(RELEASE_API_CALLS)
    wanted = {"tab": "completed (1)", "rows": [[done, "completed"]]}
    wait_until(
        lambda: (browser.execute_script("return window.drawings") or [None])[-1] == wanted,
        UI_TIMEOUT_S,
        "the completed tab drawn with its job (the poll loop is stopped: only the click's "
        "own refresh can draw it)",
    )
    for drawing in browser.execute_script("return window.drawings"):
        rows = sorted(drawing["rows"])
        allowed = [("all", both), ("completed (1)", [[done, "completed"]])]
        assert (drawing["tab"], rows) in allowed, f"rows {rows} drawn under {drawing['tab']!r}"
    assert console_errors(browser) == []


def test_the_stream_page_lists_each_partition_with_its_high_watermark(
    browser, broker, http, screenshots
):
    stream = unique("dash-partitions")
    broker.create_stream(stream, 3)
    published = {0: 4, 1: 7, 2: 0}
    for partition, count in published.items():
        if count:
            records = [{"value": f"p{partition}-{i}", "partition": partition} for i in range(count)]
            broker.publish(stream, records)
    browser.get(f"{http}/ui/streams/{stream}")

    def partitions():
        # Partition, log start, high watermark.
        return [row[:3] for row in card_table_rows(browser, "Partitions")]

    expected = [[str(p), "0", str(count)] for p, count in published.items()]
    wait_until(
        lambda: partitions() == expected,
        UI_TIMEOUT_S,
        f"the partitions {expected} (shows {partitions()})",
    )
    # Live: more records on one partition show on the next poll, without a reload.
    broker.publish(stream, [{"value": "late", "partition": 2}] * 5)
    expected[2][2] = "5"
    wait_until(
        lambda: partitions() == expected,
        UI_TIMEOUT_S,
        f"partition 2 at 5 (shows {partitions()})",
    )
    records_kept = """return [...document.querySelectorAll('#page dl.kv dt')]
        .find((term) => term.textContent === 'Records kept')?.nextElementSibling.textContent"""
    wait_until(
        lambda: browser.execute_script(records_kept) == "16",  # 4 + 7 + 5
        UI_TIMEOUT_S,
        "16 records kept",
    )
    save(browser, screenshots, "stream-partitions")
    assert console_errors(browser) == []
