"""The prediction service: a FastAPI app serving one slot's model version, with hot swap,
input guards, guarded URL fetches and Prometheus metrics."""

from itsacat.serving.app import app_from_env, create_app
from itsacat.serving.settings import ServingSettings

__all__ = ["ServingSettings", "app_from_env", "create_app"]
