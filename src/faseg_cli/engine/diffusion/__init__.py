"""The diffusion core every diffusion method configures: loading, attention recording, latents and noise, token spans.

``model`` loads any Stable Diffusion-family model component by component and runs its
encoders and UNet; ``recording`` captures the attention a method asks for (layers by
resolution or name, self and/or cross, heads averaged, selected or kept) as running
means; ``schedule`` holds the noise schedule, the DDIM step and added noise with a
seeded CPU generator; ``tokens`` assembles prompts from fragments and knows where each
fragment's tokens sit. Model-free modules (``schedule``, ``tokens``) run without a model.
"""
