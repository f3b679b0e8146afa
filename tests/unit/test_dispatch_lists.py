"""The responsibility lists (权责清单): reading and checking a list file, scoring
a ticket's text against them, and where they stand in the one decision."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest

from services.cli import main as hotline
from services.router.engine import RuleEngine
from services.router.knowledge import EngineFactory, place_names, shipped_engine
from services.router.lists import SHIPPED_LISTS, ListSet, check_lists_file, read_lists
from services.router.rules import RulesError, load_rules, parse_rules
from services.router.scoring import CompiledLists
from services.router.text import pinyin_of
from shared.directory import Directory
from shared.domain import TicketDraft
from shared.workcalendar import WorkCalendar
from tests.unit.test_rules import rule, rules_text

pytestmark = pytest.mark.usefixtures("no_hotline_env")
AT = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)  # a Tuesday, 10:00 in the city

LISTS = """\
version: 1
decision: {min_score: 4, margin: 2}
city_wide: [全市]
types:
  water:
    target: ["{district}.water", city.water]
    terms:
      8: [停水, 水压低, 自来水]
      3: [水管]
    city_terms: [河道]
  housing:
    target: ["{district}.housing"]
    terms:
      8: [物业, 电梯]
      3: [小区]
    exclusions:
      电梯: [困人]
  emergency:
    target: [city.emergency]
    terms:
      8: [电梯困人, 烟花爆竹]
  culture-tourism:
    target: [city.culture-tourism]
    terms:
      8: [古城, 景区]
  police:
    target: [city.police]
    terms:
      8: [户口]
"""


def engine_with(directory: Directory, lists_text: str, rules: str | None = None) -> RuleEngine:
    parsed = read_lists(lists_text, directory)
    assert parsed.lists is not None, parsed.problems
    ruleset = parse_rules(rules or PRAISE)
    compiled = CompiledLists(parsed.lists, place_names(directory))
    return RuleEngine(ruleset, directory, WorkCalendar(), lists=compiled)


def ticket(text: str, district: str = "guanxian", category: str = "complaint") -> TicketDraft:
    return TicketDraft.model_validate(
        {"channel": "phone", "district": district, "category": category, "text": text}
    )


PRAISE = rules_text(rule("praise", "{categories: [praise]}", "{district}"))


# --- reading and checking a list file ---------------------------------------------------


def problems_of(tmp_path: Path, directory: Directory, text: str) -> list[str]:
    path = tmp_path / "lists.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    lists, problems = check_lists_file(path, directory)
    assert lists is None
    return [p.removeprefix(f"{path}:") for p in problems]


def test_the_shipped_lists_have_no_problem(directory: Directory) -> None:
    lists, problems = check_lists_file(SHIPPED_LISTS, directory)
    assert problems == []
    assert lists is not None
    # Hundreds of terms for the common types.
    for common in ("power", "water", "gas-heat", "housing", "market", "urban-mgmt", "police"):
        assert lists.size(common) >= 100, common


def test_an_unknown_department_type_is_named_at_its_line(
    tmp_path: Path, directory: Directory
) -> None:
    text = LISTS.replace("  police:\n", "  polize:\n")
    [problem] = problems_of(tmp_path, directory, text)
    assert problem.startswith("26: types.polize: unknown department type 'polize' (known: ")


def test_an_empty_term_is_refused(tmp_path: Path, directory: Directory) -> None:
    text = LISTS.replace("8: [户口]", '8: [户口, "  ！"]')
    assert problems_of(tmp_path, directory, text) == [
        "29: types.police.terms[8][1]: term '  ！' is empty without its spaces and punctuation"
    ]


def test_a_term_two_types_claim_alike_is_refused(tmp_path: Path, directory: Directory) -> None:
    text = LISTS.replace("8: [户口]", "8: [户口, 停水]")
    assert problems_of(tmp_path, directory, text) == [
        "29: types.police.terms[8][1]: term '停水' is claimed by water with the same weight 8"
        " and no exclusion"
    ]


def test_a_term_two_types_claim_with_an_exclusion_is_accepted(directory: Directory) -> None:
    text = LISTS.replace("8: [户口]", "8: [户口, 电梯]")
    assert read_lists(text, directory).problems == []


def test_a_target_no_district_has_and_a_schema_error(tmp_path: Path, directory: Directory) -> None:
    text = LISTS.replace("target: [city.police]", "target: [city.sheriff]").replace(
        "margin: 2", "margin: -1"
    )
    assert problems_of(tmp_path, directory, text) == [
        "2: decision.margin: Input should be greater than or equal to 0",
    ]
    text = LISTS.replace("target: [city.police]", "target: [city.sheriff]")
    assert problems_of(tmp_path, directory, text) == [
        "27: types.police.target[0]: target 'city.sheriff' is no unit of the directory"
    ]


def test_rules_check_names_the_list_file_and_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "lists.yaml"
    path.write_text(LISTS.replace("  police:\n", "  polize:\n"), encoding="utf-8")
    monkeypatch.setenv("HOTLINE_LISTS_FILE", str(path))
    assert hotline(["rules", "check"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith(f"{path}:26: types.polize: unknown department type")
    assert err[-1].endswith("1 problem(s)")


def test_the_factory_refuses_bad_lists_whole(tmp_path: Path, directory: Directory) -> None:
    path = tmp_path / "lists.yaml"
    path.write_text("types: [", encoding="utf-8")
    factory = EngineFactory(directory, WorkCalendar(), lists_file=path, plugins=False)
    with pytest.raises(RulesError, match=r"lists.yaml:1: not valid YAML"):
        factory(load_rules())


# --- scoring -----------------------------------------------------------------------------


def test_the_best_type_decides_with_its_terms(directory: Directory) -> None:
    decision = engine_with(directory, LISTS).decide(ticket("我们小区水压低，物业也不管"), AT)
    assert decision.department == "guanxian.housing"
    assert decision.decided_by == "list"
    assert [(s.type, s.score, s.terms) for s in decision.scores] == [
        ("housing", 11, ("小区", "物业")),
        ("water", 8, ("水压低",)),
    ]
    assert decision.reason == "housing scored 11 (小区、物业), 3 above water 8"


def test_a_tie_waits_for_a_person_with_the_candidates(directory: Directory) -> None:
    decision = engine_with(directory, LISTS).decide(ticket("停水了，物业说不归他们管"), AT)
    assert decision.department is None
    assert decision.decided_by == "manual"
    assert [c.department for c in decision.candidates] == ["guanxian.water", "guanxian.housing"]
    assert "less than the margin 2" in decision.reason


def test_a_low_score_waits_for_a_person(directory: Directory) -> None:
    decision = engine_with(directory, LISTS).decide(ticket("水管的事"), AT)
    assert (decision.department, decision.decided_by) == (None, "manual")
    assert decision.reason == "best score 3 (water) is below 4"
    assert [c.department for c in decision.candidates] == ["guanxian.water"]


def test_a_longer_term_covers_the_shorter_inside_it(directory: Directory) -> None:
    decision = engine_with(directory, LISTS).decide(ticket("小区电梯困人了"), AT)
    assert decision.department == "city.emergency"
    assert [s.type for s in decision.scores] == ["emergency", "housing"]
    assert decision.scores[1].terms == ("小区",)  # not 电梯: inside 电梯困人


def test_an_exclusion_word_cancels_a_term(directory: Directory) -> None:
    decision = engine_with(directory, LISTS).decide(ticket("电梯门打不开，里面困人了"), AT)
    assert [(s.type, s.score, s.terms, s.excluded) for s in decision.scores] == [
        ("housing", 0, (), ("电梯",))
    ]
    assert (decision.department, decision.reason) == (None, "no term of the lists was found")


def test_a_place_name_hides_the_terms_inside_it(directory: Directory) -> None:
    # 东古城镇 is a town of Guan County, not 古城 of tourism.
    decision = engine_with(directory, LISTS).decide(ticket("东古城镇停水两天了"), AT)
    assert decision.department == "guanxian.water"
    assert [s.type for s in decision.scores] == ["water"]


def test_a_city_wide_matter_goes_to_the_city_unit(directory: Directory) -> None:
    engine = engine_with(directory, LISTS)
    assert engine.decide(ticket("全市都停水了吗"), AT).department == "city.water"
    assert engine.decide(ticket("河道里的自来水管"), AT).department == "city.water"
    # 市里 of 超市里 is no city-wide word; nor is 全市 inside a longer term.
    assert engine.decide(ticket("停水了"), AT).department == "guanxian.water"


def test_a_city_wide_word_counts_with_a_term_inside_it(directory: Directory) -> None:
    # 市水务局 holds the term 水务局: the city word is still the longest there.
    text = LISTS.replace(
        "city_wide: [全市]", "city_wide: [全市, 市水务局, 好几个县, 全市水务]"
    ).replace("3: [水管]", "3: [水管, 水务局, 几个县, 超市]")
    engine = engine_with(directory, text)
    assert engine.decide(ticket("市水务局说停水不归他们管"), AT).department == "city.water"
    assert engine.decide(ticket("好几个县都停水了"), AT).department == "city.water"
    # Two city words overlapping do not hide each other.
    assert engine.decide(ticket("全市水务局停水"), AT).department == "city.water"
    # A term across the city word's edge still hides it (超市里 is no 市里).
    assert engine.decide(ticket("超市水务局停水"), AT).department == "guanxian.water"


CONTEXT = """\
version: 1
decision: {min_score: 3, margin: 1, context_weight: 3, context_cap: 5}
types:
  market:
    target: ["{district}.market"]
    terms:
      8: [短秤]
      3: [超市, 老板, 门口]
  hrss:
    target: ["{district}.hrss"]
    terms:
      8: [工资, 社保]
      5: [合同]
"""


def test_place_and_party_words_add_up_to_their_cap(directory: Directory) -> None:
    # Three context words of market (9, capped at 5) lose to one matter of hrss.
    decision = engine_with(directory, CONTEXT).decide(ticket("超市门口老板欠工资"), AT)
    assert decision.department == "guanxian.hrss"
    assert [(s.type, s.score) for s in decision.scores] == [("hrss", 8), ("market", 5)]
    # Matter words add up in full beside them.
    decision = engine_with(directory, CONTEXT).decide(ticket("超市老板短秤"), AT)
    assert [(s.type, s.score) for s in decision.scores] == [("market", 13)]


def test_each_further_matter_term_counts_decay_times_the_one_before(
    directory: Directory,
) -> None:
    text = CONTEXT.replace("context_cap: 5}", "context_cap: 5, decay: 0.5}")
    decision = engine_with(directory, text).decide(ticket("工资社保合同"), AT)
    assert [(s.type, s.score) for s in decision.scores] == [("hrss", 8 + 4 + 1.25)]


def test_a_longer_phrase_outweighs_a_word_of_the_same_weight(directory: Directory) -> None:
    text = CONTEXT.replace("context_cap: 5}", "context_cap: 5, length_bonus: 1}").replace(
        "8: [工资, 社保]", "8: [工资, 社保, 拖欠农民工工资]"
    )
    decision = engine_with(directory, text).decide(ticket("超市短秤，拖欠农民工工资"), AT)
    # 拖欠农民工工资 is 7 characters: 8 + 4 (at most 4); 工资 inside it counts no more.
    assert [(s.type, s.score) for s in decision.scores] == [("hrss", 12), ("market", 8 + 3)]
    # Context words gain nothing by their length.
    decision = engine_with(directory, text.replace("3: [超市,", "3: [大超市门口,")).decide(
        ticket("大超市门口"), AT
    )
    assert [(s.type, s.score) for s in decision.scores] == [("market", 3)]


def test_a_term_typed_in_pinyin_counts_as_the_term(directory: Directory) -> None:
    decision = engine_with(directory, LISTS).decide(ticket("我们 Dian Ti 又坏了"), AT)
    assert [(s.type, s.score, s.terms) for s in decision.scores] == [("housing", 8, ("dianti",))]
    # Its exclusions come with it: 电梯 with 困人 is no housing matter.
    decision = engine_with(directory, LISTS).decide(ticket("dianti li kunren"), AT)
    assert [(s.type, s.score, s.excluded) for s in decision.scores] == [("housing", 0, ("dianti",))]


def test_only_pinyin_that_cannot_hide_in_other_pinyin_is_matched() -> None:
    assert pinyin_of("电梯") == "dianti"
    assert pinyin_of("医保") is None  # yibao: too short, inside many a word
    assert pinyin_of("暗管") is None  # anguan: inside ganjinguanguan
    assert pinyin_of("12345") is None


# --- one decision: rules first, lists, fallback, manual ------------------------------------

RULES = rules_text(
    rule("urgent-water", "{keywords: {any: [爆管]}}", "city.water"),
    "{id: local, fallback: true, when: {district_kinds: [county]},"
    " then: {department: '{district}'}}",
)


def test_a_rule_decides_before_the_lists(directory: Directory) -> None:
    engine = engine_with(directory, LISTS, RULES)
    decision = engine.decide(ticket("爆管停水了"), AT)
    assert (decision.department, decision.rule, decision.decided_by) == (
        "city.water",
        "urgent-water",
        "rule",
    )


def test_the_fallback_rule_takes_only_what_the_lists_know_nothing_of(
    directory: Directory,
) -> None:
    engine = engine_with(directory, LISTS, RULES)
    nothing = engine.decide(ticket("请帮忙看看这个事"), AT)
    assert (nothing.department, nothing.rule, nothing.decided_by) == ("guanxian", "local", "rule")
    tie = engine.decide(ticket("停水了，物业说不归他们管"), AT)
    assert tie.department is None  # the lists know it, but not well enough: a person


def test_a_department_that_returned_the_ticket_is_no_candidate(directory: Directory) -> None:
    engine = engine_with(directory, LISTS, RULES)
    text = ticket("停水了，物业说不归他们管")
    decision = engine.decide(text, AT, exclude=("guanxian.housing",))
    assert (decision.department, decision.decided_by) == ("guanxian.water", "list")


def test_the_shipped_knowledge_dispatches_the_issue_examples(directory: Directory) -> None:
    engine = shipped_engine(directory, WorkCalendar())
    cases = {
        "家里没电了，整栋楼都黑了": "city.power",
        "燃气灶火苗很小，做饭都做不熟": "city.gas-heat",
        "暖气片不热，屋里才十几度": "city.gas-heat",
        "菜市场卖肉的短秤，一斤差二两": "guanxian.market",
        "孩子想插班到城区小学，需要什么手续": "guanxian.education",
        "楼下烧烤摊天天占道，烟熏得开不了窗": "guanxian.urban-mgmt",
        "停電三個小時了！！": "city.power",
        "ｘｘ小区停水２天了😡": "guanxian.water",
    }
    for text, expected in cases.items():
        assert engine.decide(ticket(text), AT).department == expected, text


def test_list_types_are_the_directory_types(directory: Directory) -> None:
    lists = ListSet.model_validate({"types": {"water": {"target": ["x"], "terms": {8: ["a"]}}}})
    assert lists.size("water") == 1
