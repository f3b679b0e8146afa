"""`hotline rules check`: every problem of a rules file, each at its line."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from services.cli import main as hotline
from services.router.checks import check_ruleset, check_text
from services.router.lines import locate, read_document
from services.router.rules import parse_rules
from shared.directory import Directory, load_directory
from shared.settings import DATA_DIR
from tests.unit.test_rules import HEADER, rule, rules_text


@pytest.fixture(scope="module")
def directory() -> Directory:
    return load_directory(DATA_DIR / "districts.json", DATA_DIR / "departments.json")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith("HOTLINE_"):
            monkeypatch.delenv(name)


def line_of(text: str, marker: str) -> int:
    """The 1-based line of the only line holding marker."""
    lines = [n for n, line in enumerate(text.splitlines(), start=1) if marker in line]
    assert len(lines) == 1, (marker, lines)
    return lines[0]


def problems_of(text: str, directory: Directory) -> list[str]:
    ruleset, problems = check_text(text, "city.yaml", directory)
    assert (ruleset is None) == bool(problems)
    return problems


# Block style, as operators write it; one error of each kind, each on a line of its own.
BROKEN = (
    HEADER
    + """\
  - id: noise
    when:
      keywords: {any: [噪音]}
    then:
      department: city.nowhere
  - id: atlantis
    when:
      districts: [冠县, atlantis]
    then:
      department: city.police
      co_departments: [city.ghost]
      time_limit: forever
  - id: everything
    when: {}
    then: {department: city.police}
  - id: bad-regex
    when:
      regex: '([a-z'
    then: {department: city.police}
  - id: flat
    when:
      area: [[36.4, 115.9], [36.5, 116.0], [36.6, 116.1]]
    then: {department: city.police}
  - id: gas
    when:
      keywords: {any: [燃气]}
    then: {department: city.gas-heat}
  - id: gas-county
    when:
      districts: [guanxian]
      keywords: {any: [燃氣]}
    then: {department: guanxian.env}
  - id: typo
    when:
      categoris: [help]
    then: {department: city.police}
  - id: gas
    when: {channels: [sms]}
    then: {department: city.police, response_limit: never}
    then: {department: city.police}
"""
)

EXPECTED = [
    ("department: city.nowhere", "rules[0] (noise): unknown department 'city.nowhere'"),
    ("districts: [冠县, atlantis]", "rules[1] (atlantis): unknown district 'atlantis'"),
    ("co_departments: [city.ghost]", "rules[1] (atlantis): unknown department 'city.ghost'"),
    ("when: {}", "rules[2] (everything): empty condition (would match everything)"),
    ("regex: '([a-z'", "rules[3] (bad-regex): when.regex: invalid regular expression"),
    ("area: [[36.4, 115.9]", "rules[4] (flat): when.area: degenerate polygon"),
    (
        "id: gas-county",
        "rules[6] (gas-county): unreachable, rule gas above matches everything it does",
    ),
    ("categoris: [help]", "rules[7] (typo): when.categoris: Extra inputs are not permitted"),
    ("time_limit: forever", "rules[1] (atlantis): unknown time limit 'forever'"),
]


def test_every_problem_is_reported_at_its_line(directory: Directory) -> None:
    problems = problems_of(BROKEN, directory)
    for marker, message in EXPECTED:
        prefix = f"city.yaml:{line_of(BROKEN, marker)}: {message}"
        assert [p for p in problems if p.startswith(prefix)], (prefix, problems)
    second_gas = line_of(BROKEN, "when: {channels: [sms]}") - 1
    assert f"city.yaml:{second_gas}: rules[8] (gas): duplicate id, rules[5] has it already" in (
        problems
    )
    # The last `then` wins, as YAML has it: 'never' is not looked up.
    assert not [p for p in problems if "never" in p]
    last = len(BROKEN.splitlines())
    assert f"city.yaml:{last}: duplicate key 'then' (the last one would win)" in problems
    assert len(problems) == 11, problems
    lines = [int(p.split(":")[1]) for p in problems]
    assert lines == sorted(lines)


def test_cli_check_prints_every_problem(
    tmp_path: Path, directory: Directory, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "city.yaml"
    path.write_text(BROKEN, encoding="utf-8")
    assert hotline(["rules", "check", str(path)]) == 1
    out = capsys.readouterr()
    assert out.out == ""
    err = out.err.splitlines()
    assert err[-1] == f"error: {path}: 11 problem(s)"
    expected = [p.replace("city.yaml", str(path), 1) for p in problems_of(BROKEN, directory)]
    assert err[:-1] == expected


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("version: 1\nrules: [\n", 2, "not valid YAML"),
        ("version: 1\n  bad: indent\n", 2, "not valid YAML"),
        ("- a\n- b\n", 1, "Input should be a valid dictionary"),
        ("", 1, "Input should be a valid dictionary"),
        (HEADER.replace("version: 1", "version: 2"), 1, "version: Input should be 1"),
        (HEADER.replace("  general:", "  general: {weeks: 1}\n  x:"), 6, "Extra inputs"),
        (HEADER + "  - {id: r, when: {towns: [贾镇]}}\n", 11, "rules[0] (r): missing 'then'"),
    ],
    ids=["syntax", "indent", "a-list", "empty", "version", "time-limit", "missing-then"],
)
def test_file_level_problems_have_lines(
    directory: Directory, text: str, line: int, message: str
) -> None:
    problems = problems_of(text, directory)
    assert problems[0].startswith(f"city.yaml:{line}: "), problems
    assert message in problems[0]


def test_missing_sections_are_named(directory: Directory) -> None:
    problems = problems_of("version: 1\n", directory)
    assert problems == [
        "city.yaml:1: missing 'time_limits'",
        "city.yaml:1: missing 'response_limits'",
        "city.yaml:1: missing 'rules'",
    ]


def test_keyword_without_letters_is_a_problem(directory: Directory) -> None:
    text = rules_text(rule("r", "{keywords: {any: [停水, '！？']}}"))
    assert problems_of(text, directory) == [
        "city.yaml:11: rules[0] (r): keyword '！？' is empty without its spaces and punctuation"
    ]


def test_a_rule_to_a_missing_department_shadows_nothing(directory: Directory) -> None:
    text = rules_text(
        rule("a", "{keywords: {any: [噪音]}}", "city.nowhere"),
        rule("b", "{keywords: {any: [噪音]}}"),
    )
    assert problems_of(text, directory) == [
        "city.yaml:11: rules[0] (a): unknown department 'city.nowhere'"
    ]


def test_locate_skips_what_the_file_does_not_have() -> None:
    document = read_document("a:\n  b:\n    - x\n    - y\n")
    assert locate(document.root, ("a", "b", 1)) == (4, ("a", "b", 1))
    assert locate(document.root, ("a", "function-after[x]", "b", 0)) == (3, ("a", "b", 0))
    assert locate(document.root, ("a", "c")) == (1, ("a",))
    assert locate(None, ("a",)) == (1, ())


# --- unreachable rules with the new conditions --------------------------------------------

NIGHT = "time_window: {from: '22:00', to: '06:00'}"
LATE_NIGHT = "time_window: {from: '23:00', to: '05:00'}"
EVENING = "time_window: {from: '18:00', to: '23:00'}"
BIG = "area: [[36.0, 115.0], [37.0, 115.0], [37.0, 116.0], [36.0, 116.0]]"
SMALL = "area: [[36.4, 115.4], [36.6, 115.4], [36.6, 115.6]]"
ELSEWHERE = "area: [[38.4, 115.4], [38.6, 115.4], [38.6, 115.6]]"


@pytest.mark.parametrize(
    ("first", "second", "shadowed"),
    [
        (f"{{{NIGHT}}}", f"{{{LATE_NIGHT}, categories: [help]}}", True),
        (f"{{{LATE_NIGHT}}}", f"{{{NIGHT}}}", False),
        (f"{{{NIGHT}}}", f"{{{EVENING}}}", False),
        (f"{{{NIGHT}}}", "{categories: [help]}", False),
        (f"{{{BIG}}}", f"{{{SMALL}}}", True),
        (f"{{{SMALL}}}", f"{{{BIG}}}", False),
        (f"{{{BIG}}}", f"{{{ELSEWHERE}}}", False),
        (f"{{{BIG}}}", "{categories: [help]}", False),
        (r"{regex: '\d+号楼'}", r"{regex: '\d+号楼', categories: [help]}", True),
        (r"{regex: '\d+号楼'}", r"{regex: '\d+栋'}", False),
        ("{keywords: {any: [停电]}}", "{keywords: {any: [停電]}, categories: [help]}", True),
    ],
)
def test_unreachable_rules_with_windows_areas_and_regexes(
    directory: Directory, first: str, second: str, shadowed: bool
) -> None:
    text = rules_text(rule("first", first), rule("second", second))
    expected = ["rules[1] (second): unreachable, rule first above matches everything it does"]
    assert check_ruleset(parse_rules(text), directory) == (expected if shadowed else [])
