"""The segmentation engine: each method's models and maths, behind one ``segment_batch`` API.

``base`` holds what every method shares (the ``Segmentation`` result, ``SegmenterBase``),
``scores`` the score maths they share, ``clip`` the CLIP ViT-B/16 that NACLIP and TagCLIP
run, ``timing`` optional per-stage timing, ``methods`` the methods by name. ``faseg/`` is
FA-Seg, ``naclip/`` is NACLIP; neither imports the other, and only ``methods`` names them.
"""
