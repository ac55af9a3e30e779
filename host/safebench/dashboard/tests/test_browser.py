"""The demonstrator page in a real browser: headless Chromium (Debian's) driven by Playwright, against the whole
demonstrator (simulated boards publishing through Mosquitto into the ingest). It asserts on the DOM: readings
arrive verified, the browser's own WebCrypto check agrees with the ingest, a tampered copy turns red and a
replay is told, readings queued while a board's network is down arrive in order when it is back, a pulled SIM
is shown, and the page reconnects to a restarted server by itself. A screenshot of each state is kept in
.bench/artifacts/dashboard/ (SAFEBENCH_ARTIFACTS moves it)."""

import os
import re
import shutil
import time
from pathlib import Path

import pytest

from safebench.broker import executable

playwright = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [pytest.mark.timeout(300),
              pytest.mark.skipif(not CHROMIUM, reason="Chromium is not installed (Debian chromium; `make test` "
                                                      "installs it)"),
              pytest.mark.skipif(not executable(), reason="mosquitto is not installed (Debian mosquitto)")]
ARTIFACTS = Path(os.environ.get("SAFEBENCH_ARTIFACTS", ".bench/artifacts")) / "dashboard"
WAIT_MS = 60_000


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    from safebench.dashboard.demonstrator import Demonstrator

    with Demonstrator(tmp_path_factory.mktemp("state"), boards=2, interval=0.5, log=lambda line: None) as d:
        yield d


@pytest.fixture(scope="module")
def browser():
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture
def page(browser, demo):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    p = context.new_page()
    errors = []
    p.on("pageerror", lambda e: errors.append(str(e)))
    p.goto(demo.dashboard.url)
    yield p
    context.close()
    assert not errors, errors


def _shot(page, name):
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_the_page_shows_readings_with_both_verdicts_and_answers_tamper_and_replay(page, demo):
    expect = playwright.expect
    expect(page.locator("#feed")).to_have_attribute("data-state", "live", timeout=WAIT_MS)
    verified = page.locator('#readings tbody tr[data-verdict="verified"]')
    expect(verified.first).to_be_visible(timeout=WAIT_MS)
    expect(verified.first.locator(".browser")).to_have_attribute("data-browser", "valid", timeout=WAIT_MS)
    expect(page.locator(".device")).to_have_count(2, timeout=WAIT_MS)
    expect(page.locator("#chart polyline")).to_have_count(2, timeout=WAIT_MS)
    _shot(page, "1-live")

    page.click("#tamper")
    tampered = page.locator('#readings tbody tr[data-verdict="bad-signature"]').first
    expect(tampered).to_be_visible(timeout=WAIT_MS)
    expect(tampered.locator(".badge")).to_have_text("✗ bad signature")
    expect(tampered.locator(".browser")).to_have_attribute("data-browser", "invalid", timeout=WAIT_MS)  # agrees
    colour = tampered.locator(".badge").evaluate("b => getComputedStyle(b).backgroundColor")
    assert colour == "rgb(164, 22, 26)"  # red, beside the words
    _shot(page, "2-tampered")

    tampered.get_by_role("button", name="Evidence").click()
    drawer = page.locator("#drawer")
    expect(drawer).to_be_visible()
    expect(drawer.locator('.checks li[data-result="failed"]')).to_have_text("ES256 signature (cryptography)")
    expect(drawer.locator(".browser")).to_have_attribute("data-browser", "invalid", timeout=WAIT_MS)
    expect(drawer.locator("#evidence-hex")).to_have_text(re.compile("^d28443a10126"))
    expect(drawer).to_contain_text("CN=")
    _shot(page, "3-evidence")
    drawer.get_by_role("button", name="Close the evidence").click()

    page.click("#replay")
    replayed = page.locator('#readings tbody tr[data-verdict="replayed"]').first
    expect(replayed).to_be_visible(timeout=WAIT_MS)
    expect(replayed.locator(".badge")).to_have_text("↺ replayed")
    expect(replayed.locator(".browser")).to_have_attribute("data-browser", "valid", timeout=WAIT_MS)  # signed, but old


def test_a_verified_reading_older_than_one_shown_is_marked_out_of_order(page, demo):
    """Stored as the ingest stores them (the database's rows, the feed, the page): seq 2, then seq 1 of a
    device whose readings are signed with a software key."""
    from safebench.pki import bench_ca
    from safebench.readings import Verifier
    from safebench.registry import Registry
    from safebench.testing.signed_readings import ReadingDevice

    expect = playwright.expect
    expect(page.locator("#feed")).to_have_attribute("data-state", "live", timeout=WAIT_MS)
    with Registry(demo.registry.db.another()) as registry:
        ca = bench_ca(demo.dir)
        late = ReadingDevice(ca, registry, "8944000000000000777")
        verifier = Verifier(registry, ca.cert)
        for seq in (2, 1):
            cose = late.reading(1_780_000_000, seq)
            registry.db.store_readings([(late.topic, cose, verifier.check(cose))])
    rows = page.locator('#readings tbody tr:has(td:text-is("8944000000000000777"))')
    expect(rows).to_have_count(2, timeout=WAIT_MS)
    expect(rows.first.locator('.badge[data-verdict="out-of-order"]')).to_have_text("⇅ out of order")
    expect(rows.nth(1).locator('.badge[data-verdict="out-of-order"]')).to_have_count(0)
    expect(rows.first.locator(".browser")).to_have_attribute("data-browser", "valid", timeout=WAIT_MS)


def test_readings_queued_while_the_network_is_down_arrive_in_order(page, demo):
    expect = playwright.expect
    card = page.locator(".device").first
    expect(card).to_be_visible(timeout=WAIT_MS)
    iccid = card.get_attribute("id").removeprefix("device-")
    card.get_by_role("button", name="Drop the network").click()
    expect(card.locator(".network")).to_have_text("down", timeout=WAIT_MS)
    expect(card.locator(".queued")).to_have_text(re.compile("^[2-9]|^[1-9][0-9]"), timeout=WAIT_MS)
    _shot(page, "4-network-down")
    queued = int(card.locator(".queued").inner_text())
    before = _seqs(demo, iccid)
    card.get_by_role("button", name="Bring the network back").click()
    expect(card.locator(".queued")).to_have_text("0", timeout=WAIT_MS)
    rows = page.locator(f'#readings tbody tr[data-verdict="verified"]:has(td:text-is("{iccid}"))')
    expect(rows.first).to_be_visible()
    _shot(page, "5-network-back")
    after = _seqs(demo, iccid)
    assert len(after) >= len(before) + queued and after == sorted(after) and len(set(after)) == len(after)
    assert after == list(range(after[0], after[0] + len(after)))  # none lost, none twice, in order

    card.get_by_role("button", name="Pull the SIM").click()
    expect(card.locator(".sim")).to_have_text("removed", timeout=WAIT_MS)
    expect(card.locator(".last-error")).not_to_have_text("none", timeout=WAIT_MS)
    _shot(page, "6-sim-pulled")
    card.get_by_role("button", name="Insert the SIM").click()
    expect(card.locator(".sim")).to_have_text("in", timeout=WAIT_MS)


def test_the_page_reconnects_to_a_restarted_server(page, demo):
    from safebench.dashboard import Dashboard

    expect = playwright.expect
    expect(page.locator("#feed")).to_have_attribute("data-state", "live", timeout=WAIT_MS)
    port, url = demo.dashboard.port, demo.dashboard.url
    demo.dashboard.stop()
    expect(page.locator("#feed")).to_have_attribute("data-state", "reconnecting", timeout=WAIT_MS)
    count = page.locator("#readings tbody tr").count()
    demo.dashboard = Dashboard(demo.registry.db.url, port, actions=demo).start()
    assert demo.dashboard.url == url
    expect(page.locator("#feed")).to_have_attribute("data-state", "live", timeout=WAIT_MS)
    expect(page.locator("#readings tbody tr")).not_to_have_count(count, timeout=WAIT_MS)  # new ones come
    ids = page.locator("#readings tbody tr").evaluate_all("rows => rows.map(r => r.id)")
    assert len(ids) == len(set(ids))  # resumed after the last one seen: none twice


def test_swapped_sims_are_moved_sims_until_swapped_back(page, demo):
    expect = playwright.expect
    cards = page.locator(".device")
    expect(cards.nth(1)).to_be_visible(timeout=WAIT_MS)
    first, second = cards.nth(0), cards.nth(1)
    iccids = [c.get_attribute("id").removeprefix("device-") for c in (first, second)]
    first.get_by_role("button", name="Swap SIMs with the next board").click()
    expect(first.locator(".sim")).to_have_text("swapped", timeout=WAIT_MS)
    expect(second.locator(".sim")).to_have_text("swapped")
    moved = page.locator('#readings tbody tr[data-verdict="moved-sim"]')
    expect(moved.first).to_be_visible(timeout=WAIT_MS)
    expect(moved.first.locator(".badge")).to_have_text("✗ moved SIM")
    _shot(page, "7-sims-swapped")
    assert {r["iccid"] for r in demo.registry.db.readings("verdict = 'moved-sim'")} <= set(iccids)
    first.get_by_role("button", name="Swap the SIMs back").click()
    expect(first.locator(".sim")).to_have_text("in", timeout=WAIT_MS)
    last = max(r["id"] for r in demo.registry.db.readings())
    deadline = time.monotonic() + WAIT_MS / 1000
    while True:  # each board's own SIM signs what verifies again
        after = demo.registry.db.readings("id > ?", (last,))
        if {r["iccid"] for r in after if r["verdict"] == "verified"} == set(iccids) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert {r["iccid"] for r in after if r["verdict"] == "verified"} == set(iccids), [r["verdict"] for r in after]
    rows = page.locator(f'#readings tbody tr[data-verdict="verified"]:has(td:text-is("{iccids[0]}"))')
    expect(rows.first).to_be_visible(timeout=WAIT_MS)


def test_a_revoked_board_is_shown_and_refused(page, demo):
    """Last: the revoked board stays revoked for the rest of the module."""
    expect = playwright.expect
    cards = page.locator(".device")
    expect(cards.nth(1)).to_be_visible(timeout=WAIT_MS)
    card, other = cards.nth(1), cards.nth(0)
    iccid, other_iccid = (c.get_attribute("id").removeprefix("device-") for c in (card, other))
    expect(card.locator(".identity")).to_have_text("valid")
    card.get_by_role("button", name="Revoke its identity").click()
    expect(card.locator(".identity")).to_have_text(re.compile("^✗ revoked"), timeout=WAIT_MS)
    expect(card).to_have_attribute("data-identity", "revoked")
    expect(card.get_by_role("button", name="Revoke its identity")).to_have_count(0)
    expect(card.locator(".last-error")).to_contain_text("certificate", timeout=WAIT_MS)  # the broker's refusal
    _shot(page, "8-revoked")
    revoked_at = demo.registry.devices[demo.registry.db.links()[iccid]["kid"]]["revoked_at"]
    verified, theirs = len(_seqs(demo, iccid)), len(_seqs(demo, other_iccid))
    time.sleep(3)
    assert len(_seqs(demo, iccid)) == verified  # nothing of it verified any more
    assert len(_seqs(demo, other_iccid)) > theirs  # the other board goes on
    late = demo.registry.db.readings("iccid = ? AND stored_at > ?", (iccid, revoked_at + 1.5))
    assert all(r["verdict"] == "revoked" for r in late), [r["verdict"] for r in late]


def _seqs(demo, iccid):
    return [r["seq"] for r in demo.registry.db.readings("iccid = ? AND verdict = 'verified'", (iccid,))]
