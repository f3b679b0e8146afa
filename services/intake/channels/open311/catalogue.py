"""The Open311 service catalogue (catalogue.json beside this file): the kinds of
problem a citizen can report, each with its definition's attributes."""

from __future__ import annotations

import json
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shared.domain import Category

CATALOGUE_FILE = Path(__file__).with_name("catalogue.json")


class Datatype(StrEnum):
    STRING = "string"
    NUMBER = "number"
    DATETIME = "datetime"
    TEXT = "text"
    SINGLEVALUELIST = "singlevaluelist"
    MULTIVALUELIST = "multivaluelist"


class Value(BaseModel):
    model_config = ConfigDict(frozen=True)
    key: str
    name: str


class Attribute(BaseModel):
    model_config = ConfigDict(frozen=True)

    code: str
    datatype: Datatype
    required: bool
    order: int
    description: str
    datatype_description: str | None = None
    variable: bool = True
    values: tuple[Value, ...] = ()

    def read(self, answers: list[str]) -> str:
        """The answer as a line of ticket text; raises ValueError if it is wrong."""
        if self.datatype is not Datatype.MULTIVALUELIST and len(answers) > 1:
            raise ValueError(f"attribute[{self.code}] takes one value")
        names = {v.key: v.name for v in self.values}
        if self.datatype in (Datatype.SINGLEVALUELIST, Datatype.MULTIVALUELIST):
            unknown = [a for a in answers if a not in names]
            if unknown:
                raise ValueError(f"attribute[{self.code}]: unknown value {unknown[0]!r}")
            return "、".join(names[a] for a in answers)
        value = answers[0].strip()
        try:
            if self.datatype is Datatype.NUMBER:
                float(value)
            elif self.datatype is Datatype.DATETIME:
                datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:
            raise ValueError(f"attribute[{self.code}] is not a {self.datatype.value}") from exc
        return value[:500]


class Service(BaseModel):
    model_config = ConfigDict(frozen=True)

    service_code: str
    service_name: str
    description: str
    keywords: tuple[str, ...] = ()
    group: str
    category: Category
    attributes: tuple[Attribute, ...] = Field(default=())

    @property
    def metadata(self) -> bool:
        return bool(self.attributes)

    def listing(self) -> dict[str, Any]:
        return {
            "service_code": self.service_code,
            "service_name": self.service_name,
            "description": self.description,
            "metadata": self.metadata,
            "type": "realtime",
            "keywords": ", ".join(self.keywords),
            "group": self.group,
        }


class Catalogue:
    def __init__(self, services: list[Service]) -> None:
        self.services = {s.service_code: s for s in services}

    def get(self, code: str) -> Service | None:
        return self.services.get(code)


def load_catalogue(path: Path = CATALOGUE_FILE) -> Catalogue:
    data = json.loads(path.read_text(encoding="utf-8"))
    return Catalogue([Service.model_validate(s) for s in data["services"]])
