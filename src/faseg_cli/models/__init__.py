"""The models faseg runs, as files: registry, weights cache and download, device and precision.

``registry`` names each model and pins its revision, ``weights`` finds or downloads it,
``checkpoint`` reads diffusers weights into one in-memory copy, ``device`` picks CUDA/MPS/CPU
and the precision, ``quiet`` silences the libraries' own output, and ``random_diffusion`` /
``random_clip_blip`` write tiny random-weight models in the real on-disk layout for tests.
"""
