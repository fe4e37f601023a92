"""iSeg (Sun et al., arXiv 2409.03209): iterative refinement of cross-attention by entropy-reduced self-attention.

``settings`` holds its per-dataset configurations, ``prompts`` the prompt and class tokens, ``maths`` the
model-free steps (fusion, DFC-KL clustering, ERS, iterations, scores and labels).
"""
