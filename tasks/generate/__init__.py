"""Generation stage: prompt -> video frames + lineage metadata (see models/generator.py)."""
