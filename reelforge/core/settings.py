"""One settings model for the whole app.

Defaults point at the embedded local stack under ``REELFORGE_HOME``; setting an
external database URL, S3 endpoint or ``PREFECT_API_URL`` switches to those services
without any other change.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="REELFORGE_", extra="ignore")

    home: Path = Field(
        default=Path("~/.reelforge"),
        description="Where the local stack keeps its data, logs, PIDs and caches.",
    )

    # --- PostgreSQL ---------------------------------------------------------------
    database_url: SecretStr | None = Field(
        default=None,
        description="SQLAlchemy URL (postgresql+psycopg://...). Unset: embedded PostgreSQL.",
    )
    pg_port: int = Field(default=15432, description="TCP port of the embedded PostgreSQL.")

    # --- S3 / MinIO -----------------------------------------------------------------
    s3_endpoint: str | None = Field(
        default=None, description="host:port of an S3 server (MinIO). Unset: embedded SeaweedFS."
    )
    s3_access_key: SecretStr = Field(default=SecretStr("reelforge"), description="S3 access key.")
    s3_secret_key: SecretStr = Field(
        default=SecretStr("reelforge-local-secret"), description="S3 secret key."
    )
    s3_secure: bool = Field(default=False, description="Use HTTPS for S3.")
    s3_region: str = Field(default="us-east-1", description="S3 region name.")
    s3_port: int = Field(
        default=18333,
        description="S3 port of the embedded SeaweedFS; its other ports are the next nine.",
    )
    bucket_private: str = Field(
        default="reelforge-private", description="Bucket for every asset (never public)."
    )
    bucket_published: str = Field(
        default="reelforge-published", description="Bucket for published renditions only."
    )
    presign_expiry_seconds: int = Field(
        default=3600, ge=60, le=7 * 24 * 3600, description="Lifetime of presigned GET URLs."
    )

    # --- Prefect ---------------------------------------------------------------------
    prefect_api_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("PREFECT_API_URL", "REELFORGE_PREFECT_API_URL"),
        description="Prefect API (PREFECT_API_URL). Unset: the local Prefect server.",
    )
    prefect_port: int = Field(default=14200, description="Port of the local Prefect server.")

    # --- Orchestration (flows/, reelforge/core/orchestration.py) -------------------------------
    bucket_results: str = Field(
        default="reelforge-results",
        description="Bucket for Prefect task results (resume and cache hits across machines).",
    )
    cpu_pool: str = Field(
        default="reelforge-cpu", description="Prefect work pool of campaign orchestration runs."
    )
    gpu_pool: str = Field(
        default="reelforge-gpu", description="Prefect work pool of video and personalised runs."
    )
    gpu_slots: int = Field(
        default=0,
        ge=0,
        description="Generations this machine runs at once; 0: one per CUDA device (1 on CPU).",
    )
    gpu_lease_seconds: int = Field(
        default=60,
        ge=60,
        le=86400,
        description="Lease of a generation slot: a crashed worker's slot frees after this.",
    )
    failpoints: str | None = Field(
        default=None,
        description="Test failpoints, e.g. publish:1 (fail once); stage:N[:transient|crash|pause].",
    )

    # --- Reliability (reelforge/core/retry.py, reelforge/ops/repair.py) ---------------------------
    stage_retries: int = Field(
        default=3,
        ge=0,
        le=20,
        description="Retries of a stage after a transient failure (S3, network, database).",
    )
    stage_retry_delay_seconds: float = Field(
        default=1.0,
        ge=0,
        le=600,
        description="Wait before a stage's first retry; each next one waits twice as long.",
    )
    orphan_grace_seconds: int = Field(
        default=600,
        ge=0,
        description="`doctor --repair` deletes an orphan object only when older than this "
        "(an upload whose lineage is being written is never touched).",
    )

    # --- Generation --------------------------------------------------------------------
    generator: Literal["tiny", "wan"] = Field(
        default="tiny",
        description="tiny: the small model shipped in the repo (CPU). wan: a Wan2.2 checkpoint.",
    )
    wan_checkpoint_dir: Path | None = Field(
        default=None, description="Local Wan2.2-T2V-A14B checkpoint in diffusers format."
    )
    device: str = Field(default="auto", description="auto, cpu, cuda or cuda:N.")
    gen_group_offload: bool = Field(
        default=False,
        description="Wan on GPU: diffusers group offload (block level, CUDA streams) for low VRAM.",
    )
    gen_fp8: bool = Field(
        default=False,
        description="Wan on GPU: FP8 layerwise casting of the experts (fp8 storage, bf16 compute).",
    )
    gen_max_batch: int = Field(
        default=0, ge=0, description="Videos per generation batch; 0: the model's default."
    )

    # --- Safety ------------------------------------------------------------------------------
    moderation_model: Path | None = Field(
        default=None,
        description="ONNX detector path. Unset: NudeNet's 320n.onnx from the nudenet wheel.",
    )
    safety_policy_dir: Path | None = Field(
        default=None,
        description="Folder of tenants' safety policies (NAME.yaml), searched before the "
        "policies shipped in tasks/safety/policies/.",
    )

    # --- Prompt enhancement (tasks/enhance) ---------------------------------------------
    enhance_backend: Literal["auto", "template", "transformers", "openai", "vocabulary", "none"] = (
        Field(
            default="auto",
            description=(
                "Prompt enhancer. auto: vocabulary mapping for the tiny generator, else the "
                "OpenAI-compatible endpoint if set, else the local LLM if set, else templates."
            ),
        )
    )
    enhance_template: str = Field(
        default="product_showcase",
        description="Template preset used by the template path and as the LLM fallback.",
    )
    enhance_model_dir: Path | None = Field(
        default=None,
        description="Local transformers model directory (e.g. Qwen2.5-Instruct) for LLM rewriting.",
    )
    enhance_openai_url: str | None = Field(
        default=None,
        description="Base URL of an OpenAI-compatible API (vLLM, Ollama), e.g. http://host:8000/v1.",
    )
    enhance_openai_model: str = Field(
        default="Qwen2.5-7B-Instruct", description="Model name sent to the OpenAI-compatible API."
    )
    enhance_api_key: SecretStr | None = Field(
        default=None, description="API key for the OpenAI-compatible endpoint (never logged)."
    )
    enhance_timeout_s: float = Field(
        default=30.0, gt=0, description="Timeout per LLM HTTP request, in seconds."
    )
    enhance_retries: int = Field(
        default=2, ge=0, le=10, description="Retries (exponential backoff) for the LLM endpoint."
    )
    enhance_output_language: Literal["same", "en", "zh", "ja", "ko"] = Field(
        default="same",
        description="Language of the enhanced prompt; 'same' follows the prompt's language.",
    )
    enhance_max_new_tokens: int = Field(
        default=256, ge=16, le=2048, description="Token budget of the LLM rewrite."
    )
    enhance_temperature: float = Field(
        default=0.7, ge=0, le=2, description="LLM sampling temperature (0: greedy)."
    )

    # --- HTTP API and dashboard (reelforge/api) -------------------------------------------
    api_max_queued: int = Field(
        default=50,
        ge=1,
        le=100_000,
        description="Jobs a tenant may have waiting (not yet running); past it the API answers "
        "429 with Retry-After.",
    )
    api_retry_after_seconds: int = Field(
        default=10, ge=1, le=3600, description="Retry-After (seconds) sent with a 429."
    )
    api_max_body_bytes: int = Field(
        default=4 * 1024 * 1024,
        ge=1024,
        le=1024**3,
        description="Largest request body the API reads (a campaign of 1,000 products fits); "
        "larger ones get 413.",
    )
    api_executor: Literal["pool", "local"] = Field(
        default="pool",
        description="pool: API jobs run as flow runs of Prefect deployments (`reelforge worker`). "
        "local: the API process runs them itself (a single API process only).",
    )
    api_local_concurrency: int = Field(
        default=1, ge=1, le=16, description="local executor: flow runs at once in the API process."
    )
    api_dispatch: bool = Field(
        default=True,
        description="Run the dispatcher (job queue -> Prefect, run states -> jobs) inside "
        "`reelforge serve`.",
    )
    api_session_secret: SecretStr | None = Field(
        default=None,
        description="Signs dashboard session cookies. Unset: a random secret per process "
        "(logins end when the API restarts).",
    )
    prefect_ui_url: str | None = Field(
        default=None,
        description="Prefect UI base URL the dashboard links to. Unset: the Prefect API URL "
        "without /api.",
    )

    debug: bool = Field(default=False, description="Print tracebacks on errors.")

    @property
    def home_dir(self) -> Path:
        return self.home.expanduser().resolve()

    @property
    def uses_embedded_postgres(self) -> bool:
        return self.database_url is None

    @property
    def uses_embedded_s3(self) -> bool:
        return self.s3_endpoint is None

    @property
    def uses_local_prefect(self) -> bool:
        return self.prefect_api_url is None

    @property
    def sqlalchemy_url(self) -> str:
        if self.database_url is not None:
            return self.database_url.get_secret_value()
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.pg_port}/reelforge"

    @property
    def s3_address(self) -> str:
        return self.s3_endpoint or f"127.0.0.1:{self.s3_port}"

    @property
    def prefect_api(self) -> str:
        return self.prefect_api_url or f"http://127.0.0.1:{self.prefect_port}/api"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
