import threading

import numpy as np
import pytest

from itsacat.serverless.store import (
    HEADER_SIZE,
    ParamStoreError,
    decode_array,
    encode_array,
    open_store,
)

from .conftest import free_port


@pytest.fixture(params=["memory", "redis"])
def store(request):
    url = "memory" if request.param == "memory" else request.getfixturevalue("redis_url")
    store = open_store(url)
    yield store
    store.clear()
    store.close()


@pytest.mark.parametrize("array", [
    np.arange(12, dtype=np.float64).reshape(3, 4),
    np.asfortranarray(np.arange(12, dtype=np.float32).reshape(3, 4)),
    np.arange(24, dtype=np.int64).reshape(2, 3, 4),
    np.array(2.5),
    np.zeros((0, 5)),
])
def test_encode_array_round_trip_keeps_dtype_shape_order(array):
    buffer = encode_array(array)
    decoded = decode_array(buffer, "key")

    assert buffer.nbytes == HEADER_SIZE + array.nbytes
    assert decoded.dtype == array.dtype
    assert decoded.shape == array.shape
    assert decoded.flags.f_contiguous == array.flags.f_contiguous
    assert np.array_equal(decoded, array)


def test_decode_array_without_header_raises():
    with pytest.raises(ParamStoreError) as raised:
        decode_array(b"\0" * 80, "weights/e0/W1/0")

    assert raised.value.message == ("parameter store key 'weights/e0/W1/0' is not an array "
                                    "(its header is missing); it was written by something else")


def test_store_put_get_array_round_trip(store):
    array = np.arange(6, dtype=np.float64).reshape(2, 3)
    store.put_array("a", array)

    value = store.get_array("a")

    assert np.array_equal(value, array)
    assert not value.flags.writeable
    assert store.bytes_moved == 2 * array.nbytes


def test_memory_store_get_array_shares_one_buffer():
    store = open_store("memory")
    store.put_array("input", np.ones((64, 100)).T)

    first, second = store.get_array("input"), store.get_array("input")

    assert np.shares_memory(first, second)
    assert first.shape == (100, 64)


def test_store_json_and_missing_keys(store):
    store.put_json("cost", {"cost": 0.5})

    assert store.get_json("cost") == {"cost": 0.5}
    assert store.get_json("absent") is None
    with pytest.raises(ParamStoreError) as raised:
        store.get_array("absent")
    assert raised.value.message == (
        f"parameter store {store.url} has no key 'absent' in namespace {store.namespace}; the "
        "run's state was lost or cleaned up, so resume the run from its checkpoint")


def test_store_put_if_absent_keeps_first_value(store):
    assert store.put_if_absent("claim", "first") is True
    assert store.put_if_absent("claim", "second") is False
    assert store.get_json("claim") == "first"


def test_store_increment_counts(store):
    assert [store.increment("count") for _ in range(3)] == [1, 2, 3]
    assert store.increment("count", 5) == 8


def test_store_add_member_counts_distinct_members(store):
    assert store.add_member("layer", "0") == 1
    assert store.add_member("layer", "1") == 2
    assert store.add_member("layer", "0") == 0
    assert store.add_member("layer", "2") == 3


def test_store_add_member_concurrently_completes_set_once(store):
    completions = []

    def add(member):
        if store.add_member("fan-in", str(member)) == 20:
            completions.append(member)

    threads = [threading.Thread(target=add, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(completions) == 1


def test_store_delete_prefix_and_clear_stay_in_namespace(store):
    other = open_store(store.url)
    try:
        other.put_json("e1/x", 1)
        store.put_json("e1/x", 1)
        store.put_json("e10/x", 1)
        store.put_json("weights/e1/W1/0", 1)

        assert store.delete_prefix("e1/") == 1
        assert store.exists("e10/x")
        store.clear()
        assert not store.exists("e10/x")
        assert not store.exists("weights/e1/W1/0")
        assert other.get_json("e1/x") == 1
    finally:
        other.clear()
        other.close()


def test_redis_store_cache_reads_written_once_key_once(redis_url):
    store = open_store(redis_url)
    try:
        store.put_array("e0/mb0/A0", np.ones((100, 8)))
        store.get_array("e0/mb0/A0", cache=True)
        moved = store.bytes_moved

        store.get_array("e0/mb0/A0", cache=True)

        assert store.bytes_moved == moved
    finally:
        store.clear()
        store.close()


def test_open_store_unreachable_redis_raises_resumable():
    url = f"redis://127.0.0.1:{free_port()}/0"

    with pytest.raises(ParamStoreError) as raised:
        open_store(url, "ns")

    assert raised.value.code == "store_unreachable"
    assert raised.value.resumable
    assert raised.value.message.startswith(f"parameter store {url} is unreachable (")
    assert raised.value.message.endswith(
        "); check that Redis is running there, then continue the run with "
        "`itsacat train --resume <run folder>`")


def test_open_store_unknown_scheme_raises():
    with pytest.raises(ParamStoreError) as raised:
        open_store("postgresql://localhost/db")

    assert raised.value.message == ("parameter store URL 'postgresql://localhost/db' is not "
                                    "supported; use memory or redis://host:port/db")


def test_store_put_get_arrays_keeps_order(store):
    rows = {f"W1/{i}": np.full((1, 3), float(i)) for i in range(4)}
    store.put_arrays(rows)

    values = store.get_arrays(["W1/2", "W1/0", "W1/3"])

    assert [float(value[0, 0]) for value in values] == [2.0, 0.0, 3.0]
    with pytest.raises(ParamStoreError) as raised:
        store.get_arrays(["W1/1", "W1/9"])
    assert raised.value.code == "missing_key"
