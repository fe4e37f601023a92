"""FA-Seg (Che & Nguyen, 2026): segmentation from one recorded pass of a distilled Stable Diffusion.

A recipe on the diffusion core (``engine/diffusion``): ``settings`` holds its constants,
``prompts`` builds the dual prompt and the class prompts, ``refine`` is the model-free
HARD maths, ``segmenter`` runs the DDIM step and the recorded pass and ``dump`` computes
the mask again from an ``attention.npz``.
"""
