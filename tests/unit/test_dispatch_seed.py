"""The seed model: learnt from the labelled requests shipped with the reference
city and the lists' terms, consulted where the lists are not sure."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from services.router.backtest import read_tickets
from services.router.evaluation import evaluate
from services.router.knowledge import EngineFactory
from services.router.lists import SHIPPED_LISTS, check_lists_file
from services.router.rules import RulesError, load_rules
from services.router.seed import SHIPPED_EXAMPLES, list_terms, read_examples, train_seed
from services.router.text import normalize
from services.router.training import Example
from shared.directory import Directory
from shared.domain import TicketDraft
from shared.workcalendar import WorkCalendar

pytestmark = pytest.mark.usefixtures("no_hotline_env")
AT = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
SETS = Path(__file__).resolve().parents[1] / "data" / "dispatch"
SHIPPED_SETS = tuple(
    f"dispatch_{name}.jsonl"
    for name in (
        "dev",
        "eval",
        "holdout",
        "holdout2",
        "train_a",
        "train_b",
        "train_c",
        "train_d",
        "train_e",
        "train_f",
    )
)


def factory(directory: Directory, seed: Path | None = SHIPPED_EXAMPLES) -> EngineFactory:
    return EngineFactory(directory, WorkCalendar(), plugins=False, seed_file=seed)


def draft(text: str, district: str = "guanxian") -> TicketDraft:
    return TicketDraft.model_validate(
        {"channel": "phone", "district": district, "category": "help", "text": text}
    )


def test_the_shipped_examples_are_the_labelled_sets_and_nothing_else() -> None:
    # Where the seed model's knowledge comes from, line for line: the sets of
    # tests/data/dispatch (their README says how each was written), never the
    # independent set still to be measured (dispatch_holdout3.jsonl).
    expected = "".join((SETS / name).read_text("utf-8") for name in SHIPPED_SETS)
    assert SHIPPED_EXAMPLES.read_text("utf-8") == expected


def texts_of(name: str) -> list[str]:
    with (SETS / name).open(encoding="utf-8") as lines:
        return [json.loads(line)["text"].strip() for line in lines if line.strip()]


def test_no_writer_text_is_in_another_set_and_no_independent_text_is_taught() -> None:
    # A text in two sets would be learnt and measured at once: tools/dispatch_sets.py
    # leaves such texts out when a writer's training set is added.
    for name in (n for n in SHIPPED_SETS if n.startswith("dispatch_train_")):
        own = texts_of(name)
        others = {t for other in SHIPPED_SETS if other != name for t in texts_of(other)}
        assert len(own) == len(set(own)) and others.isdisjoint(own), name
    if (SETS / "dispatch_holdout3.jsonl").exists():  # added by the lead, measured, never taught
        taught = {t for name in SHIPPED_SETS for t in texts_of(name)}
        assert taught.isdisjoint(texts_of("dispatch_holdout3.jsonl"))


def test_it_learns_types_from_examples_and_terms() -> None:
    examples = [Example("水龙头不出水了", "water"), Example("饭店卖过期食品", "market")] * 3
    terms = [Example("停水", "water"), Example("缺斤少两", "market")]
    model = train_seed(examples, terms)
    assert model.examples == 6
    assert model.predict(normalize("厨房水龙头好几天没水"))[0][0] == "water"
    assert model.predict(normalize("超市卖过期面包"))[0][0] == "market"
    # Known single characters alone (水 of 水费, 品 of 商品) name no matter:
    # every label is as likely, and the seed decides nothing.
    assert list(model.shares(normalize("水品"))) == [0.5, 0.5]
    shares = model.shares(normalize("自来水不出水"))
    assert abs(float(shares.sum()) - 1) < 1e-6
    assert len(model.predict("", top=3)) == 2  # nothing known: even shares, two labels


def test_one_type_is_not_enough() -> None:
    with pytest.raises(ValueError, match="at least two"):
        train_seed([Example("停水", "water")] * 3, [])


def test_zone_requests_teach_nothing(directory: Directory) -> None:
    # The zone takes them by rule whatever they are about: as examples they
    # would teach the sub-centre every matter.
    examples = read_examples(SETS / "dispatch_dev.jsonl", directory)
    tickets, _ = read_tickets(SETS / "dispatch_dev.jsonl", directory)
    zones = [t for t in tickets if directory.districts[t.draft.district].kind == "development zone"]
    assert zones and len(examples) == len(tickets) - len(zones)


def test_the_lists_matter_terms_are_examples_and_their_context_words_not(
    directory: Directory,
) -> None:
    lists, problems = check_lists_file(SHIPPED_LISTS, directory)
    assert lists is not None, problems
    terms = {(e.text, e.label) for e in list_terms(lists)}
    assert ("停水", "water") in terms
    assert all(text != "小区" for text, _ in terms)  # weight 3: a place, not a matter


def test_the_lists_decide_alone_when_sure(directory: Directory) -> None:
    engine = factory(directory)(load_rules())
    decision = engine.decide(draft("自来水发黄有味道，水质太差了"), AT)
    assert (decision.department, decision.decided_by) == ("guanxian.water", "list")
    assert decision.probability is None


def test_a_close_call_of_the_lists_goes_to_the_seed_model(directory: Directory) -> None:
    # 小区 and 灯 make it look like the property's (housing) or the power
    # company's; the request is about cars smashed at night (police). The
    # lists alone are not sure of any type.
    text = "楼下有人半夜拿着棍子砸小区门口的车，灯都砸坏了"
    with_seed = factory(directory)(load_rules()).decide(draft(text), AT)
    without = factory(directory, None)(load_rules()).decide(draft(text), AT)
    assert with_seed.decided_by == "model"
    assert with_seed.probability is not None and with_seed.probability >= 0.2
    assert "seed gives" in with_seed.reason
    assert with_seed.candidates[0].source == "seed"
    assert with_seed.department == "city.police"
    assert without.decided_by in ("list", "manual")


def test_a_request_that_says_nothing_still_waits_for_a_person(directory: Directory) -> None:
    decision = factory(directory)(load_rules()).decide(draft("喂，你好"), AT)
    assert decision.department is None or decision.decided_by == "rule"  # county-local


def test_examples_that_do_not_load_are_named(tmp_path: Path, directory: Directory) -> None:
    missing = tmp_path / "examples.jsonl"
    with pytest.raises(RulesError, match=r"examples\.jsonl: the seed model's examples do not load"):
        factory(directory, missing)(load_rules())
    missing.write_text('{"district": "冠县", "text": "停水"}\n{"district": "冠"}\n', "utf-8")
    with pytest.raises(RulesError, match=r"examples\.jsonl:2: skipped"):
        factory(directory, missing)(load_rules())


def test_it_generalises_to_a_set_it_never_saw(tmp_path: Path, directory: Directory) -> None:
    # Trained on dev and eval only, measured on the set written apart from
    # both: the cross-set figure of the method (91.1 % when it was chosen; the
    # lists alone 80.0 %). A floor below it, so a change that breaks the
    # method fails here and `BENCH dispatch.seed_cross_accuracy` shows by how much.
    seed = tmp_path / "dev-eval.jsonl"
    seed.write_text("".join((SETS / n).read_text("utf-8") for n in SHIPPED_SETS[:2]), "utf-8")
    tickets, _ = read_tickets(SETS / "dispatch_holdout.jsonl", directory)
    report = evaluate(factory(directory, seed)(load_rules()), tickets, AT)
    assert report.accuracy >= 0.88
    assert report.by_decider()["model"] > 100
