"""The example channel plugin (examples/hotline-wechat-channel) installed as a
real package into a directory of the test's own: intake discovers it through
its entry point and a message posted to it becomes a ticket."""

from __future__ import annotations

import importlib
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.intake.channels import ENTRY_POINT_GROUP, channel_names, discover
from shared.domain import Channel
from shared.events import TicketReceived
from shared.settings import CommonSettings
from tests.intake_support import intake_settings_of, probing, running
from tests.support import ROOT

pytestmark = pytest.mark.integration

EXAMPLE = ROOT / "examples" / "hotline-wechat-channel"
MESSAGE = {
    "openid": "o6_bmjrPTlm6_2sgVt7hMZOPfL2M",
    "msg_id": "wx-2358",
    "district": "阳谷县",
    "category": "complaint",
    "text": "紫荆街店铺门口堆放建筑垃圾",
    "phone": "13800138000",
}


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """pip-installs a copy of the example (the source tree stays clean) into a
    target directory put on sys.path, as a site directory would be."""
    work = tmp_path_factory.mktemp("plugin")
    source, target = work / "src", work / "site"
    shutil.copytree(EXAMPLE, source)
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check",
         "--no-deps", "--no-build-isolation", "--target", str(target), str(source)],
        check=True,
    )  # fmt: skip
    sys.path.insert(0, str(target))
    importlib.invalidate_caches()
    try:
        yield target
    finally:
        sys.path.remove(str(target))
        sys.modules.pop("hotline_wechat", None)
        importlib.invalidate_caches()


def test_without_the_plugin_there_is_no_wechat_channel() -> None:
    assert "wechat" not in channel_names()


def test_the_installed_plugin_is_discovered(installed: Path) -> None:
    assert (installed / "hotline_wechat" / "__init__.py").exists()
    assert "wechat" in channel_names()
    channels = {c.name: c for c in discover()}
    assert set(channels) == {"web", "agent", "open311", "sms", "email", "wechat"}
    assert type(channels["wechat"]).__module__ == "hotline_wechat"
    assert ENTRY_POINT_GROUP == "hotline.intake_channels"


async def test_a_message_to_the_plugin_becomes_a_ticket(
    installed: Path, settings: CommonSettings
) -> None:
    config = intake_settings_of(settings, require_channel_keys=True)
    async with running(config) as harness, probing(harness) as probe:
        key = await harness.issue("channel", "wechat")
        url = "/v1/channels/wechat/messages"
        refused = await harness.client.post(url, json=MESSAGE)
        response = await harness.client.post(url, json=MESSAGE, headers={"X-API-Key": key})
        assert refused.status_code == 401  # the host's guard protects the plugin's route
        assert response.status_code == 202, response.text
        [event] = await probe.wait_for("router", 1)
    assert isinstance(event, TicketReceived)
    assert event.ticket_id == response.json()["ticket_id"]
    draft = event.payload.ticket
    assert (draft.channel, draft.district, draft.external_id) == (
        Channel.WECHAT,
        "yanggu",
        "wx-2358",
    )
    assert event.actor.id == f"wechat:{MESSAGE['openid']}"
