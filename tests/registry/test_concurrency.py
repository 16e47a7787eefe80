"""Several processes on one registry: racing promoters, readers polling a slot, and first
opens of a fresh database. Real processes, on SQLite and PostgreSQL.

Processes are forked rather than spawned because spawning re-imports numpy and SQLAlchemy in
each one, which costs seconds. Every child opens its own registry and never touches the
parent's connections.
"""

from __future__ import annotations

import multiprocessing
import random
import time

import pytest
from tests.conftest import SMALL_SPEC
from tests.registry.conftest import make_model

from itsacat.nn import parse_spec
from itsacat.registry import RegistryError, SlotConflict, open_registry
from itsacat.settings import Settings

START_METHOD = "fork"
ROUNDS = 100
READERS = 2
WAIT_SECONDS = 60  # a barrier or queue wait this long means a process hung


def _promote_rounds(settings: Settings, version_id: int, expected: int, barrier, results,
                    rounds: int) -> None:
    """Promote `version_id` to blue once per round, right after the barrier opens."""
    rng = random.Random(version_id)
    with open_registry(settings) as registry:
        for round_number in range(rounds):
            barrier.wait(WAIT_SECONDS)
            time.sleep(rng.uniform(0, 0.003))
            try:
                registry.promote(version_id, "blue", expected=expected, by=f"p{version_id}",
                                 reason=f"round {round_number}")
                results.put((round_number, version_id, "won", None))
            except SlotConflict as conflict:
                results.put((round_number, version_id, "conflict", conflict.current))
            barrier.wait(WAIT_SECONDS)


def _read_blue(settings: Settings, stop, observations) -> None:
    """Read blue's version in a tight loop until `stop` is set; report each distinct value."""
    seen: dict[object, int] = {}
    with open_registry(settings) as registry:
        while not stop.is_set():
            state = registry.slot_state("blue")
            seen[state.version_id] = seen.get(state.version_id, 0) + 1
    observations.put(seen)


def _open_and_register(settings: Settings, seed: int, barrier, results) -> None:
    spec = parse_spec(SMALL_SPEC)
    barrier.wait(WAIT_SECONDS)
    with open_registry(settings) as registry:
        results.put(registry.register_model(make_model(spec, seed=seed), source="import").id)


def test_promote_two_racing_promoters_exactly_one_wins(registry, settings, small_spec):
    v1, v2, v3 = (registry.register_model(make_model(small_spec, seed=seed), source="import")
                  for seed in (1, 2, 3))
    context = multiprocessing.get_context(START_METHOD)
    barrier = context.Barrier(3)
    results, observations, stop = context.Queue(), context.Queue(), context.Event()
    promoters = [context.Process(target=_promote_rounds,
                                 args=(settings, version.id, v1.id, barrier, results, ROUNDS))
                 for version in (v2, v3)]
    readers = [context.Process(target=_read_blue, args=(settings, stop, observations))
               for _ in range(READERS)]
    for process in promoters + readers:
        process.start()

    try:
        # Slot blue is empty until the first reset, so the readers may see None only then.
        registry.promote(v1.id, "blue", expected=None, by="reset", reason="round 0")
        outcomes = []
        for round_number in range(ROUNDS):
            barrier.wait(WAIT_SECONDS)
            barrier.wait(WAIT_SECONDS)
            outcome = sorted(results.get(timeout=WAIT_SECONDS) for _ in range(2))
            outcomes.append(outcome)
            state = registry.slot_state("blue")
            winner = [version for _, version, result, _ in outcome if result == "won"]
            assert len(winner) == 1, f"round {round_number}: {outcome}"
            assert [current for _, _, result, current in outcome if result == "conflict"] == (
                winner), f"round {round_number}: the loser must name the winner, {outcome}"
            assert (state.version_id, state.previous_version_id) == (winner[0], v1.id)
            registry.promote(v1.id, "blue", expected=winner[0], by="reset",
                             reason=f"round {round_number + 1}")
    finally:
        stop.set()
        seen = [observations.get(timeout=WAIT_SECONDS) for _ in readers]
        for process in promoters + readers:
            process.join(WAIT_SECONDS)

    assert all(process.exitcode == 0 for process in promoters + readers)
    values = set().union(*seen)
    assert values <= {None, v1.id, v2.id, v3.id}
    assert sum(count for reader in seen for value, count in reader.items()
               if value is not None) > 0
    # One reset and one winning promotion per round, plus the last reset: no lost update.
    history = registry.slot_history("blue", limit=10 * ROUNDS)
    assert len(history) == 2 * ROUNDS + 1
    assert registry.slot_state("blue").generation == 2 * ROUNDS + 1


@pytest.mark.parametrize(("seeds", "expected_ids"), [
    ((0, 1, 2), [1, 2, 3]),  # three different models: three versions
    ((5, 5, 5), [1, 1, 1]),  # the same model three times: one version
], ids=["different_models", "same_model"])
def test_open_registry_fresh_database_from_three_processes(settings, seeds, expected_ids):
    context = multiprocessing.get_context(START_METHOD)
    barrier, results = context.Barrier(3), context.Queue()
    processes = [context.Process(target=_open_and_register, args=(settings, seed, barrier,
                                                                  results))
                 for seed in seeds]
    for process in processes:
        process.start()
    ids = sorted(results.get(timeout=WAIT_SECONDS) for _ in processes)
    for process in processes:
        process.join(WAIT_SECONDS)

    assert [process.exitcode for process in processes] == [0, 0, 0]
    assert ids == expected_ids


def test_promote_read_only_sqlite_raises_unavailable(tmp_path, small_spec):
    home = tmp_path / "home"
    writable = Settings(home=home, registry_url=f"sqlite:///{home / 'registry.db'}",
                        param_store="memory")
    with open_registry(writable) as registry:
        version = registry.register_model(make_model(small_spec), source="import")
    read_only = Settings(home=home, param_store="memory",
                         registry_url=f"sqlite:///file:{home / 'registry.db'}?mode=ro&uri=true")

    with open_registry(read_only) as registry, pytest.raises(RegistryError) as raised:
        url = registry.engine.url.render_as_string(hide_password=True)
        registry.promote(version.id, "blue", expected=None, by="alice", reason="")

    assert raised.value.code == "registry_unavailable"
    assert raised.value.http_status == 503
    assert str(raised.value) == (
        f"cannot promote model version 1 to blue in the registry {url}: attempt to write a "
        "readonly database; check that the database is reachable and writable "
        "(ITSACAT_REGISTRY_URL, ITSACAT_HOME)")
    with open_registry(writable) as registry:
        assert registry.slot_state("blue").version_id is None
