"""maggma stores for jobflow-remote's queue and job stores.

- `EnvURIStore`: a MongoDB collection whose connection string is read from an environment variable
  when the store connects. Project files and serialized stores hold only the variable's name, so
  credentials never reach a file, a log line or an error message.
- `SharedMongomockStore`: tests and laptops without a MongoDB server. Every store with the same
  `db_name` in one process uses ONE in-memory mongomock client (jobflow-remote opens several store
  objects for the same database, which must see the same data), `close()` keeps the data (mongomock's
  own close wipes it), and the database can be saved to / loaded from a JSON file so that the next
  `hetero status` / `resume` process sees the queue. Only one process may drive it at a time.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from maggma.stores import MongoStore


class MissingCredentialsError(RuntimeError):
    pass


class EnvURIStore(MongoStore):
    """MongoStore whose URI comes from the environment variable `uri_env` at connect time."""

    def __init__(self, uri_env: str = "HETERO_MONGO_URI", database: str = "hetero", collection_name: str = "jobs",
                 **kwargs):
        self.uri_env = uri_env
        kwargs.pop("uri", None)  # never serialized; read at connect time
        super().__init__(database=database, collection_name=collection_name, **kwargs)

    def connect(self, force_reset: bool = False):
        if self._coll is None or force_reset:
            uri = os.environ.get(self.uri_env)
            if not uri:
                raise MissingCredentialsError(
                    f"environment variable {self.uri_env} is not set; export it with the MongoDB connection "
                    f"string (e.g. in ~/.bashrc on the login node: export {self.uri_env}='mongodb+srv://...')"
                )
            from pymongo import MongoClient

            client = MongoClient(uri, **self.mongoclient_kwargs)
            self._coll = client[self.database][self.collection_name]

    @property
    def name(self) -> str:  # MongoStore.name would print the URI, password included
        return f"mongodb://${self.uri_env}/{self.database}/{self.collection_name}"

    def __repr__(self) -> str:
        return f"EnvURIStore({self.name})"

    def __eq__(self, other) -> bool:
        return isinstance(other, EnvURIStore) and (self.uri_env, self.database, self.collection_name) == (
            other.uri_env, other.database, other.collection_name)

    def __hash__(self) -> int:
        return hash((self.uri_env, self.database, self.collection_name))


_CLIENTS: dict[str, object] = {}
_LOCK = threading.Lock()


def shared_client(db_name: str, load_from: str | Path | None = None):
    """The process-wide mongomock client of `db_name`, filled from `load_from` the first time."""
    import mongomock_ng as mongomock

    with _LOCK:
        client = _CLIENTS.get(db_name)
        if client is None:
            client = mongomock.MongoClient()
            if load_from and Path(load_from).exists():
                _load(client[db_name], Path(load_from))
            _CLIENTS[db_name] = client
        return client


def forget_client(db_name: str) -> None:
    """Drop the in-memory copy (the next shared_client() call reloads from file)."""
    with _LOCK:
        _CLIENTS.pop(db_name, None)


def _load(db, path: Path) -> None:
    from bson import json_util

    data = json_util.loads(path.read_text())
    for coll, docs in data.items():
        if docs:
            db[coll].insert_many(docs)


def save_shared_db(db_name: str, path: str | Path) -> None:
    """Write every collection of the shared database to `path` (atomic rename)."""
    from bson import json_util

    client = _CLIENTS.get(db_name)
    if client is None:
        return
    db = client[db_name]
    with _LOCK:
        data = {c: list(db[c].find({})) for c in db.list_collection_names()}
    path = Path(path)
    tmp = path.with_suffix(path.suffix + f".tmp{os.getpid()}")
    tmp.write_text(json_util.dumps(data))
    os.replace(tmp, path)


class SharedMongomockStore(MongoStore):
    """In-process mongomock collection shared by every store of the same `db_name` (tests/laptops only)."""

    def __init__(self, db_name: str = "hetero", collection_name: str = "jobs", persist_path: str | None = None,
                 **kwargs):
        self.db_name = db_name
        self.persist_path = persist_path
        super().__init__(database=db_name, collection_name=collection_name, **kwargs)

    def connect(self, force_reset: bool = False):
        if self._coll is None or force_reset:
            self._coll = shared_client(self.db_name, self.persist_path)[self.db_name][self.collection_name]

    def close(self):  # mongomock's close() would wipe the shared data
        pass

    @property
    def name(self) -> str:
        return f"mongomock://{self.db_name}/{self.collection_name}"

    def __eq__(self, other) -> bool:
        return isinstance(other, SharedMongomockStore) and (self.db_name, self.collection_name) == (
            other.db_name, other.collection_name)

    def __hash__(self) -> int:
        return hash((self.db_name, self.collection_name))
