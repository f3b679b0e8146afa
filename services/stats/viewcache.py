"""The views the aggregator wrote last, kept in memory (services.stats.aggregator)."""

from __future__ import annotations

from collections import OrderedDict

from shared.mongo import Document

CACHED_VIEWS = 20_000  # views kept in memory between batches (a few kB each)


class ViewCache:
    """The views this aggregator wrote last, so that a ticket's next events do not
    read its view again. Valid only while nobody else wrote: the aggregator
    forgets everything when the checkpoint is not where it left it (another
    aggregator or a rebuild went on meanwhile) and after any failed round."""

    def __init__(self, size: int = CACHED_VIEWS) -> None:
        self.size = size
        self.views: OrderedDict[str, Document] = OrderedDict()
        self.checkpoint: str | None = None

    def valid_at(self, checkpoint: str | None, pinned: bool) -> None:
        if pinned or checkpoint is None or checkpoint != self.checkpoint:
            self.forget()

    def forget(self) -> None:
        self.views.clear()
        self.checkpoint = None

    def keep(self, views: list[Document], checkpoint: str) -> None:
        for view in views:
            self.views[view["_id"]] = view
            self.views.move_to_end(view["_id"])
        while len(self.views) > self.size:
            self.views.popitem(last=False)
        self.checkpoint = checkpoint
