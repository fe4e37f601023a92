"""NACLIP (Hajimiri et al., WACV 2025): training-free segmentation with CLIP alone, ``--method naclip``.

``settings`` holds its constants, ``maths`` the model-free tensor maths, ``model`` the
CLIP ViT-B/16 with NACLIP's last block, ``segmenter`` the backend with the shared
``segment_batch`` contract (``engine.base``).
"""
