"""Silence the model libraries' own warnings, retries and progress bars: faseg reports for itself on stderr."""


def quiet_hub() -> None:
    """Set huggingface_hub to errors only, so that its retry and cache warnings never reach stderr (idempotent)."""
    from huggingface_hub.utils import logging as hub_logging

    hub_logging.set_verbosity_error()


def quiet_libraries() -> None:
    """Set diffusers, transformers and huggingface_hub to errors only and turn off the progress bars (idempotent)."""
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    quiet_hub()
    diffusers_logging.set_verbosity_error()
    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()
