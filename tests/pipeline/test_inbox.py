"""The inbox watcher: complete files start one execution each, incomplete ones never do."""

from __future__ import annotations

import json
import os
import shutil

from itsacat.pipeline import InboxWatcher
from itsacat.registry import ExecutionStatus
from tests.conftest import SMALL_SPEC, write_h5_dataset
from tests.pipeline.conftest import make_config


def watcher_for(registry, home, **changes) -> InboxWatcher:
    return InboxWatcher(registry, home, make_config(**changes), epochs=3)


def poll_times(watcher: InboxWatcher, times: int) -> list:
    started = []
    for _ in range(times):
        started += watcher.poll()
    return started


def test_inbox_complete_file_starts_one_execution(registry, home, tmp_path):
    watcher = watcher_for(registry, home)
    write_h5_dataset(watcher.inbox / "cats.h5")
    (watcher.inbox / "parameters.json").write_text(json.dumps(SMALL_SPEC))

    started = poll_times(watcher, 4)

    assert len(started) == 1
    execution = registry.get_execution(started[0].id)
    assert execution.status == ExecutionStatus.pending
    assert execution.trigger == "inbox: cats.h5"
    folder = watcher.processed / execution.id
    assert execution.data_path == str(folder / "cats.h5")
    assert sorted(path.name for path in folder.iterdir()) == ["cats.h5", "parameters.json"]
    assert list(watcher.inbox.iterdir()) == []


def test_inbox_restart_does_not_start_a_file_twice(registry, home):
    watcher = watcher_for(registry, home)
    write_h5_dataset(watcher.inbox / "cats.h5")
    first = poll_times(watcher, 4)

    again = poll_times(watcher_for(registry, home), 4)

    assert len(first) == 1
    assert again == []
    assert len(registry.list_executions()) == 1


def test_inbox_partial_names_ignored(registry, home):
    watcher = watcher_for(registry, home)
    write_h5_dataset(watcher.inbox / "cats.h5.partial")
    write_h5_dataset(watcher.inbox / "dogs.h5.tmp")
    write_h5_dataset(watcher.inbox / ".hidden.h5")

    assert poll_times(watcher, 5) == []

    os.rename(watcher.inbox / "cats.h5.partial", watcher.inbox / "cats.h5")
    started = poll_times(watcher, 4)
    assert [execution.trigger for execution in started] == ["inbox: cats.h5"]


def test_inbox_half_copied_file_never_starts(registry, home, tmp_path):
    watcher = watcher_for(registry, home)
    complete = write_h5_dataset(tmp_path / "complete.h5", m_train=40)
    data = complete.read_bytes()
    (watcher.inbox / "cats.h5").write_bytes(data[: len(data) // 2])

    assert poll_times(watcher, 6) == []
    assert (watcher.inbox / "cats.h5").exists()

    # The copy finishes: the file changes, becomes stable again and then starts.
    (watcher.inbox / "cats.h5").write_bytes(data)
    started = poll_times(watcher, 4)
    assert len(started) == 1


def test_inbox_new_file_waits_for_stable_polls(registry, home, tmp_path):
    watcher = watcher_for(registry, home, inbox__stable_polls=3)
    source = write_h5_dataset(tmp_path / "complete.h5")
    target = watcher.inbox / "cats.h5"
    shutil.copy(source, target)

    assert poll_times(watcher, 3) == []  # first sighting, then two stable polls of three
    assert len(watcher.poll()) == 1


def test_inbox_invalid_file_moves_to_failed(registry, home):
    watcher = watcher_for(registry, home, inbox__invalid_after_seconds=0.0)
    (watcher.inbox / "notes.h5").write_text("this is not HDF5")

    assert poll_times(watcher, 4) == []

    assert not (watcher.inbox / "notes.h5").exists()
    assert (watcher.failed / "notes.h5").read_text() == "this is not HDF5"
    reason = (watcher.failed / "notes.h5.reason.txt").read_text()
    assert reason.startswith("notes.h5 did not become a complete HDF5 data set within 0 s of "
                             "its last change: cannot read it as HDF5:")
    assert registry.list_executions() == []


def test_inbox_restart_recovers_moved_file(registry, home):
    watcher = watcher_for(registry, home)
    # A crash after the move and before the record leaves exactly this behind.
    orphan = watcher.processed / "0123456789ab"
    orphan.mkdir()
    write_h5_dataset(orphan / "cats.h5")

    started = watcher_for(registry, home).poll()

    assert [execution.id for execution in started] == ["0123456789ab"]
    assert registry.get_execution("0123456789ab").data_path == str(orphan / "cats.h5")
