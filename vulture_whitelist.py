"""What vulture cannot see being used (`vulture` reads this file with the project's code).

Routes, CLI commands, validators, Prefect tasks and fixtures are ignored by decorator and
Alembic/SQLAlchemy/pydantic conventions by name (pyproject.toml, [tool.vulture]); what is
left is listed here, each with the reason it is not dead.
"""

# ruff: noqa: B018, F821
# fmt: off

# Columns of the lineage schema, read and written through SQL and the migrations.
overlay_image, frame_sample, schedule_cron, published_at, source_id  # db/models.py
_.schedule_cron  # tasks/context.py: sets the campaign row's column

# Fields of pydantic models and dataclasses that are part of an output (JSON, lineage, API).
object_fraction  # models/detector.py: in the detector's per-clip report
asset_kind, videos_by_status, gpu_seconds, submitted_by  # reelforge/api/schemas.py: API responses
prompt_asset_id, raw_clip_asset_id  # reelforge/core/jobs.py: VideoResult, printed by --json
duration_s  # ops/runs.py RunInfo, enhance/enhancer.py and safety/verdicts.py results
queue_wait_s  # ops/runs.py RunInfo: `reelforge runs --json`, the ops view
original_prompt, normalized_prompt, requested_backend, original_sha256, enhanced_sha256
peak_dbfs, rms_dbfs, input_lra, input_thresh, target_offset  # postprocess/audio.py reports
has_audio  # postprocess/ffmpeg.py: MediaInfo
box_width  # postprocess/overlay.py: the text layout, recorded with the rendition
seconds_total, text_layout  # postprocess/renditions.py: RenditionResult
checked_at, longest_run, timestamps, sampled_timestamps  # safety/verdicts.py: verdicts
frames_from  # safety/verdicts.py MediaInfo: which frames a visual verdict judged
failpoints  # core/settings.py: REELFORGE_FAILPOINTS, read by core/failpoints.py from the env
DELIVERED_TRUE_PEAK  # postprocess/audio.py: the documented delivery ceiling (docs/postprocessing.md)

# Attributes that libraries read: onnxruntime's SessionOptions, PyAV's codec context,
# logging's LogRecord, accelerate's hooks, Prefect's client context.
_.intra_op_num_threads, _.inter_op_num_threads, _.log_severity_level  # models/moderation.py
_.thread_type  # postprocess/renditions.py, safety/visual.py
_.exc_text  # ops/run.py
_.execution_device, _.uploads, _._hf_hook  # models/wan_gpu.py
_._httpx_settings  # core/orchestration.py run_tagged: get_client compares it

# Parameters that a framework's call signature requires.
task_run  # Prefect hooks: core/retry.py is_transient, tasks/record.py record_failed_stage
mtime_ns  # tasks/safety/policy.py: part of the lru_cache key, so an edited policy reloads

# Public functions that the tests and operators call (test drills, library API).
downgrade_base  # db/migrate.py: the migration round-trip test
paused_at  # core/failpoints.py: tests find where a paused run stopped
_.asset_id_of, _.list_keys  # core/storage.py: ops scripts and tests inspect buckets
stop_service, start_service  # ops/stack.py: the outage drills stop and start one service
context_for  # tasks/record.py: a StageContext outside a flow (tests, repair)
generate_clips  # tasks/generate/generate.py: several clips in one batch (tests, benchmarks)
list_policies  # tasks/safety/policy.py: the shipped and configured policies
require_safe_texts, require_safe_media  # tasks/safety: the gates as plain functions
_.complete  # tasks/enhance/vocabulary.py: whether a caption names colour, shape and direction
NUDENET_LABELS  # models/moderation.py: the detector's classes, checked against its metadata
scheduler_config, frames_sha256  # models/generator.py: GenerationMetadata, recorded in lineage
mean_change  # models/generator.py: MotionCheck, recorded in the clip's metadata and lineage
_.compute_key  # core/caching.py: Prefect calls a CachePolicy's compute_key
flow_parameters  # core/caching.py: part of Prefect's compute_key signature

# Webhooks and OpenLineage: fields written to the delivery log, API answers and events.
duration_ms  # db/models.py WebhookDelivery: how long each delivery attempt took
endpoints, last_status_code, attempted  # api/schemas.py, ops/webhooks.py: API and --json output
modelVersion  # tasks/openlineage.py: the reelforge dataset facet, serialised by the client
failed_stage, can_retry, can_cancel  # api/ops_view.py RunRow: read by the dashboard's templates

# Versions and review: fields of API answers and of the stored takes (tasks/review/stage.py).
clip_id, preview_id, preview_url, publishing_run_id  # api/schemas.py: GET /v1/reviews/{id}
score_details  # tasks/review/stage.py Take: the scorer's findings, kept in reviews.takes
