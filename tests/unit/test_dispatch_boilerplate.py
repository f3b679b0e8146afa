"""The agents' work-order template (工单内容, 来电人称, 诉求) counts for no type:
neither in the lists' scoring nor in what the seed model learns and predicts."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from services.router.boilerplate import Boilerplate
from services.router.knowledge import shipped_engine
from services.router.seed import char_grams, train_seed
from services.router.text import normalize
from services.router.training import Example
from shared.directory import Directory
from shared.workcalendar import WorkCalendar
from tests.unit.test_dispatch_lists import LISTS, engine_with, problems_of, ticket

pytestmark = pytest.mark.usefixtures("no_hotline_env")
AT = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
TEMPLATE = ["工单内容", "来电人", "来电人称", "据来电人反映", "诉求"]

WITH_TEMPLATE = (
    LISTS.replace(
        "city_wide: [全市]\n", f"city_wide: [全市]\nboilerplate: [{', '.join(TEMPLATE)}]\n"
    )
    + """\
  power:
    target: [city.power]
    terms:
      8: [来电, 停电]
  platform:
    target: [city.platform]
    terms:
      8: [工单, 回访]
"""
)
WITHOUT_TEMPLATE = WITH_TEMPLATE.replace(f"boilerplate: [{', '.join(TEMPLATE)}]\n", "")
ORDER = "工单内容：来电人称家里停水两天了。诉求：尽快恢复。"


def test_masking_cuts_every_phrase_and_joins_nothing_across_a_cut() -> None:
    template = Boilerplate(TEMPLATE)
    assert template.mask(normalize(ORDER)) == "家里停水两天了 尽快恢复"
    # Overlapping phrases are one cut; one at the start or the end leaves no edge.
    assert template.mask("据来电人反映来电人称停水") == "停水"
    assert template.mask("停水诉求") == "停水"
    assert template.mask("家里停水") == "家里停水"
    assert Boilerplate([]).mask("来电人称停水") == "来电人称停水"
    assert "水 " not in char_grams("停水 尽快") and "水尽" not in char_grams("停水 尽快")
    assert char_grams("停水 尽快") == ["停", "水", "停水", "尽", "快", "尽快"]


def test_the_template_counts_for_no_type(directory: Directory) -> None:
    decision = engine_with(directory, WITH_TEMPLATE).decide(ticket(ORDER), AT)
    assert decision.department == "guanxian.water"
    assert [(s.type, s.terms) for s in decision.scores] == [("water", ("停水",))]
    # Without the section, the caller (来电人) is a power cut's end and the
    # work order (工单) the hotline's own matter: a three-way tie for a person.
    before = engine_with(directory, WITHOUT_TEMPLATE).decide(ticket(ORDER), AT)
    assert before.department is None
    assert {s.type for s in before.scores} == {"water", "power", "platform"}


def test_the_words_inside_the_template_still_count_on_their_own(directory: Directory) -> None:
    engine = engine_with(directory, WITH_TEMPLATE)
    assert engine.decide(ticket("停电一天了，到现在还没来电"), AT).department == "city.power"
    assert engine.decide(ticket("没人回访我"), AT).department == "city.platform"


def test_a_term_holding_a_template_phrase_is_refused(tmp_path: Path, directory: Directory) -> None:
    text = WITH_TEMPLATE.replace("8: [工单, 回访]", "8: [工单, 回访, 诉求没人管]")
    assert problems_of(tmp_path, directory, text) == [
        "38: types.platform.terms[8][2]: term '诉求没人管' of platform holds '诉求', a"
        " boilerplate phrase of the work-order template: it would never count"
    ]
    text = WITH_TEMPLATE.replace("boilerplate: [工单内容,", 'boilerplate: ["  ：", 工单内容,')
    assert problems_of(tmp_path, directory, text) == [
        "4: boilerplate[0]: boilerplate phrase '  ：' is empty without its spaces and punctuation"
    ]


@pytest.mark.parametrize(
    ("order", "plain"),
    [
        (
            "市民来电反映：来电人家中停电一天了。诉求：尽快恢复供电。",
            "家中停电一天了。尽快恢复供电。",
        ),
        ("工单内容：来电人称小区门口烧烤摊油烟大。诉求：取缔。", "小区门口烧烤摊油烟大。取缔。"),
        ("来电人咨询：孩子转学需要什么手续。", "孩子转学需要什么手续。"),
        (
            "据来电人反映，老板拖欠工资三个月，诉求：协调支付。",
            "老板拖欠工资三个月，协调支付。",
        ),
    ],
)
def test_the_shipped_lists_score_a_work_order_as_its_matter(
    directory: Directory, order: str, plain: str
) -> None:
    engine = shipped_engine(directory, WorkCalendar())
    assert engine.lists is not None
    scored = engine.decide(ticket(order), AT).scores
    assert scored == engine.decide(ticket(plain), AT).scores
    assert "platform" not in {s.type for s in scored}


def test_the_seed_model_learns_nothing_from_the_template() -> None:
    # Every hotline complaint was recorded as a work order, no water one was:
    # the template must not become the platform's sign.
    platform = [
        Example(f"工单内容：来电人称{t}。诉求：处理。", "platform")
        for t in ("接线员态度差", "没人回访", "占线打不进去")
    ]
    water = [Example(t, "water") for t in ("家里停水了", "水压低上不去水", "自来水发黄")]
    model = train_seed(platform * 2, water * 2, Boilerplate(TEMPLATE))
    assert model.predict(normalize("工单内容：来电人称家里停水。诉求：处理。"))[0][0] == "water"
    blind = train_seed(platform * 2, water * 2)
    assert blind.predict(normalize("工单内容：来电人称家里停水。诉求：处理。"))[0][0] == "platform"


@pytest.mark.parametrize("text", ["求助", "求助，急！", "您好，请问一下"])
def test_a_request_that_names_no_matter_is_no_one_s_matter(directory: Directory, text: str) -> None:
    # 求助 says what kind of request it is, not what about: before, the seed
    # model read civil affairs' 救助 into it (p 0.90). Nothing known of the
    # matter: the county's sub-centre asks (the fallback rule), as for any such call.
    decision = shipped_engine(directory, WorkCalendar()).decide(ticket(text), AT)
    assert (decision.department, decision.decided_by) == ("guanxian", "rule")
