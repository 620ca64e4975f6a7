"""Service settings, from the environment (the Kubernetes ConfigMap and Secret)."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEVELOPMENT_DATABASE_URL = "postgresql://agent:agent@127.0.0.1:5432/agent"
DEVELOPMENT_REDIS_URL = "redis://127.0.0.1:6379/0"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_ignore_empty=True, extra="ignore")

    environment: Literal["development", "production"] = "production"
    database_url: str = DEVELOPMENT_DATABASE_URL
    redis_url: str = DEVELOPMENT_REDIS_URL
    ready_timeout_seconds: float = Field(default=2.0, gt=0, le=30)

    @model_validator(mode="after")
    def _refuse_development_defaults(self) -> Settings:
        # Outside development the connection strings carry real credentials; silently falling
        # back to the development ones would point production at localhost.
        if self.environment != "development":
            for name, value, default in (
                ("DATABASE_URL", self.database_url, DEVELOPMENT_DATABASE_URL),
                ("REDIS_URL", self.redis_url, DEVELOPMENT_REDIS_URL),
            ):
                if value == default:
                    raise ValueError(f"{name} is unset or the development default; set it "
                                     "(or ENVIRONMENT=development for local runs)")
        return self


@lru_cache
def get_settings() -> Settings:
    return Settings()
