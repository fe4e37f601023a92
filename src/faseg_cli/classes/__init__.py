"""Where each image's class list and caption come from: given, read from files, or generated.

``source`` answers it for every command (``--classes``/``--caption``, per-image files, the
candidate engine), ``per_image`` reads the files, and ``eval_source`` adds an evaluation's own
choices (every class of the dataset, or the ground truth's).
"""
