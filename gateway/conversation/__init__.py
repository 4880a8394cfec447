"""The wire-neutral core: a conversation's items, the model protocol and its events, the tool loop.

    items.py   what a conversation holds (messages, code calls, function calls), in no wire format
    model.py   the Model protocol every upstream implements, its events, ModelError
    loop.py    the tool loop: a model turn's calls run in the container, until the model answers
    session.py one response: its history, container and files, its run, and its end as a record
    record.py  a finished response as stored, in no wire format's shape

Every client wire format (wire/) drives this; every upstream (upstreams/) implements its Model.
It imports nothing from either.
"""
