"""Files in and out: reading images and inputs; writing masks, overlays, heat maps and records.

``images`` and ``inputs`` read, ``outputs`` names and writes results atomically (masks,
scores, overlays via ``overlay``, attention folders with ``heatmaps`` grids), ``provenance``
records what produced each file; ``palette`` and ``fonts`` serve the pictures.
"""
