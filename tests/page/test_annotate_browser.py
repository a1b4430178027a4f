"""The annotator page in Chromium against the live server and the real API.

Each test starts from its own tasks (canonical candidate order a < b, distinct items per task,
priorities that fix the serving order) and reads the stored judgements from the database.
"""

import json
import time

import pytest

from annotation.models import Annotator, Judgement, TripletTask

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ANSWER_ROUTE = "**/api/v1/tasks/*/answer/"

# Recorded in the page before its own script runs: every <img> added to the document, with
# the performance.now() time it was added, so a test can compare it with resource timing.
RECORD_SHOWN_IMAGES = """
window.__shownImages = [];
new MutationObserver((records) => {
  for (const record of records) {
    for (const node of record.addedNodes) {
      if (node.tagName === "IMG") {
        window.__shownImages.push({ src: node.src, shownAt: performance.now() });
      }
    }
  }
}).observe(document, { childList: true, subtree: true });
"""


def make_tasks(dataset, count):
    """Create `count` tasks over disjoint item triples; the first created is served first."""
    condition = dataset.conditions.get()
    items = list(dataset.items.order_by("id"))
    tasks = []
    for number in range(count):
        anchor, a, b = items[3 * number : 3 * number + 3]
        tasks.append(
            TripletTask.objects.create(
                dataset=dataset,
                condition=condition,
                anchor=anchor,
                candidate_a=a,
                candidate_b=b,
                priority=count - number,
            )
        )
    return tasks


def open_page(context, path="/annotate/shoes/"):
    page = context.new_page()
    page.add_init_script(RECORD_SHOWN_IMAGES)
    page.goto(path)
    return page


def wait_for_task(page, previous_task_id=None):
    """Wait until a task other than `previous_task_id` is shown and accepts answers, and return its id."""
    page.wait_for_function(
        """(previous) => {
            const section = document.getElementById("annotator");
            return !section.hidden && section.dataset.state === "task"
                && section.getAttribute("aria-busy") === "false"
                && section.dataset.taskId !== previous;
        }""",
        arg=str(previous_task_id),
    )
    return int(page.get_attribute("#annotator", "data-task-id"))


def shown_candidates(page):
    return (
        int(page.get_attribute("#choose-left", "data-item-id")),
        int(page.get_attribute("#choose-right", "data-item-id")),
    )


def answer_count(page):
    return int(page.text_content("#answer-count"))


def wait_for_judgement(task_id, annotator, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        judgement = Judgement.objects.filter(task_id=task_id, annotator=annotator).first()
        if judgement is not None:
            return judgement
        time.sleep(0.05)
    raise AssertionError(f"no judgement of task {task_id} was stored within {timeout} s")


def test_login_page_leads_to_task(browser_context, make_dataset, annotator):
    dataset = make_dataset(n_items=3)
    make_tasks(dataset, 1)
    context = browser_context()
    page = context.new_page()

    page.goto("/annotate/shoes/")
    page.fill("input[name=username]", "ann")
    page.fill("input[name=password]", "pw-ann-123")
    page.click("button[type=submit]")

    wait_for_task(page)
    assert page.url.endswith("/annotate/shoes/")
    assert page.text_content("#condition-name") == "colour"
    assert page.text_content("#prompt") == "Which is closer to the reference in colour?"


@pytest.mark.parametrize(
    "keys",
    [
        {"left": "1", "right": "ArrowRight", "tie": "ArrowDown", "skip": "s"},
        {"left": "ArrowLeft", "right": "2", "tie": "0", "skip": "Space"},
        {"left": "ArrowLeft", "right": "ArrowRight", "tie": "t", "skip": "S"},
    ],
    ids=["digits-and-down", "arrows-and-space", "letters"],
)
def test_keys_store_judgements(browser_context, make_dataset, annotator, keys):
    dataset = make_dataset(n_items=12)
    make_tasks(dataset, 4)
    page = open_page(browser_context(user=annotator.user))
    task_id = None

    for number, choice in enumerate(["left", "right", "tie", "skip"]):
        task_id = wait_for_task(page, task_id)
        left_id, right_id = shown_candidates(page)
        assert answer_count(page) == number

        page.keyboard.press(keys[choice])
        judgement = wait_for_judgement(task_id, annotator)

        assert judgement.left_item_id == left_id
        assert judgement.right_item_id == right_id
        expected_choice = "candidate" if choice in ("left", "right") else choice
        assert judgement.choice == expected_choice
        expected_item = {"left": left_id, "right": right_id}.get(choice)
        assert judgement.chosen_item_id == expected_item
        assert judgement.response_ms is not None
        page.wait_for_function(f"document.getElementById('answer-count').textContent === '{number + 1}'")

    page.wait_for_selector("#done-screen:not([hidden])")
    assert "All done — thank you" in page.text_content("#done-screen")
    assert page.text_content("#done-count") == "4"
    assert Judgement.objects.filter(annotator=annotator).count() == 4


def test_buttons_answer_on_click(browser_context, make_dataset, annotator):
    dataset = make_dataset(n_items=6)
    make_tasks(dataset, 2)
    page = open_page(browser_context(user=annotator.user))

    task_id = wait_for_task(page)
    _left_id, right_id = shown_candidates(page)
    page.click("#choose-right")
    assert wait_for_judgement(task_id, annotator).chosen_item_id == right_id

    task_id = wait_for_task(page, task_id)
    page.click("#choose-tie")
    assert wait_for_judgement(task_id, annotator).choice == "tie"


def test_next_task_images_prefetched(browser_context, make_dataset, annotator):
    """Each task's three images are fully downloaded before they are put into the page."""
    dataset = make_dataset(n_items=9)
    make_tasks(dataset, 3)
    page = open_page(browser_context(user=annotator.user))
    task_id = None

    for _ in range(3):
        task_id = wait_for_task(page, task_id)
        page.keyboard.press("1")
        wait_for_judgement(task_id, annotator)
    page.wait_for_selector("#done-screen:not([hidden])")

    shown_images = page.evaluate("window.__shownImages")
    downloads = page.evaluate(
        """performance.getEntriesByType("resource")
            .filter((entry) => entry.name.includes("/image/"))
            .map((entry) => ({ url: entry.name, startTime: entry.startTime, responseEnd: entry.responseEnd }))"""
    )
    image_urls = {image["src"] for image in shown_images}
    assert len(shown_images) == 9, shown_images
    assert len(image_urls) == 9, "every task should show three new images"
    for image in shown_images:
        fetched = [download for download in downloads if download["url"] == image["src"]]
        assert fetched, f"{image['src']} was shown but never fetched"
        assert fetched[0]["responseEnd"] <= image["shownAt"], (
            f"{image['src']} was shown at {image['shownAt']:.1f} ms before its download ended "
            f"at {fetched[0]['responseEnd']:.1f} ms"
        )


def test_answer_in_flight_blocks_more_answers(browser_context, make_dataset, annotator):
    dataset = make_dataset(n_items=6)
    make_tasks(dataset, 2)
    page = open_page(browser_context(user=annotator.user))
    held_routes = []
    answer_posts = []
    page.on("request", lambda request: answer_posts.append(request) if request.method == "POST" else None)
    page.route(ANSWER_ROUTE, lambda route: held_routes.append(route))

    task_id = wait_for_task(page)
    page.keyboard.press("1")
    page.wait_for_function("document.getElementById('choose-left').disabled")
    for key in ["1", "2", "ArrowLeft", "ArrowRight", "0", "s", "Space"]:
        page.keyboard.press(key)
    page.click("#choose-left", force=True, click_count=2)
    page.wait_for_timeout(300)

    assert len(held_routes) == 1
    assert len(answer_posts) == 1
    for button in ["#choose-left", "#choose-right", "#choose-tie", "#choose-skip"]:
        assert page.is_disabled(button), f"{button} is enabled while the answer is in flight"
    assert page.get_attribute("#annotator", "aria-busy") == "true"

    held_routes[0].continue_()
    next_task_id = wait_for_task(page, task_id)

    assert next_task_id != task_id
    assert Judgement.objects.filter(task_id=task_id).count() == 1
    assert Judgement.objects.get(task_id=task_id).choice == "candidate"
    assert answer_count(page) == 1
    assert len(answer_posts) == 1


def test_failed_answer_retried_with_same_token(browser_context, make_dataset, annotator):
    dataset = make_dataset(n_items=6)
    make_tasks(dataset, 2)
    page = open_page(browser_context(user=annotator.user))
    posted_bodies = []

    def fail_first_attempt(route):
        posted_bodies.append(json.loads(route.request.post_data))
        if len(posted_bodies) == 1:
            route.abort("connectionreset")
        else:
            route.continue_()

    page.route(ANSWER_ROUTE, fail_first_attempt)
    task_id = wait_for_task(page)
    page.keyboard.press("2")

    page.wait_for_selector("#notice:not([hidden])")
    assert "Connection problem" in page.text_content("#notice")
    wait_for_task(page, task_id)

    assert len(posted_bodies) == 2
    assert posted_bodies[0] == posted_bodies[1]
    judgement = Judgement.objects.get(task_id=task_id)
    assert str(judgement.client_token) == posted_bodies[0]["client_token"]
    assert page.is_hidden("#notice")
    assert answer_count(page) == 1


def test_lost_response_counts_once(browser_context, make_dataset, annotator):
    """A stored answer whose response is lost is sent again and the API returns the same judgement."""
    dataset = make_dataset(n_items=6)
    make_tasks(dataset, 2)
    page = open_page(browser_context(user=annotator.user))
    statuses = []

    def lose_first_response(route):
        response = route.fetch()
        statuses.append(response.status)
        if len(statuses) == 1:
            route.abort("connectionreset")
        else:
            route.fulfill(response=response)

    page.route(ANSWER_ROUTE, lose_first_response)
    task_id = wait_for_task(page)
    page.keyboard.press("s")
    wait_for_task(page, task_id)

    assert statuses == [201, 200]
    assert Judgement.objects.filter(task_id=task_id).count() == 1
    assert answer_count(page) == 1


def test_done_screen_without_tasks(browser_context, make_dataset, annotator):
    make_dataset()
    page = open_page(browser_context(user=annotator.user))

    page.wait_for_selector("#done-screen:not([hidden])")

    assert "All done — thank you" in page.text_content("#done-screen")
    assert page.is_hidden("#annotator")


def test_blocked_during_session(browser_context, make_dataset, annotator):
    dataset = make_dataset(n_items=6)
    make_tasks(dataset, 2)
    page = open_page(browser_context(user=annotator.user))
    wait_for_task(page)

    Annotator.objects.filter(pk=annotator.pk).update(is_blocked=True)
    page.keyboard.press("1")

    page.wait_for_selector("#blocked-screen:not([hidden])")
    assert "blocked" in page.text_content("#blocked-screen")
    assert not Judgement.objects.exists()


def test_prolific_link_opens_page(browser_context, make_dataset):
    dataset = make_dataset(n_items=3)
    make_tasks(dataset, 1)
    page = open_page(browser_context(), "/annotate/shoes/?PROLIFIC_PID=abc123&STUDY_ID=s1&SESSION_ID=x1")

    wait_for_task(page)

    assert page.url.endswith("/annotate/shoes/")
    assert page.text_content("#condition-name") == "colour"
    crowd_annotator = Annotator.objects.get(external_id="abc123")
    assert crowd_annotator.source == "prolific"
    assert crowd_annotator.user.get_username() in page.text_content(".site-header")


def test_phone_layout_fits_screen(browser_context, make_dataset, annotator, tmp_path):
    dataset = make_dataset(n_items=3)
    make_tasks(dataset, 1)
    context = browser_context(
        user=annotator.user, viewport={"width": 375, "height": 667}, device_scale_factor=2, is_mobile=True
    )
    page = open_page(context)
    wait_for_task(page)

    screenshot = tmp_path / "annotate-phone.png"
    page.screenshot(path=str(screenshot))

    assert screenshot.stat().st_size > 0
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    for selector in ["#anchor-frame img", "#left-frame img", "#right-frame img"]:
        box = page.locator(selector).bounding_box()
        assert box is not None, f"{selector} is not rendered"
        assert box["x"] >= 0
        assert box["x"] + box["width"] <= 375
        assert box["y"] + box["height"] <= 667, f"{selector} ends below the first screen"
        assert box["width"] >= 120, f"{selector} is too small to judge: {box}"
    assert page.is_visible("#choose-tie")
    assert page.is_visible("#choose-skip")


def test_desktop_screenshot(browser_context, make_dataset, annotator, tmp_path):
    dataset = make_dataset(n_items=3)
    make_tasks(dataset, 1)
    page = open_page(browser_context(user=annotator.user, viewport={"width": 1280, "height": 800}))
    wait_for_task(page)

    screenshot = tmp_path / "annotate-desktop.png"
    page.screenshot(path=str(screenshot))

    assert page.evaluate("document.documentElement.scrollHeight") <= 800
    assert page.is_visible("text=Can't tell")
