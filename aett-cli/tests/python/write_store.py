"""Writes a store with the Python aett (PyPI `aett` 3.x) for aett-cli's import tests.

Usage: write_store.py sqlite PATH
       write_store.py postgres URL COMMITS_TABLE SNAPSHOTS_TABLE

Writes two tenants' accounts through the library's own repository (commits with headers, a
snapshot), then prints, as JSON, every commit as the library reads it back, so the test can
compare what aett imported with what Python wrote (the commits as they were handed to the
store: the library reads a SQLite commit id back byte-swapped, so its reading is not the truth).
"""

import datetime
import json
import sys

from multipledispatch import dispatch
from pydantic import BaseModel

from aett.domain import Aggregate, DefaultAggregateRepository
from aett.eventstore import DomainEvent, Memento, Topic, TopicMap


@Topic("AccountOpened")
class Opened(DomainEvent):
    owner: str


@Topic("MoneyDeposited")
class Deposited(DomainEvent):
    amount: int


class AccountState(BaseModel):
    balance: int


class AccountMemento(Memento[AccountState]):
    pass


class Account(Aggregate[AccountMemento]):
    def __init__(self, stream_id, commit_sequence, memento=None):
        self.balance = 0
        super().__init__(stream_id, commit_sequence, memento)

    def apply_memento(self, memento: AccountMemento) -> None:
        self.balance = memento.payload.balance

    def get_memento(self) -> AccountMemento:
        return AccountMemento(
            id=self.id, version=self.version, payload=AccountState(balance=self.balance)
        )

    @dispatch(Opened)
    def _apply(self, event):
        pass

    @dispatch(Deposited)
    def _apply(self, event):
        self.balance += event.amount


def stores(kind, args, topics):
    if kind == "sqlite":
        from aett.storage.synchronous.sqlite import (
            CommitStore,
            PersistenceManagement,
            SnapshotStore,
        )

        (path,) = args
        PersistenceManagement(path, topics).initialize()
        return CommitStore(path, topics), SnapshotStore(path)
    # The PostgreSQL package's __init__ does not re-export its classes.
    from aett.storage.synchronous.postgresql.commit_store import CommitStore
    from aett.storage.synchronous.postgresql.persistence_management import (
        PersistenceManagement,
    )
    from aett.storage.synchronous.postgresql.snapshot_store import SnapshotStore

    url, commits, snapshots = args
    PersistenceManagement(url, topics, commits, snapshots).initialize()
    return (
        CommitStore(url, topics, table_name=commits),
        SnapshotStore(url, table_name=snapshots),
    )


def main():
    topics = TopicMap().add("AccountOpened", Opened).add("MoneyDeposited", Deposited)
    commit_store, snapshot_store = stores(sys.argv[1], sys.argv[2:], topics)
    now = datetime.datetime.now(datetime.timezone.utc)
    written = []
    commit = commit_store.commit

    def recording(attempt):
        stored = commit(attempt)
        written.append(
            {
                "tenant_id": attempt.tenant_id,
                "stream_id": attempt.stream_id,
                "commit_id": str(attempt.commit_id),
                "commit_sequence": attempt.commit_sequence,
                "stream_revision": attempt.stream_revision,
                "commit_stamp": attempt.commit_stamp.isoformat(),
                "events": [
                    {
                        "topic": Topic.get(type(e.body)),
                        "body": e.body.model_dump(mode="json"),
                    }
                    for e in attempt.events
                ],
            }
        )
        return stored

    commit_store.commit = recording
    for tenant in ["north", "south"]:
        repository = DefaultAggregateRepository(tenant, commit_store, snapshot_store)
        for n in range(3):
            stream = f"account-{n}"
            account = Account(stream, 0)
            account.raise_event(
                Opened(source=stream, timestamp=now, version=1, owner=f"owner {n}")
            )
            repository.save(account)
            for amount in range(1, 4):
                account = repository.get(Account, stream)
                account.raise_event(
                    Deposited(
                        source=stream,
                        timestamp=now,
                        version=account.version + 1,
                        amount=amount * 10 + n,
                    )
                )
                account.raise_event(
                    Deposited(
                        source=stream,
                        timestamp=now,
                        version=account.version + 1,
                        amount=1,
                    )
                )
                repository.save(account)
            if n == 0:
                repository.snapshot(Account, stream)
            # The library loads what it wrote (from the snapshot, for account-0).
            assert repository.get(Account, stream).balance == 60 + 3 * n + 3
    print(json.dumps(written))


main()
