"""FA-Seg (Che & Nguyen, 2026): segmentation from one recorded pass of a distilled Stable Diffusion.

``settings`` holds its constants, ``diffusion`` loads the model, ``schedule`` is the one-step
inversion, ``recording`` captures the attention maps, ``prompts`` builds the dual prompt,
``refine`` is the model-free HARD maths, ``segmenter`` runs it all and ``dump`` lays the maps
out for ``attention.npz``.
"""
