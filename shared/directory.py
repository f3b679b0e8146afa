"""The city's directory: districts and the departments tickets are dispatched to.

Loaded from the JSON files named in the settings (the reference city's by
default), validated once at start.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class Contact(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    webhook: str | None = None
    email: str | None = None
    sms: str | None = None
    # Delivery channels in order of preference; empty means webhook, email, SMS.
    channels: list[str] = Field(default_factory=list)


class Department(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str
    name: str
    level: str
    district: str | None = None
    parent: str | None = None
    handles: str = ""
    contact: Contact = Field(default_factory=Contact)


class District(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str
    name: str
    kind: str
    towns: tuple[str, ...] = ()


class Directory:
    def __init__(self, districts: list[District], departments: list[Department]) -> None:
        self.districts = {d.id: d for d in districts}
        self.departments = {d.id: d for d in departments}
        self._district_by_name = {d.name: d for d in districts}
        for dep in departments:
            if dep.parent is not None and dep.parent not in self.departments:
                raise ValueError(f"department {dep.id}: unknown parent {dep.parent}")

    def district(self, key: str) -> District | None:
        """A district by id ('guanxian') or by name ('冠县')."""
        return self.districts.get(key) or self._district_by_name.get(key.strip())

    def department(self, dep_id: str) -> Department | None:
        return self.departments.get(dep_id)

    def chain_above(self, dep_id: str) -> list[Department]:
        """The units above a department, nearest first (for supervision)."""
        chain: list[Department] = []
        dep = self.departments.get(dep_id)
        while dep is not None and dep.parent is not None:
            dep = self.departments[dep.parent]
            chain.append(dep)
        return chain


def load_directory(districts_file: Path, departments_file: Path) -> Directory:
    districts = json.loads(districts_file.read_text(encoding="utf-8"))["districts"]
    departments = json.loads(departments_file.read_text(encoding="utf-8"))["departments"]
    return Directory(
        [District.model_validate(d) for d in districts],
        [Department.model_validate(d) for d in departments],
    )
