"""Silence the model libraries' own warnings and progress bars: faseg reports for itself on stderr."""


def quiet_libraries() -> None:
    """Set diffusers and transformers to errors only and turn off their progress bars (idempotent)."""
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    diffusers_logging.set_verbosity_error()
    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()
