"""The delivery pipeline: train → evaluate → register → build release → build image →
deploy green → verify green → gate → approve → promote blue → notify. Each stage is recorded
in the registry. The inbox, `itsacat pipeline run` and `itsacat pipeline deliver` start
executions.

    settings = ExecutionSettings(kind="deliver", config=load_config(None, home),
                                 model_version_id=3)
    execution = create_execution(registry, settings, trigger="cli")
    Executor(registry, home).run(execution.id)
"""

from itsacat.pipeline.approval import ApprovalError, decide
from itsacat.pipeline.config import ConfigError, PipelineConfig, load_config
from itsacat.pipeline.executor import Executor, create_execution
from itsacat.pipeline.inbox import InboxWatcher
from itsacat.pipeline.promotion import rollback
from itsacat.pipeline.stages import STAGES, ExecutionSettings
from itsacat.pipeline.worker import Worker

__all__ = ["STAGES", "ApprovalError", "ConfigError", "ExecutionSettings", "Executor",
           "InboxWatcher", "PipelineConfig", "Worker", "create_execution", "decide",
           "load_config", "rollback"]
