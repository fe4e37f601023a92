"""mIoU on local datasets (SPEC §4): datasets, metrics, the runner, its resume state, saved-mask scoring.

``datasets`` knows each dataset's layout and labels, ``metrics`` the confusion matrix,
``runner`` evaluates a segmenter (or ``scoring`` saved masks), ``state`` saves progress for
``--resume``, and ``sharding`` splits a run over several processes.
"""
