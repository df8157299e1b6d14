"""Execution engines for `generate`: local (in-process or a process pool) and Ray Data.

Each engine takes a stream of batches, a LabelJob and a `commit(keys, table)` callback, keeps a bounded
number of batches in flight, and commits results in input order.
"""
