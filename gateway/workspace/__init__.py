"""Containers and files as the APIs see them, over the sandbox library, and the metadata store.

containers.py  containers (a sandbox each), their expiry and files
files.py       uploaded files
store.py       SQLite metadata;  records.py  its typed rows
"""
