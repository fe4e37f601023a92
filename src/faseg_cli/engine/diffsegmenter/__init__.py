"""DiffSegmenter (Wang et al., 2023): per class, a BLIP-continued prompt and one recorded UNet pass on a noised latent.

A recipe on the diffusion core (``engine/diffusion``): ``settings`` holds the published
constants and each dataset's prefix and class names, ``prompts`` builds the weighted
prompt and picks the class token (model-free), ``maths`` fuses and refines the maps and
scores them (model-free), ``segmenter`` runs it all (SPEC §6.1).
"""
