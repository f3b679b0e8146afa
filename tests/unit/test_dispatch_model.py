"""The dispatch model learnt from a city's own history, and suggester plugins.

The simulated history is a city whose citizens name their matters in words the
shipped lists do not know (local nicknames of the bureaus' matters); the rules
and lists then leave most of its tickets to the sub-centre or a person, and a
model trained on the history's closed tickets gets them right."""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from datetime import UTC, datetime
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from services.cli import main as hotline
from services.router import knowledge
from services.router.backtest import Ticket
from services.router.engine import RuleEngine
from services.router.evaluation import evaluate
from services.router.knowledge import SUGGESTERS_GROUP, EngineFactory
from services.router.model import ModelError, load_model, unit_type
from services.router.rules import RulesError, load_rules
from services.router.training import examples_from_tickets, train_and_save
from services.router.verdict import Candidate
from shared.directory import Directory
from shared.domain import TicketDraft
from shared.workcalendar import WorkCalendar

pytestmark = pytest.mark.usefixtures("no_hotline_env")
AT = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
COUNTIES = ["guanxian", "yanggu", "linqing", "gaotang", "shenxian"]
# Each unit's matters by the nicknames of this (imaginary) city.
NICKNAMES = {
    "{district}.water": ["龙王爷罢工", "龙王爷又歇了", "龙头里干巴巴"],
    "city.power": ["灯神下班", "灯神又跑了", "灯神不来"],
    "{district}.market": ["秤砣耍滑头", "秤砣缺德", "秤砣做鬼"],
    "{district}.hrss": ["血汗钱被扣住", "血汗钱打水漂", "血汗钱拿不回"],
    "city.police": ["夜猫子串门", "夜猫子来过", "夜猫子又来了"],
    "{district}": ["老碾盘那档子事", "碾盘旁边那事", "老碾盘又闹腾"],
}
FILLERS = ["麻烦帮忙看看", "好几天了", "一直没人管", "怎么办", "急", "请尽快处理", ""]


def history(count: int, seed: int) -> list[Ticket]:
    rng = random.Random(seed)
    tickets = []
    for i in range(count):
        template, words = rng.choice(list(NICKNAMES.items()))
        district = rng.choice(COUNTIES)
        text = f"{rng.choice(FILLERS)}{rng.choice(words)}{rng.choice(FILLERS)}"
        draft = TicketDraft.model_validate(
            {"channel": "phone", "district": district, "category": "help", "text": text}
        )
        tickets.append(Ticket(f"H{i}", draft, template.replace("{district}", district)))
    return tickets


def factory(directory: Directory, model: Path | None, plugins: bool = False) -> EngineFactory:
    return EngineFactory(directory, WorkCalendar(), model_file=model, plugins=plugins)


def test_accuracy_on_held_out_history_rises_after_training(
    tmp_path: Path, directory: Directory
) -> None:
    train, held_out = history(300, seed=1), history(120, seed=2)
    before = evaluate(factory(directory, None)(load_rules()), held_out, AT)
    path = tmp_path / "model.joblib"
    model = train_and_save(examples_from_tickets(train, directory), path)
    assert (model.version, model.tickets) == (1, 300)
    after = evaluate(factory(directory, path)(load_rules()), held_out, AT)
    # Before: what the lists half know (秤, 血汗钱) and the sub-centre's share,
    # which the fallback rule gets right.
    assert before.accuracy < 0.7
    assert after.accuracy >= 0.95
    assert after.accuracy - before.accuracy >= 0.3
    deciders = after.by_decider()
    assert deciders["model"] > deciders["rule"]
    decided = next(o.decision for o in after.outcomes if o.decision.decided_by == "model")
    assert decided.probability is not None and decided.probability >= 0.6


def test_the_model_is_consulted_only_where_rules_and_lists_are_not_sure(
    tmp_path: Path, directory: Directory
) -> None:
    path = tmp_path / "model.joblib"
    train_and_save(examples_from_tickets(history(300, seed=1), directory), path)
    engine = factory(directory, path)(load_rules())
    listed = TicketDraft.model_validate(
        {"channel": "phone", "district": "guanxian", "category": "help", "text": "暖气片不热"}
    )
    assert engine.decide(listed, AT).decided_by == "rule"  # heating-outage
    sure = listed.model_copy(update={"text": "物业不管电梯，开发商也不管"})
    decision = engine.decide(sure, AT)
    assert (decision.decided_by, decision.probability) == ("list", None)


def test_training_again_writes_the_next_version(tmp_path: Path, directory: Directory) -> None:
    path = tmp_path / "model.joblib"
    examples = examples_from_tickets(history(60, seed=3), directory)
    assert train_and_save(examples, path).version == 1
    assert train_and_save(examples, path).version == 2
    assert load_model(path).version == 2
    assert not path.with_name(path.name + ".partial").exists()


def test_too_little_history_is_refused(tmp_path: Path, directory: Directory) -> None:
    with pytest.raises(ValueError, match="training needs 20"):
        train_and_save(examples_from_tickets(history(5, seed=3), directory), tmp_path / "m")


def test_a_model_file_that_does_not_load_is_named(tmp_path: Path, directory: Directory) -> None:
    path = tmp_path / "model.joblib"
    path.write_bytes(b"not a model at all")
    with pytest.raises(ModelError, match=f"{path}: the dispatch model does not load"):
        load_model(path)
    with pytest.raises(RulesError, match="does not load"):
        factory(directory, path)(load_rules())


def test_a_city_without_history_runs_without_a_model(tmp_path: Path, directory: Directory) -> None:
    engine = factory(directory, tmp_path / "not-trained-yet.joblib")(load_rules())
    assert engine.suggesters == ()


def test_unit_types(directory: Directory) -> None:
    assert unit_type("guanxian.water", directory) == "water"
    assert unit_type("city.power", directory) == "power"
    assert unit_type("guanxian", directory) == "sub-centre"
    assert unit_type("econ-zone", directory) == "sub-centre"
    assert unit_type("city.nowhere", directory) is None


def write_history(path: Path, tickets: Sequence[Ticket]) -> None:
    lines = [
        json.dumps(
            {**t.draft.model_dump(mode="json"), "id": t.id, "expected_department": t.expected},
            ensure_ascii=False,
        )
        for t in tickets
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_cli_train_and_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    source, model = tmp_path / "history.jsonl", tmp_path / "model.joblib"
    write_history(source, history(80, seed=4))
    assert hotline(["dispatch", "train", "--history", str(source), "--out", str(model)]) == 0
    assert capsys.readouterr().out.startswith("ok: model v1 from 80 tickets (")
    monkeypatch.setenv("HOTLINE_DISPATCH_MODEL_FILE", str(model))
    assert hotline(["rules", "check"]) == 0
    assert capsys.readouterr().out.rstrip().endswith(", suggester model")
    model.write_bytes(b"\x80\x04garbage")
    assert hotline(["rules", "check"]) == 1
    err = capsys.readouterr().err
    assert f"{model}: the dispatch model does not load" in err


def test_cli_train_needs_a_target(capsys: pytest.CaptureFixture[str]) -> None:
    assert hotline(["dispatch", "train"]) == 1
    assert "HOTLINE_DISPATCH_MODEL_FILE" in capsys.readouterr().err


def test_cli_evaluate_prints_the_measures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "eval.jsonl"
    write_history(path, history(30, seed=5))
    path.write_text(path.read_text(encoding="utf-8") + "{oops\n", encoding="utf-8")
    assert hotline(["dispatch", "evaluate", str(path)]) == 0
    out = capsys.readouterr()
    lines = out.out.splitlines()
    assert lines[0] == "tickets: 30"
    assert lines[1].startswith("accuracy: ") and "manual queue counts as wrong" in lines[1]
    assert lines[2].startswith("manual share: ")
    assert any(line.startswith("guanxian.water") for line in lines)
    assert "most frequent confusions (sent to <- right department):" in lines
    assert f"{path}:31: skipped" in out.err


def test_cli_evaluate_of_a_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert hotline(["dispatch", "evaluate", str(tmp_path / "none.jsonl")]) == 1
    assert "cannot read the tickets" in capsys.readouterr().err


# --- plugins --------------------------------------------------------------------------------


class CitySuggester:
    """What a city's own model service would answer, here always the tax office."""

    name = "city-service"

    def __init__(self, directory: Directory) -> None:
        self.directory = directory

    def suggest(self, draft: TicketDraft) -> Sequence[Candidate]:
        return [Candidate("city.tax", 0.9, self.name), Candidate("city.agri", 0.05, self.name)]


def test_a_suggester_plugin_is_consulted(
    monkeypatch: pytest.MonkeyPatch, directory: Directory
) -> None:
    points = [
        EntryPoint("city", f"{__name__}:CitySuggester", SUGGESTERS_GROUP),
        EntryPoint("broken", f"{__name__}:NoSuchThing", SUGGESTERS_GROUP),
    ]
    monkeypatch.setattr(knowledge, "entry_points", lambda group: points)
    engine: RuleEngine = factory(directory, None, plugins=True)(load_rules())
    assert [s.name for s in engine.suggesters] == ["city-service"]  # the broken one is left out
    draft = TicketDraft.model_validate(
        {"channel": "phone", "district": "guanxian", "category": "help", "text": "那个事怎么办"}
    )
    decision = engine.decide(draft, AT)
    assert (decision.department, decision.decided_by, decision.probability) == (
        "city.tax",
        "model",
        0.9,
    )
    assert [c.department for c in decision.candidates] == ["city.tax", "city.agri"]
