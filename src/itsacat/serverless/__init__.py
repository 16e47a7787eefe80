"""The serverless neural network: training as function invocations, one per neuron per step,
that share nothing but a parameter store.

`functions` contains launch, trainer and neuron. `runtime` queues, delivers and retries their
invocations on an executor (inline, threads, Ray). `store` is the parameter store (memory or
Redis), `ledger` drops repeated deliveries, and `engine` plugs it all into the run loop as
`--engine serverless`.
"""

from itsacat.serverless.runtime import EXECUTORS, Faults, InvocationError, Runtime
from itsacat.serverless.store import ParamStoreError, open_store

__all__ = ["EXECUTORS", "Faults", "InvocationError", "ParamStoreError", "Runtime",
           "open_store"]
