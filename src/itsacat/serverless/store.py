"""The parameter store: the only thing the serverless functions share.

It contains arrays, JSON values and counters under string keys, in one namespace per run.
Arrays travel as bytes behind a fixed 64-byte header that gives their dtype, shape and memory
order, so a reader never guesses a shape from a key name. Two backends:

`memory` (the default) keeps the encoded bytes in a dict in this process. Reading returns a
read-only view of them (`np.frombuffer`, no copy), so a minibatch's input is stored once per
epoch and every neuron of the first layer reads the same memory.

`redis://host:port/db` keeps them in a Redis server, as the reference design kept its weights
in ElastiCache. Keys are `itsacat:<namespace>:<key>` and expire after `KEY_TTL_SECONDS`, so a
run killed before it could clean up leaves nothing behind for long.

`get_array(key, cache=True)` is for keys that are written once with one value (a minibatch's
input): a Redis store handle then keeps what it read, as a warm function container would, so
the twenty first-layer neurons of a minibatch do not each pull its 6 MB input over the wire.
"""

from __future__ import annotations

import json
import struct
import threading
import uuid
from collections import OrderedDict
from typing import Any, Protocol

import numpy as np

from itsacat.errors import ItsacatError

HEADER = struct.Struct("<4s8sB?2x6q")  # magic, dtype.str, ndim, Fortran order, shape
HEADER_SIZE = 64  # HEADER padded so that the data of any dtype starts aligned
MAGIC = b"ICA1"
MAX_DIMENSIONS = 6
KEY_TTL_SECONDS = 24 * 3600
CACHE_BYTES = 256 * 2**20  # per Redis store handle, for `get_array(key, cache=True)`


class ParamStoreError(ItsacatError):
    """A parameter store that cannot be reached or contains something unexpected.

    `resumable` is True when the run's checkpoint is still good and `--resume` can continue
    once the store is back.
    """

    def __init__(self, code: str, message: str, resumable: bool = False):
        super().__init__(code, message)
        self.resumable = resumable


def encode_array(array: np.ndarray) -> memoryview:
    """Return the header and the bytes of `array` in one buffer, copying the data once."""
    if array.ndim > MAX_DIMENSIONS:
        raise ValueError(f"cannot store an array of {array.ndim} dimensions; at most "
                         f"{MAX_DIMENSIONS} are supported")
    fortran = array.flags.f_contiguous and not array.flags.c_contiguous
    shape = array.shape + (0,) * (MAX_DIMENSIONS - array.ndim)
    # np.empty rather than bytearray: a bytearray is zero-filled first, which costs as much
    # as the copy itself for a minibatch's 6 MB input.
    buffer = memoryview(np.empty(HEADER_SIZE + array.nbytes, dtype=np.uint8))
    HEADER.pack_into(buffer, 0, MAGIC, array.dtype.str.encode(), array.ndim, fortran, *shape)
    np.ndarray(array.shape, array.dtype, buffer, HEADER_SIZE,
               order="F" if fortran else "C")[...] = array
    return buffer


_DTYPES: dict[bytes, np.dtype] = {}


def decode_array(buffer: bytes | memoryview, key: str) -> np.ndarray:
    """Return an array viewing `buffer`, as described by its header; read-only when the
    buffer is (bytes, or a read-only memoryview)."""
    magic, dtype_name, ndim, fortran, *shape = HEADER.unpack_from(buffer, 0)
    if magic != MAGIC:
        raise ParamStoreError("invalid_value", f"parameter store key {key!r} is not an array "
                              "(its header is missing); it was written by something else")
    dtype = _DTYPES.get(dtype_name)
    if dtype is None:
        dtype = _DTYPES[dtype_name] = np.dtype(dtype_name.rstrip(b"\0").decode())
    # One ndarray call instead of frombuffer and reshape: this runs for every read.
    return np.ndarray(tuple(shape[:ndim]), dtype, buffer, HEADER_SIZE,
                      order="F" if fortran else "C")


class ParamStore(Protocol):
    """The operations the functions may use. `bytes_moved` counts the array and JSON payload
    bytes written and read through this handle."""

    url: str
    namespace: str
    bytes_moved: int

    def put_array(self, key: str, array: np.ndarray) -> None: ...

    def get_array(self, key: str, cache: bool = False) -> np.ndarray: ...

    def put_arrays(self, arrays: dict[str, np.ndarray]) -> None: ...

    def get_arrays(self, keys: list[str]) -> list[np.ndarray]: ...

    def put_json(self, key: str, value: Any) -> None: ...

    def get_json(self, key: str, default: Any = None) -> Any: ...

    def put_if_absent(self, key: str, value: Any) -> bool: ...

    def increment(self, key: str, amount: int = 1) -> int: ...

    def add_member(self, key: str, member: str) -> int: ...

    def exists(self, key: str) -> bool: ...

    def delete_prefix(self, prefix: str) -> int: ...

    def clear(self) -> None: ...

    def close(self) -> None: ...


class MemoryStore:
    """The parameter store inside this process; one lock makes every operation atomic."""

    def __init__(self, namespace: str):
        self.url = "memory"
        self.namespace = namespace
        self.bytes_moved = 0
        self._values: dict[str, Any] = {}
        self._lock = threading.Lock()

    def put_array(self, key: str, array: np.ndarray) -> None:
        buffer = encode_array(array).toreadonly()
        with self._lock:
            self._values[key] = buffer
            self.bytes_moved += array.nbytes

    def get_array(self, key: str, cache: bool = False) -> np.ndarray:
        with self._lock:
            buffer = self._values.get(key)
            if buffer is None:
                raise _missing(self, key)
            self.bytes_moved += buffer.nbytes - HEADER_SIZE
        return decode_array(buffer, key)

    def put_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        for key, array in arrays.items():
            self.put_array(key, array)

    def get_arrays(self, keys: list[str]) -> list[np.ndarray]:
        return [self.get_array(key) for key in keys]

    def put_json(self, key: str, value: Any) -> None:
        text = json.dumps(value)
        with self._lock:
            self._values[key] = text
            self.bytes_moved += len(text)

    def get_json(self, key: str, default: Any = None) -> Any:
        with self._lock:
            text = self._values.get(key)
            if text is None:
                return default
            self.bytes_moved += len(text)
        return json.loads(text)

    def put_if_absent(self, key: str, value: Any) -> bool:
        text = json.dumps(value)
        with self._lock:
            if key in self._values:
                return False
            self._values[key] = text
            return True

    def increment(self, key: str, amount: int = 1) -> int:
        with self._lock:
            count = int(self._values.get(key, 0)) + amount
            self._values[key] = count
            return count

    def add_member(self, key: str, member: str) -> int:
        with self._lock:
            members = self._values.setdefault(key, set())
            if member in members:
                return 0
            members.add(member)
            return len(members)

    def exists(self, key: str) -> bool:
        return key in self._values

    def delete_prefix(self, prefix: str) -> int:
        with self._lock:
            doomed = [key for key in self._values if key.startswith(prefix)]
            for key in doomed:
                del self._values[key]
        return len(doomed)

    def clear(self) -> None:
        with self._lock:
            self._values.clear()

    def close(self) -> None:
        pass


class RedisStore:
    """The parameter store in a Redis server. Connection failures become `ParamStoreError`."""

    def __init__(self, url: str, namespace: str):
        import redis

        self.url = url
        self.namespace = namespace
        self.bytes_moved = 0
        self._prefix = f"itsacat:{namespace}:"
        self._errors = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_bytes = 0
        self._lock = threading.Lock()
        try:
            self._client = redis.Redis.from_url(url, socket_timeout=10,
                                                socket_connect_timeout=5)
        except ValueError as error:
            raise ParamStoreError("invalid_store_url", f"parameter store URL {url!r} is "
                                  f"invalid ({error}); expected redis://host:port/db or "
                                  "memory") from None
        self._call(self._client.ping)

    def put_array(self, key: str, array: np.ndarray) -> None:
        buffer = encode_array(array)
        self._call(self._client.set, self._prefix + key, buffer, ex=KEY_TTL_SECONDS)
        self._count(array.nbytes)

    def get_array(self, key: str, cache: bool = False) -> np.ndarray:
        if cache:
            with self._lock:
                array = self._cache.get(key)
                if array is not None:
                    self._cache.move_to_end(key)
                    return array
        buffer = self._call(self._client.get, self._prefix + key)
        if buffer is None:
            raise _missing(self, key)
        self._count(len(buffer) - HEADER_SIZE)
        array = decode_array(buffer, key)
        if cache:
            self._remember(key, array)
        return array

    def put_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        # One round trip for a layer's rows instead of one per neuron.
        pipeline = self._client.pipeline(transaction=False)
        for key, array in arrays.items():
            pipeline.set(self._prefix + key, encode_array(array), ex=KEY_TTL_SECONDS)
        self._call(pipeline.execute)
        self._count(sum(array.nbytes for array in arrays.values()))

    def get_arrays(self, keys: list[str]) -> list[np.ndarray]:
        buffers = self._call(self._client.mget, [self._prefix + key for key in keys])
        arrays = []
        for key, buffer in zip(keys, buffers, strict=True):
            if buffer is None:
                raise _missing(self, key)
            self._count(len(buffer) - HEADER_SIZE)
            arrays.append(decode_array(buffer, key))
        return arrays

    def _remember(self, key: str, array: np.ndarray) -> None:
        with self._lock:
            self._cache[key] = array
            self._cache_bytes += array.nbytes
            while self._cache_bytes > CACHE_BYTES and len(self._cache) > 1:
                _, evicted = self._cache.popitem(last=False)
                self._cache_bytes -= evicted.nbytes

    def put_json(self, key: str, value: Any) -> None:
        text = json.dumps(value)
        self._call(self._client.set, self._prefix + key, text, ex=KEY_TTL_SECONDS)
        self._count(len(text))

    def get_json(self, key: str, default: Any = None) -> Any:
        text = self._call(self._client.get, self._prefix + key)
        if text is None:
            return default
        self._count(len(text))
        return json.loads(text)

    def put_if_absent(self, key: str, value: Any) -> bool:
        return bool(self._call(self._client.set, self._prefix + key, json.dumps(value),
                               nx=True, ex=KEY_TTL_SECONDS))

    def increment(self, key: str, amount: int = 1) -> int:
        pipeline = self._client.pipeline(transaction=True)
        pipeline.incrby(self._prefix + key, amount)
        pipeline.expire(self._prefix + key, KEY_TTL_SECONDS)
        count, _ = self._call(pipeline.execute)
        return int(count)

    def add_member(self, key: str, member: str) -> int:
        # SADD and SCARD in one MULTI/EXEC: of two members added at the same moment, only
        # one can see the set complete.
        pipeline = self._client.pipeline(transaction=True)
        pipeline.sadd(self._prefix + key, member)
        pipeline.scard(self._prefix + key)
        pipeline.expire(self._prefix + key, KEY_TTL_SECONDS)
        added, size, _ = self._call(pipeline.execute)
        return int(size) if added else 0

    def exists(self, key: str) -> bool:
        return bool(self._call(self._client.exists, self._prefix + key))

    def delete_prefix(self, prefix: str) -> int:
        def delete() -> int:
            deleted = 0
            batch = []
            for key in self._client.scan_iter(match=self._prefix + prefix + "*", count=1000):
                batch.append(key)
                if len(batch) == 1000:
                    deleted += self._client.unlink(*batch)
                    batch.clear()
            if batch:
                deleted += self._client.unlink(*batch)
            return deleted
        return self._call(delete)

    def clear(self) -> None:
        self.delete_prefix("")
        with self._lock:
            self._cache.clear()
            self._cache_bytes = 0

    def close(self) -> None:
        self._client.close()

    def _count(self, size: int) -> None:
        # Thread-pool workers share one handle, and += on an attribute is not atomic.
        with self._lock:
            self.bytes_moved += size

    def _call(self, operation, *args, **kwargs):
        try:
            return operation(*args, **kwargs)
        except self._errors as error:
            raise ParamStoreError(
                "store_unreachable", f"parameter store {self.url} is unreachable ({error}); "
                "check that Redis is running there, then continue the run with "
                "`itsacat train --resume <run folder>`", resumable=True) from None


def _missing(store, key: str) -> ParamStoreError:
    return ParamStoreError("missing_key", f"parameter store {store.url} has no key {key!r} "
                           f"in namespace {store.namespace}; the run's state was lost or "
                           "cleaned up, so resume the run from its checkpoint")


def open_store(url: str, namespace: str | None = None) -> ParamStore:
    """Open the store at `url` ("memory" or "redis://host:port/db") for one run's namespace.

    A new namespace is drawn when none is given.
    """
    namespace = namespace or uuid.uuid4().hex[:12]
    if url == "memory":
        return MemoryStore(namespace)
    if url.startswith(("redis://", "rediss://", "unix://")):
        return RedisStore(url, namespace)
    raise ParamStoreError("invalid_store_url", f"parameter store URL {url!r} is not "
                          "supported; use memory or redis://host:port/db")
