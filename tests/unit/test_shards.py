"""Forked worker processes that share keys: the stop that ends a round early."""

from __future__ import annotations

import time

from localpypi_sync.shards import Lost, map_in_processes


def slow_squares(keys):
    for key in keys:
        time.sleep(0.05)
        yield key, key * key


def test_a_stop_leaves_the_keys_no_process_took_to_the_caller():
    """Once stop() is true the processes finish what they hold and take nothing new; what nobody took comes
    back in order as untaken, not as lost."""
    keys = list(range(40))
    results = []
    untaken: list[int] = []
    for key, result in map_in_processes(slow_squares, keys, 2, lambda: len(results) >= 3, untaken):
        results.append((key, result))
    assert not any(isinstance(result, Lost) for _, result in results)
    assert all(result == key * key for key, result in results)
    done = [key for key, _ in results]
    assert 3 <= len(done) < 40 and untaken
    assert sorted(done + untaken) == keys and untaken == keys[len(keys) - len(untaken):]


def test_without_a_stop_every_key_is_taken():
    untaken: list[int] = []
    results = dict(map_in_processes(slow_squares, list(range(6)), 2, lambda: False, untaken))
    assert results == {key: key * key for key in range(6)} and not untaken
