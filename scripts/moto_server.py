"""moto's server (as `moto_server` starts it), made safe for concurrent clients.

aett's tests start this instead of `moto_server`, with the same arguments (`-H HOST -p PORT`).
Three changes, none of which changes what a single request does:

1. Requests are handled one at a time. moto answers each request on a thread of its own without
   a lock: a conditional write checks its condition and then writes in two steps, so two
   threads can both pass the check (real DynamoDB and S3 decide a conditional write
   atomically, and aett's concurrency tests depend on that).

2. A failed DynamoDB `TransactWriteItems` undoes the items it touched. moto 5.2 deep-copies every
   table a transaction names before it starts and puts the copies back on failure, which costs
   about 40 microseconds per item in the table for every transaction (300 ms with 8,000 items)
   and, with threads, put back tables that other requests had written meanwhile. With requests
   handled one at a time, undoing the touched items restores exactly the same state.

3. A DynamoDB `Query` on a table's own key looks at the items of the partition it names. moto
   5.2 sorts every item of the table and then keeps those of the partition, so each query costs
   about 50 microseconds per item in the table (40 ms with 800 items), which made a test that
   appends 400 commits to one stream take minutes.
"""

import argparse
import copy
import os
import signal
import sys
import threading

from werkzeug.serving import run_simple

from moto.dynamodb.exceptions import (
    ConditionalCheckFailed,
    MockValidationException,
    MultipleTransactionsException,
    TooManyTransactionsException,
    TransactionCanceledException,
    TransactWriteSingleOpException,
)
from moto.dynamodb.comparisons import get_filter_expression
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.table import Table
from moto.dynamodb.models.dynamo_type import DynamoType

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)


def _touched(backend, transact_items):
    """(table, hash key, range key, copy of the item or None) for each item a transaction names."""
    touched = []
    for item in transact_items:
        op_type, op = next(iter(item.items()))
        table_name = op.get("TableName")
        if table_name not in backend.tables:
            continue
        table = backend.tables[table_name]
        key = op["Item"] if op_type == "Put" else op.get("Key", {})
        if table.hash_key_attr not in key:
            continue
        hash_value = DynamoType(key[table.hash_key_attr])
        range_value = None
        if table.range_key_attr is not None:
            if table.range_key_attr not in key:
                continue
            range_value = DynamoType(key[table.range_key_attr])
        current = table.get_item(hash_value, range_value)
        touched.append((table, hash_value, range_value, copy.deepcopy(current)))
    return touched


def _undo(touched):
    for table, hash_value, range_value, saved in reversed(touched):
        if range_value is None:
            if saved is None:
                table.items.pop(hash_value, None)
            else:
                table.items[hash_value] = saved
        else:
            if saved is None:
                table.items[hash_value].pop(range_value, None)
            else:
                table.items[hash_value][range_value] = saved


def transact_write_items(self, transact_items):
    # moto 5.2.5's DynamoDBBackend.transact_write_items, rolling back by item instead of by table.
    if len(transact_items) > 100:
        raise TooManyTransactionsException()
    touched = _touched(self, transact_items)
    target_items = set()

    def check_unicity(table_name, key):
        item = (str(table_name), str(dict(sorted(key.items()))))
        if item in target_items:
            raise MultipleTransactionsException()
        target_items.add(item)

    errors = []
    for item in transact_items:
        original_item = None
        if len(list(item.keys())) > 1:
            raise TransactWriteSingleOpException
        try:
            op_type, op = next(iter(item.items()))
            if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
                raise ValueError("Unsupported transaction operation")
            table_name = op["TableName"]
            condition_expression = op.get("ConditionExpression")
            names = op.get("ExpressionAttributeNames")
            values = op.get("ExpressionAttributeValues")
            return_on_failure = op.get("ReturnValuesOnConditionCheckFailure")
            if op_type == "Put":
                attrs = op["Item"]
                table = self.get_table(table_name)
                key = {table.hash_key_attr: attrs[table.hash_key_attr]}
                if table.range_key_attr is not None:
                    key[table.range_key_attr] = attrs[table.range_key_attr]
            else:
                key = op["Key"]
            check_unicity(table_name, key)
            current = self.get_item(table_name, key)
            if condition_expression is not None:
                condition_op = get_filter_expression(condition_expression, names, values)
                if not condition_op.expr(current):
                    if return_on_failure == "ALL_OLD" and current:
                        original_item = current.to_json()["Attributes"]
                    raise ConditionalCheckFailed(item=original_item)
            if op_type == "Put":
                self.put_item(
                    table_name,
                    op["Item"],
                    condition_expression=condition_expression,
                    expression_attribute_names=names,
                    expression_attribute_values=values,
                )
            elif op_type == "Delete":
                self.delete_item(
                    table_name,
                    key,
                    condition_expression=condition_expression,
                    expression_attribute_names=names,
                    expression_attribute_values=values,
                )
            elif op_type == "Update":
                self.update_item(
                    table_name,
                    key,
                    update_expression=op["UpdateExpression"],
                    condition_expression=condition_expression,
                    expression_attribute_names=names,
                    expression_attribute_values=values,
                )
            errors.append((None, None, None))
        except (MultipleTransactionsException, MockValidationException):
            _undo(touched)
            raise
        except ConditionalCheckFailed as e:
            errors.append(("ConditionalCheckFailed", str(e.message), original_item))
        except Exception as e:  # noqa: E722 as moto does
            errors.append((type(e).__name__, str(e), original_item))
    if any(code is not None for code, _, _ in errors):
        _undo(touched)
        raise TransactionCanceledException(errors)


DynamoDBBackend.transact_write_items = transact_write_items

_table_query = Table.query
_table_all_items = Table.all_items


def query(self, hash_key, *args, **kwargs):
    # Positional as moto's backend calls it: ..., index_name is the 8th argument.
    index_name = args[6] if len(args) > 6 else kwargs.get("index_name")
    if index_name is None and hash_key is not None and self.range_key_attr is not None:
        self.aett_partition = hash_key
    try:
        return _table_query(self, hash_key, *args, **kwargs)
    finally:
        self.aett_partition = None


def all_items(self):
    partition = getattr(self, "aett_partition", None)
    if partition is None:
        return _table_all_items(self)
    # The items query keeps anyway (it sorts them by range key itself).
    return list(self.items[partition].values()) if partition in self.items else []


Table.query = query
Table.all_items = all_items


class OneAtATime:
    """A WSGI application that lets one request at a time into the one it wraps."""

    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        with self.lock:
            result = self.app(environ, start_response)
            try:
                return [b"".join(result)]
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=5000)
    args = parser.parse_args()
    os.environ.setdefault("MOTO_PORT", str(args.port))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(
        args.host,
        args.port,
        OneAtATime(app),
        threaded=True,
        request_handler=MotoRequestHandler,
    )


if __name__ == "__main__":
    main()
