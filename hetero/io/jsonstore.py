"""The run folder's job store file, written atomically (the reader is hetero.io.store)."""

from __future__ import annotations

import orjson
from maggma.stores import JSONStore

from hetero.io.store import atomic_write_text


class AtomicJSONStore(JSONStore):
    """maggma's JSONStore, but every update is written to a temporary file and renamed over the store,
    so a run killed while the store is written leaves the previous complete store."""

    def update_json_file(self):
        data = list(self.query())
        for d in data:
            d.pop("_id", None)
        text = orjson.dumps(data, option=self.serialization_option, default=self.serialization_default).decode()
        atomic_write_text(self.paths[0], text)
